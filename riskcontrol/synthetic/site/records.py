"""The records the site publishes, and ``SiteContent``, which holds them for every epoch.

Records are frozen: an epoch never edits a record, it only adds records or sets the
epoch at which a court case closes, so every page is a pure function of (record, epoch).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

CST = dt.timezone(dt.timedelta(hours=8))
EPOCH_DAYS = 7
CLOSED = "已结案"
ACTIVE = "执行中"


@dataclass(frozen=True)
class CourtCase:
    """One enforcement / dishonest-debtor entry, as the court portal shows it."""

    case_id: str
    epoch_added: int
    subject_type: str  # person | company
    subject_origin: str  # delinquent_customer | good_customer | fictitious | namesake | company
    subject_name: str
    customer_id: str | None
    company: str | None
    id_number: str  # the true number; the page shows id_shown
    id_shown: str
    court: str
    case_no: str
    cause: str
    amount: float
    amount_text: str
    filing_date: dt.date
    filing_text: str
    status: str  # status when added
    closed_epoch: int | None  # epoch at which it turns 已结案
    list_type: str
    conduct: str | None  # 失信被执行人行为具体情形, dishonest-list entries only
    gender: str | None
    age: int | None
    province: str | None
    faults: tuple[str, ...]

    @property
    def url_path(self) -> str:
        return f"/court/case/{self.case_id}.html"

    @property
    def id_masked(self) -> bool:
        return "*" in self.id_shown

    def status_at(self, epoch: int) -> str:
        """The 案件状态 shown at ``epoch``."""
        if self.closed_epoch is not None and epoch >= self.closed_epoch:
            return CLOSED
        return self.status

    def modified_epoch(self, epoch: int) -> int | None:
        """The epoch of the last change visible at ``epoch`` (None: as first published)."""
        if self.closed_epoch is not None and epoch >= self.closed_epoch:
            return self.closed_epoch
        return None


@dataclass(frozen=True)
class Penalty:
    """One administrative penalty announcement of the banking regulator."""

    penalty_id: str
    epoch_added: int
    subject_type: str  # institution | person | company
    institution: str  # 当事人名称 as shown (persons: name plus former position)
    subject_name: str
    customer_id: str | None
    company: str | None
    decision_no: str
    shows_decision_no: bool
    authority: str
    authority_en: str
    violation: str
    violation_en: str
    legal_basis: str
    penalty_types: tuple[str, ...]
    amount: float | None
    decision_text: str
    decision_en: str
    decision_date: dt.date
    form: str  # table | text | attachment
    language: str  # zh | en
    faults: tuple[str, ...]

    @property
    def url_path(self) -> str:
        return f"/regulator/penalty/{self.penalty_id}.html"

    @property
    def attachment_path(self) -> str:
        return f"/regulator/files/{self.penalty_id}.txt"

    @property
    def record_id(self) -> str:
        return self.decision_no if self.shows_decision_no else self.penalty_id

    @property
    def title(self) -> str:
        if self.language == "en":
            return f"Administrative penalty decision on {self.institution}"
        if self.form == "table":
            return f"{self.authority}行政处罚信息公开表（{self.decision_no}）"
        return f"{self.authority}关于{self.subject_name}的行政处罚公告"


@dataclass(frozen=True)
class Comment:
    user: str
    text: str
    at: dt.datetime


@dataclass(frozen=True)
class NewsArticle:
    """One news article; ``template`` picks one of the three page layouts."""

    article_id: str
    epoch_added: int
    topic: str  # court_company | company_trouble | penalty | person | industry
    slug: str
    title: str
    paragraphs: tuple[str, ...]
    language: str  # zh | en
    template: str  # article | content | story
    encoding: str  # utf-8 | gbk
    source: str
    author: str | None
    published_at: dt.datetime
    customer_id: str | None
    company: str | None
    subject_name: str | None
    related_record: str | None  # case_no or penalty record id the article reports on
    comments: tuple[Comment, ...]
    faults: tuple[str, ...]

    @property
    def url_path(self) -> str:
        return f"/news/{self.published_at:%Y/%m}/{self.slug}.html"

    @property
    def guid(self) -> str:
        return f"tag:news.riskcontrol.local,2024:{self.article_id}"


@dataclass
class SiteContent:
    """Everything the site serves, for every epoch; pages are rendered from it on demand."""

    seed: int
    customers: int
    start: dt.date
    as_of: dt.date
    epochs: int
    court: tuple[CourtCase, ...]
    penalties: tuple[Penalty, ...]
    news: tuple[NewsArticle, ...]
    _views: dict = field(default_factory=dict, repr=False, compare=False)

    def epoch_time(self, epoch: int) -> dt.datetime:
        """When epoch ``epoch`` went live (lists' Last-Modified, status-change times)."""
        day = self.as_of + dt.timedelta(days=EPOCH_DAYS * (epoch - 1))
        return dt.datetime.combine(day, dt.time(6, 0), CST)

    def check_epoch(self, epoch: int) -> int:
        if not 1 <= epoch <= self.epochs:
            raise ValueError(f"epoch must be in 1..{self.epochs}, got {epoch}")
        return epoch

    def court_at(self, epoch: int) -> tuple[CourtCase, ...]:
        """Court cases visible at ``epoch``, newest filing first (list order)."""
        return self._view("court", epoch, self.court, lambda c: (c.filing_date, c.case_id))

    def penalties_at(self, epoch: int) -> tuple[Penalty, ...]:
        """Penalties visible at ``epoch``, newest decision first."""
        return self._view(
            "penalty", epoch, self.penalties, lambda p: (p.decision_date, p.penalty_id)
        )

    def news_at(self, epoch: int) -> tuple[NewsArticle, ...]:
        """Articles visible at ``epoch``, newest first."""
        return self._view("news", epoch, self.news, lambda a: (a.published_at, a.article_id))

    def _view(self, kind: str, epoch: int, records: Iterable, key) -> tuple:
        """Cached, sorted per-epoch views: list pages are requested far more than built."""
        cache_key = (kind, epoch)
        if cache_key not in self._views:
            visible = [r for r in records if r.epoch_added <= epoch]
            self._views[cache_key] = tuple(sorted(visible, key=key, reverse=True))
        return self._views[cache_key]
