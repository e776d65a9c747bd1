"""News articles about companies in court, penalized lenders, debtors and the industry.

An article about a record is published after it (within a month in epoch 1); a few
name a debtor in full (linked to the customer), most write ``张某`` as papers do.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from riskcontrol.synthetic.site import vocab
from riskcontrol.synthetic.site.book import (
    Customer,
    content_faults,
    day_between,
    hex_id,
    rng_for,
    wan,
    window,
)
from riskcontrol.synthetic.site.records import CST, Comment, CourtCase, NewsArticle, Penalty

TOPICS = ("court_company", "company_trouble", "penalty", "person", "industry")
TOPIC_WEIGHTS = (0.25, 0.15, 0.2, 0.2, 0.2)


@dataclass(frozen=True)
class _Story:
    """What an article says, before it is dressed in a template."""

    title: str
    paragraphs: tuple[str, ...]
    customer_id: str | None = None
    company: str | None = None
    subject_name: str | None = None
    related_record: str | None = None
    after: dt.date | None = None


def _court_company_story(rng: random.Random, case: CourtCase, en: bool) -> _Story:
    if en:
        return _Story(
            f"{case.subject_name} listed as judgment debtor over unpaid {int(case.amount):,} yuan",
            (
                f"{case.court} has listed {case.subject_name} as a judgment debtor in case "
                f"{case.case_no}, according to public court records.",
                f"The case, a {case.cause} dispute, involves RMB {int(case.amount):,}. "
                "The company did not respond to a request for comment.",
                "Analysts say enforcement records often precede payroll delays and "
                "supplier disputes at small private firms.",
            ),
            company=case.subject_name,
            subject_name=case.subject_name,
            related_record=case.case_no,
            after=case.filing_date,
        )
    listed = "失信被执行人" if case.list_type == "失信被执行人" else "被执行人"
    return _Story(
        f"{case.subject_name}因{case.cause}被列为{listed}",
        (
            f"记者从{case.court}获悉，{case.subject_name}因{case.cause}一案（案号{case.case_no}）"
            f"被依法列为{listed}，执行标的{case.amount_text}。",
            f"企业信用信息显示，{case.subject_name}成立多年，主要从事相关业务。"
            "近期该公司多次出现在法院执行公告中。",
            "业内人士提醒，企业涉诉及被执行信息是评估其经营状况和员工收入稳定性的重要参考。",
        ),
        company=case.subject_name,
        subject_name=case.subject_name,
        related_record=case.case_no,
        after=case.filing_date,
    )


def _company_trouble_story(rng: random.Random, company: str, en: bool) -> _Story:
    months = rng.randint(2, 5)
    if en:
        return _Story(
            f"Staff at {company} say wages are {months} months late",
            (
                f"Employees of {company} told reporters they have not been paid "
                f"for {months} months.",
                "The company said it is negotiating with creditors and expects to resume payments.",
                "Labour lawyers advise affected staff to keep records of their contracts.",
            ),
            company=company,
            subject_name=company,
        )
    event = rng.choice((f"拖欠员工工资{months}个月", "大规模裁员", "资金链紧张、项目停工"))
    return _Story(
        f"{company}被曝{event}",
        (
            f"近日，有多名员工向本报反映，{company}{event}，部分员工已申请劳动仲裁。",
            f"{company}相关负责人回应称，公司正在积极筹措资金，将尽快妥善处理。",
            "律师表示，劳动者可依法申请支付令或劳动仲裁，维护自身合法权益。",
        ),
        company=company,
        subject_name=company,
    )


def _penalty_story(rng: random.Random, p: Penalty, en: bool) -> _Story:
    money = f"{wan(p.amount)}万元" if p.amount else ""
    if en:
        return _Story(
            f"Regulator penalizes {p.subject_name}"
            + (f" RMB {int(p.amount):,}" if p.amount else ""),
            (
                f"The {p.authority_en} said {p.subject_name} {p.violation_en}.",
                f"It {p.decision_en}, according to a notice published on the regulator's website.",
                "Regulators have stepped up scrutiny of internet lending and debt collection.",
            ),
            customer_id=p.customer_id,
            company=p.company,
            subject_name=p.subject_name,
            related_record=p.record_id,
            after=p.decision_date,
        )
    return _Story(
        f"{p.subject_name}因{p.violation}被" + (f"罚{money}" if money else "处罚"),
        (
            f"{p.authority}近日公布的行政处罚信息显示，{p.institution}存在{p.violation}等问题。",
            f"监管部门依法对其作出{p.decision_text}的行政处罚决定。",
            "今年以来，金融监管部门持续加大对违规放贷、不当催收等行为的处罚力度。",
        ),
        customer_id=p.customer_id,
        company=p.company,
        subject_name=p.subject_name,
        related_record=p.record_id,
        after=p.decision_date,
    )


def _person_story(rng: random.Random, case: CourtCase) -> _Story:
    """A local-news item about a debtor; the full name only sometimes (ER hard cases)."""
    full = rng.random() < 0.5
    name = case.subject_name if full else case.subject_name[0] + "某"
    city = case.court[:3]
    return _Story(
        f"{city}一{'女子' if case.gender == '女' else '男子'}"
        f"欠款{case.amount_text}拒不归还被法院强制执行",
        (
            f"因{case.cause}，{name}被{case.court}立案执行，执行标的{case.amount_text}。",
            f"法院查明，{name}名下有可供执行的财产，却一直拒不履行。"
            + ("目前其已被纳入失信被执行人名单。" if case.list_type == "失信被执行人" else ""),
            "法官提醒，借款应按约归还，恶意逃避执行将承担相应法律后果。",
        ),
        customer_id=case.customer_id if full else None,
        subject_name=name,
        related_record=case.case_no,
        after=case.filing_date,
    )


def _industry_story(rng: random.Random, en: bool) -> _Story:
    zh, keyword, english = rng.choice(vocab.INDUSTRY_HEADLINES)
    rate = rng.uniform(1.5, 3.5)
    if en:
        return _Story(
            english,
            (
                f"Data compiled by industry associations show the ratio at {rate:.2f}% at the end "
                "of the quarter.",
                "Lenders are tightening approval standards for new borrowers.",
            ),
        )
    return _Story(
        zh,
        (
            f"据行业协会统计，截至季度末相关指标为{rate:.2f}%，较上季度有所变化。",
            f"业内人士认为，{keyword}业务将进入精细化经营阶段，风险管理能力成为核心竞争力。",
            "多家机构表示将加强贷前审核和贷后管理。",
        ),
    )


class NewsBuilder:
    def __init__(self, seed: int, book: list[Customer], start: dt.date, as_of: dt.date):
        self.seed, self.start, self.as_of = seed, start, as_of
        self.employers = sorted({c.employer for c in book if c.employer.endswith("有限公司")})
        self.articles: list[NewsArticle] = []

    def add_epoch(
        self, epoch: int, count: int, court: list[CourtCase], penalties: list[Penalty]
    ) -> None:
        rng = rng_for(self.seed, "news", epoch)
        companies = [c for c in court if c.subject_type == "company"]
        persons = [c for c in court if c.subject_type == "person"]
        for i in range(count):
            topic = rng.choices(TOPICS, TOPIC_WEIGHTS)[0]
            en = topic != "person" and rng.random() < 0.15
            if topic == "court_company" and companies:
                story = _court_company_story(rng, rng.choice(companies), en)
            elif topic == "company_trouble" and self.employers:
                story = _company_trouble_story(rng, rng.choice(self.employers), en)
            elif topic == "penalty" and penalties:
                story = _penalty_story(rng, rng.choice(penalties), en)
            elif topic == "person" and persons:
                story = _person_story(rng, rng.choice(persons))
            else:
                topic, story = "industry", _industry_story(rng, en)
            self._dress(rng, epoch, i, topic, story, en)

    def _dress(
        self, rng: random.Random, epoch: int, index: int, topic: str, story: _Story, en: bool
    ) -> None:
        lo, hi = window(self.start, self.as_of, epoch)
        if story.after is not None and epoch == 1:
            lo = min(hi, story.after + dt.timedelta(days=1))
            hi = min(hi, lo + dt.timedelta(days=30))
        day = day_between(rng, lo, hi)
        published = dt.datetime.combine(day, dt.time(rng.randint(7, 22), rng.randint(0, 59)), CST)
        article_id = hex_id(self.seed, "news", epoch, index)
        slug = f"{topic.replace('_', '-')}-{article_id[:10]}"
        path = f"/news/{published:%Y/%m}/{slug}.html"
        template = "story" if en else rng.choice(("article", "content"))
        comments = tuple(
            Comment(
                rng.choice(vocab.COMMENT_USERS),
                rng.choice(vocab.COMMENTS),
                published + dt.timedelta(minutes=rng.randint(5, 3000)),
            )
            for _ in range(rng.randint(0, 5))
        )
        self.articles.append(
            NewsArticle(
                article_id=article_id,
                epoch_added=epoch,
                topic=topic,
                slug=slug,
                title=story.title,
                paragraphs=story.paragraphs,
                language="en" if en else "zh",
                template=template,
                encoding="gbk" if not en and rng.random() < 0.15 else "utf-8",
                source=rng.choice(vocab.NEWS_SOURCES_EN if en else vocab.NEWS_SOURCES_ZH),
                author=rng.choice(vocab.AUTHORS_EN) if en else None,
                published_at=published,
                customer_id=story.customer_id,
                company=story.company,
                subject_name=story.subject_name,
                related_record=story.related_record,
                comments=comments,
                faults=content_faults(self.seed, path, None),
            )
        )
