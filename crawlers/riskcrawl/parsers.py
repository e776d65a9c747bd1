"""Pure parsers: (HTML/XML text or bytes, URL) -> plain dicts.

Nothing here knows about Scrapy: every function takes the page content and its URL and
returns dicts (or raises :class:`ParseError` with a rule name and a human reason when a
required field is missing), so they are tested on saved pages and reused anywhere.

HTML is parsed with BeautifulSoup on lxml's lenient HTML parser (unclosed ``<dd>``,
``<td>`` and ``<p>`` are read as a browser would); feeds with lxml's XML parser.

Normalizers turn the many ways public sources write dates, amounts and penalties into
one form: ISO dates (``YYYY-MM-DD``), ISO 8601 timestamps with offset, float yuan and a
closed set of penalty types.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlparse

from bs4 import BeautifulSoup, NavigableString, Tag
from w3lib.encoding import html_to_unicode

__all__ = [
    "PENALTY_TYPES",
    "ParseError",
    "decode_html",
    "extract_main_text",
    "find_penalty_attachment",
    "guess_language",
    "money_amounts",
    "normalize_date",
    "normalize_datetime",
    "parse_amount",
    "parse_article",
    "parse_atom",
    "parse_court_detail",
    "parse_court_list",
    "parse_feed",
    "parse_penalty_attachment",
    "parse_penalty_detail",
    "parse_penalty_list",
    "parse_rss",
    "penalty_types",
]


class ParseError(ValueError):
    """A page that cannot give a valid record: ``rule`` names the check, ``reason`` says why."""

    def __init__(self, rule: str, reason: str):
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


# --------------------------------------------------------------------------------------
# decoding and small helpers
# --------------------------------------------------------------------------------------


def decode_html(content: str | bytes, content_type: str | None = None) -> str:
    """Text of a page: ``str`` as is; ``bytes`` decoded by BOM, header, ``<meta charset>``,
    then detection (GBK/GB2312 are read as their superset GB18030)."""
    if isinstance(content, str):
        return content
    _, text = html_to_unicode(content_type, content)
    return text


def _soup(content: str | bytes) -> BeautifulSoup:
    return BeautifulSoup(decode_html(content), "lxml")


_WS = re.compile(r"[\s\u3000\xa0]+")


def _clean(text: str | None) -> str:
    """Collapse whitespace (including the ideographic space) and strip."""
    return _WS.sub(" ", text or "").strip()


def _text(node: Tag | None) -> str:
    return _clean(node.get_text(" ")) if node is not None else ""


def _last_path_id(url: str) -> str:
    """``/regulator/penalty/P000123.html`` -> ``P000123``."""
    name = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0]


# --------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------

CHINA_TZ = timezone(timedelta(hours=8))

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_TIME = r"(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?\s*" + _TIME)
_NUM_DATE = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)" + _TIME)
_EN_MDY = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?"
    r"\s+(\d{4})" + _TIME,
    re.IGNORECASE,
)
_EN_DMY = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?"
    r"\s+(\d{4})" + _TIME,
    re.IGNORECASE,
)
_RFC822 = re.compile(r"^\s*(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}")
_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _parse_any(text: str) -> tuple[datetime, bool] | None:
    """(datetime, has_time) from any supported form; tz-aware only when the text says so."""
    if not text:
        return None
    s = _clean(text)
    try:
        if _ISO.match(s):
            return datetime.fromisoformat(s.replace("Z", "+00:00")), True
        if _RFC822.match(s):
            return parsedate_to_datetime(s), True
    except (ValueError, TypeError):
        pass

    def build(y: str, mo: int, d: str, hh: str | None, mm: str | None, ss: str | None):
        try:
            value = datetime(int(y), mo, int(d), int(hh or 0), int(mm or 0), int(ss or 0))
        except ValueError:
            return None
        return value, hh is not None

    if m := _CN_DATE.search(s):
        return build(m[1], int(m[2]), m[3], m[4], m[5], m[6])
    if m := _NUM_DATE.search(s):
        return build(m[1], int(m[2]), m[3], m[4], m[5], m[6])
    if m := _EN_MDY.search(s):
        return build(m[3], _MONTHS[m[1][:3].lower()], m[2], m[4], m[5], m[6])
    if m := _EN_DMY.search(s):
        return build(m[3], _MONTHS[m[2][:3].lower()], m[1], m[4], m[5], m[6])
    return None


def normalize_date(text: str | None) -> str | None:
    """Any supported date (``2024年03月05日``, ``2024-03-05``, ``2024/3/5``, ``March 5, 2024``,
    ``Mar 5, 2024 10:21``, RFC 822, ISO 8601) -> ``YYYY-MM-DD`` as written (no tz shift);
    None when there is no date."""
    parsed = _parse_any(text or "")
    return parsed[0].date().isoformat() if parsed else None


def normalize_datetime(text: str | None, default_tz: timezone = CHINA_TZ) -> str | None:
    """Any supported date/time -> ISO 8601 with offset (``2024-03-05T10:21:00+08:00``).

    Times without a zone are taken in ``default_tz`` (China time for these sources);
    dates without a time are midnight."""
    parsed = _parse_any(text or "")
    if parsed is None:
        return None
    value = parsed[0]
    if value.tzinfo is None:
        value = value.replace(tzinfo=default_tz)
    if value.utcoffset() == timedelta(0):
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------
# money
# --------------------------------------------------------------------------------------

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_CN_DIGITS.update({"六": 6, "七": 7, "八": 8, "九": 9})
_CN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
_UNIT = {"千": 1e3, "万": 1e4, "亿": 1e8, "thousand": 1e3, "million": 1e6, "billion": 1e9}
_CURRENCY_PREFIX = r"(?:¥|￥|RMB|CNY|人民币)"
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_CN_NUMBER = r"[零〇一二两三四五六七八九十百千万亿]+"
_MONEY = re.compile(
    rf"(?P<prefix>{_CURRENCY_PREFIX})?\s*(?:(?P<num>{_NUMBER})|(?P<cn>{_CN_NUMBER}))\s*"
    r"(?P<unit>千|万|亿|thousand|million|billion)?\s*(?P<suffix>元|圆|yuan)?",
    re.IGNORECASE,
)


def _cn_numeral(text: str) -> float | None:
    """``五十万`` -> 500000, ``一千二百`` -> 1200, ``三亿`` -> 3e8; None if not a numeral."""
    total, section, digit = 0, 0, None
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_SMALL_UNITS:
            section += (1 if digit is None else digit) * _CN_SMALL_UNITS[ch]
            digit = None
        elif ch in _CN_BIG_UNITS:
            section += digit or 0
            total = (
                (total + section) * _CN_BIG_UNITS[ch]
                if ch == "亿"
                else total + section * (_CN_BIG_UNITS[ch])
            )
            section, digit = 0, None
        else:
            return None
    return float(total + section + (digit or 0))


def _match_value(m: re.Match[str]) -> float | None:
    if m["num"]:
        value = float(m["num"].replace(",", ""))
    else:
        value = _cn_numeral(m["cn"])
        if value is None:
            return None
    if m["unit"]:
        value *= _UNIT[m["unit"].lower()]
    return round(value, 2)


def parse_amount(text: str | None) -> float | None:
    """The first amount in ``text`` as float yuan.

    ``¥12,345.00`` -> 12345.0, ``12345元``, ``1.2万元`` -> 12000.0, ``3亿元`` -> 3e8,
    ``RMB 500,000``, ``人民币50万元`` -> 500000.0; a bare number is taken as yuan (for
    fields that are amounts by their label). None when there is no number."""
    for m in _MONEY.finditer(_clean(text)):
        if m["num"] or m["cn"]:
            value = _match_value(m)
            if value is not None:
                return value
    return None


def money_amounts(text: str | None) -> list[float]:
    """Every amount in running text that is marked as money (a currency prefix, or a
    ``元``/``yuan`` suffix), so years, article numbers and counts are not taken."""
    amounts = []
    for m in _MONEY.finditer(_clean(text)):
        if not (m["num"] or m["cn"]) or not (m["prefix"] or m["suffix"]):
            continue
        if m["cn"] and not m["suffix"]:
            continue
        value = _match_value(m)
        if value is not None:
            amounts.append(value)
    return amounts


# --------------------------------------------------------------------------------------
# penalty types
# --------------------------------------------------------------------------------------

PENALTY_TYPES = ("fine", "warning", "confiscation", "license_revoked", "ban")
_PENALTY_PATTERNS = {
    "fine": re.compile(r"罚款|罚金|\bfined?\b|monetary penalt", re.IGNORECASE),
    "warning": re.compile(r"警告|\bwarn(?:ing|ed)?\b", re.IGNORECASE),
    "confiscation": re.compile(r"没收|confiscat", re.IGNORECASE),
    "license_revoked": re.compile(
        r"吊销|撤销.{0,12}(?:许可|牌照|执照|资格)|revok|withdr[ae]wn? (?:its|the) licen[cs]e",
        re.IGNORECASE,
    ),
    "ban": re.compile(
        r"禁止.{0,12}(?:从事|从业|进入)|禁入|取消.{0,20}任职资格|\bbann?ed\b|\bbarred\b"
        r"|prohibited from",
        re.IGNORECASE,
    ),
}


def penalty_types(text: str | None) -> list[str]:
    """The penalty types a decision names, Chinese or English, in the order they appear
    (``警告并罚款人民币30万元`` -> ``["warning", "fine"]``); each one of
    :data:`PENALTY_TYPES`."""
    text = text or ""
    found = [
        (m.start(), kind) for kind in PENALTY_TYPES if (m := _PENALTY_PATTERNS[kind].search(text))
    ]
    return [kind for _, kind in sorted(found)]


# --------------------------------------------------------------------------------------
# court enforcement / dishonest-debtor lists
# --------------------------------------------------------------------------------------

COURT_LABELS = {
    "被执行人姓名/名称": "subject_name",
    "身份证号码/组织机构代码": "id_number",
    "执行法院": "court",
    "案号": "case_no",
    "执行标的": "amount",
    "立案时间": "filing_date",
    "案件状态": "status",
    "名单类型": "list_type",
    "性别": "gender",
    "年龄": "age",
    "省份": "province",
}
LIST_TYPES = {"被执行人": "enforcement", "失信被执行人": "dishonest"}
_COMPANY_WORDS = re.compile(r"公司|集团|企业|合伙|工作室|商行|经营部|厂|店|中心|银行|事务所")
_PERSON_ID = re.compile(r"^\d{6}(?:\d{8}|\*{8})\d{3}[\dXx]$|^\d{4}\*+\d{3}[\dXx]$")


def _label_pairs(soup: BeautifulSoup, container: Tag) -> dict[str, str]:
    """``<dt>LABEL</dt><dd>VALUE</dd>`` (or th/td rows) as {label: value}."""
    pairs: dict[str, str] = {}
    for dt in container.find_all(["dt", "th"]):
        label = _clean(dt.get_text()).rstrip("：:")
        value_tag = dt.find_next_sibling(["dd", "td"])
        if value_tag is not None and label and label not in pairs:
            pairs[label] = _text(value_tag)
    return pairs


def _list_rows(soup: BeautifulSoup, url: str) -> list[dict[str, str]]:
    rows = []
    for tr in soup.select("tr.case-row"):
        link = tr.select_one("td.name a[href]") or tr.select_one("a[href]")
        if link is None:
            continue
        rows.append(
            {
                "url": urljoin(url, link["href"]),
                "name": _text(link),
                "court": _text(tr.select_one("td.court")),
                "case_no": _text(tr.select_one("td.case-no")),
                "filed": normalize_date(_text(tr.select_one("td.filed"))),
            }
        )
    return rows


def _next_links(soup: BeautifulSoup, url: str) -> tuple[str | None, list[str]]:
    """(the "next page" link, every pagination link) of a list page."""
    nxt = soup.select_one("a.next[href], a[rel~=next][href], link[rel~=next][href]")
    pages = [urljoin(url, a["href"]) for a in soup.select(".pagination a[href]")]
    return (urljoin(url, nxt["href"]) if nxt else None), pages


def parse_court_list(content: str | bytes, url: str) -> dict:
    """A court list or search-result page -> ``{"entries": [...], "next_url", "page_urls"}``.

    Each entry: ``url`` (detail page), ``name``, ``court``, ``case_no``, ``filed``."""
    soup = _soup(content)
    next_url, pages = _next_links(soup, url)
    return {"entries": _list_rows(soup, url), "next_url": next_url, "page_urls": pages}


def _subject_type(name: str, id_number: str, pairs: dict[str, str]) -> str:
    if "性别" in pairs or "年龄" in pairs:
        return "person"
    if _COMPANY_WORDS.search(name):
        return "company"
    if _PERSON_ID.match(id_number):
        return "person"
    return "company" if len(name) > 4 else "person"


def parse_court_detail(content: str | bytes, url: str) -> dict:
    """A court case page -> the court_record fields (see crawlers/CONTRACT.md).

    Raises ``ParseError("missing_case_no", ...)`` without 案号 and ``missing_<field>``
    for the other required fields."""
    soup = _soup(content)
    container = soup.select_one("dl.case-detail") or soup.body or soup
    pairs = _label_pairs(soup, container)
    fields = {COURT_LABELS[k]: v for k, v in pairs.items() if k in COURT_LABELS}

    if not fields.get("case_no"):
        raise ParseError("missing_case_no", "court detail page without 案号")
    for key, label in (
        ("subject_name", "被执行人姓名/名称"),
        ("court", "执行法院"),
        ("filing_date", "立案时间"),
        ("list_type", "名单类型"),
    ):
        if not fields.get(key):
            raise ParseError(f"missing_{key}", f"court detail page without {label}")

    filing_date = normalize_date(fields["filing_date"])
    if filing_date is None:
        raise ParseError("bad_filing_date", f"unreadable 立案时间 {fields['filing_date']!r}")
    list_type = LIST_TYPES.get(fields["list_type"])
    if list_type is None:
        raise ParseError("bad_list_type", f"unknown 名单类型 {fields['list_type']!r}")
    id_number = fields.get("id_number", "").replace(" ", "")
    amount_text = fields.get("amount")
    amount = parse_amount(amount_text) if amount_text else None
    if amount_text and amount is None:
        raise ParseError("bad_amount", f"unreadable 执行标的 {amount_text!r}")

    record = {
        "record_id": fields["case_no"],
        "subject_name": fields["subject_name"],
        "subject_type": _subject_type(fields["subject_name"], id_number, pairs),
        "id_number": id_number or None,
        "id_masked": "*" in id_number,
        "court": fields["court"],
        "case_no": fields["case_no"],
        "amount": amount,
        "filing_date": filing_date,
        "status": fields.get("status") or None,
        "list_type": list_type,
    }
    return record


# --------------------------------------------------------------------------------------
# regulator penalties
# --------------------------------------------------------------------------------------

PENALTY_LABELS = {
    "行政处罚决定书文号": "decision_no",
    "当事人名称": "institution",
    "主要违法违规事实": "reason",
    "行政处罚依据": "legal_basis",
    "行政处罚决定": "decision",
    "作出处罚决定的机关名称": "authority",
    "作出处罚决定的日期": "decision_date",
}
ATTACHMENT_LABELS = {
    "当事人": "institution",
    "文号": "decision_no",
    "违法事实": "reason",
    "依据": "legal_basis",
    "处罚依据": "legal_basis",
    "处罚决定": "decision",
    "机关": "authority",
    "日期": "decision_date",
}
_DECISION_NO = re.compile(r"[\u4e00-\u9fff]{1,16}[〔\[(（【]\d{4}[〕\])）】]\s*\d{1,6}\s*号")


def parse_penalty_list(content: str | bytes, url: str) -> dict:
    """A penalty list page -> ``{"entries": [{url, title, date}], "next_url", "page_urls"}``."""
    soup = _soup(content)
    entries = []
    for li in soup.select("ul.penalty-list li"):
        link = li.select_one("a[href]")
        if link is None:
            continue
        entries.append(
            {
                "url": urljoin(url, link["href"]),
                "title": _text(link),
                "date": normalize_date(_text(li.select_one(".date"))),
            }
        )
    next_url, pages = _next_links(soup, url)
    return {"entries": entries, "next_url": next_url, "page_urls": pages}


def find_penalty_attachment(content: str | bytes, url: str) -> str | None:
    """The URL of the decision attachment of an attachment-only penalty page, else None."""
    soup = _soup(content)
    link = soup.select_one("a.attachment[href]")
    return urljoin(url, link["href"]) if link is not None else None


def _penalty_record(fields: dict[str, str | None], url: str, form: str) -> dict:
    decision = fields.get("decision") or ""
    if not decision.strip():
        raise ParseError("missing_penalty_decision", "penalty page without decision text")
    if not fields.get("institution"):
        raise ParseError("missing_institution", "penalty page without the party's name")
    decision_date = normalize_date(fields.get("decision_date"))
    if decision_date is None:
        raise ParseError("missing_decision_date", "penalty page without a decision date")
    amounts = money_amounts(decision)
    decision_no = fields.get("decision_no") or None
    return {
        "record_id": decision_no or _last_path_id(url),
        "institution": fields["institution"],
        "penalty_types": penalty_types(decision),
        "amount": round(sum(amounts), 2) if amounts else None,
        "reason": fields.get("reason") or None,
        "decision_date": decision_date,
        "authority": fields.get("authority") or None,
        "decision_no": decision_no,
        "form": form,
    }


# Chinese prose: <party>：
#   经查，<party>存在<facts>等违法违规行为。依据《…》，我局决定对其<decision>。
_ZH_ADDRESSEE = re.compile(r"^(?P<party>[^，。,；;]{2,80})[：:]$")
_ZH_PARTY = re.compile(r"经查[，,：:]\s*(?P<party>.+?)(?:存在|在[^，。]{0,20}?期间|违反|未经|对)")
_ZH_FACTS = re.compile(r"存在(?P<facts>.+?)等?违法违规(?:行为|事实)")
_DECISION_LEAD = re.compile(
    r"^(?:如下)?[：:]?\s*(?:对其|对该[^，。]{0,8}?(?=罚|警|没|吊|禁|取|责)|给予|作出)?"
)
# English prose: "..., <party> has been fined RMB 500,000 by the <authority> on <date>."
_EN_DECISION = re.compile(
    r"(?P<lead>[^.]*?)\s(?P<decision>(?:has|have|had|was|were|is)\s.+?)\s+by\s+(?:the\s+)?"
    r"(?P<authority>[^.]+?)\s+on\s+(?P<date>[A-Z][a-z]+\.?\s+\d{1,2},\s+\d{4})"
)
_EN_FACTS = re.compile(r"^(?:Upon investigation|It was found that)[,:]?\s*(?P<rest>.+?)\.?$", re.I)
_SIGNATURE_DATE = re.compile(r"^[\d\s年月日/.-]+$|^[A-Z][a-z]+\.? \d{1,2}, \d{4}$")


def _english_prose(paragraphs: list[str]) -> dict[str, str | None] | None:
    for i, p in enumerate(paragraphs):
        m = _EN_DECISION.search(p)
        if m is None:
            continue
        party = _clean(m["lead"].rsplit(", ", 1)[-1])
        fields: dict[str, str | None] = {
            "institution": party,
            "decision": _clean(m["decision"]),
            "authority": _clean(m["authority"]),
            "decision_date": m["date"],
        }
        for q in paragraphs[:i]:
            f = _EN_FACTS.match(q)
            if f and party and f["rest"].startswith(party):
                fields["reason"] = f["rest"][len(party) :].strip(" ,.") or None
        return fields
    return None


def _chinese_prose(paragraphs: list[str]) -> dict[str, str | None]:
    fields: dict[str, str | None] = {}
    text = "".join(paragraphs)
    for p in paragraphs:  # the addressee line of a decision: "<party>："
        if (m := _ZH_ADDRESSEE.match(p)) and not _DECISION_NO.search(p):
            fields["institution"] = m["party"]
            break
    if "institution" not in fields and (m := _ZH_PARTY.search(text)):
        fields["institution"] = _clean(m["party"])
    if m := _ZH_FACTS.search(text):
        fields["reason"] = _clean(m["facts"])
    elif (m := re.search(r"经查[，,：:]\s*(?P<rest>[^。]+)。", text)) and fields.get("institution"):
        rest = m["rest"]
        party = fields["institution"]
        fields["reason"] = rest[len(party) :] if rest.startswith(party) else rest
    for p in paragraphs:
        idx = p.rfind("决定")
        if idx < 0:
            continue
        decision = _DECISION_LEAD.sub("", p[idx + 2 :].split("。")[0]).strip()
        if money_amounts(decision) or penalty_types(decision):
            fields["decision"] = decision
            break
    return fields


def _prose_fields(paragraphs: list[str]) -> dict[str, str | None]:
    """Fields of a free-text announcement, Chinese or English.

    The decision number is a paragraph of its own (``京金罚决字〔2025〕12号``); the
    authority and the date are the signature block, the last two short paragraphs."""
    fields = _english_prose(paragraphs) or _chinese_prose(paragraphs)
    for p in paragraphs:
        if m := _DECISION_NO.search(p):
            fields["decision_no"] = m[0]
            break
    tail = [p for p in paragraphs if len(p) <= 80][-2:]
    if len(tail) == 2 and _SIGNATURE_DATE.match(tail[1]) and normalize_date(tail[1]):
        fields["authority"] = fields.get("authority") or tail[0]
        fields["decision_date"] = fields.get("decision_date") or tail[1]
    return fields


def parse_penalty_detail(content: str | bytes, url: str) -> dict:
    """A penalty announcement page (structured table or free text) -> penalty fields.

    Raises ``ParseError("missing_penalty_decision", ...)`` when the page has no decision
    text, and ``ParseError("attachment_only", ...)`` for an attachment-only page (use
    :func:`find_penalty_attachment` and :func:`parse_penalty_attachment` for those)."""
    soup = _soup(content)
    table = soup.select_one("table.penalty-table")
    if table is not None:
        pairs = _label_pairs(soup, table)
        fields = {PENALTY_LABELS[k]: v for k, v in pairs.items() if k in PENALTY_LABELS}
        return _penalty_record(fields, url, "table")
    block = soup.select_one("div.announcement")
    if block is None:
        raise ParseError("missing_penalty_decision", "penalty page without decision text")
    if block.select_one("a.attachment[href]") is not None:
        raise ParseError("attachment_only", "the decision is in the attachment")
    paragraphs = [t for p in block.find_all("p") if (t := _text(p))]
    if not paragraphs:
        paragraphs = [t for t in (_clean(s) for s in block.stripped_strings) if t]
    fields = _prose_fields(paragraphs)
    return _penalty_record(fields, url, "text")


def parse_penalty_attachment(text: str | bytes, url: str, page_url: str | None = None) -> dict:
    """The plain-text decision attachment (labelled lines ``当事人：…``) -> penalty fields.

    ``record_id`` falls back to the id of the announcement page (``page_url``) or of the
    attachment itself when the attachment has no 文号."""
    if isinstance(text, bytes):
        text = decode_html(text, "text/plain; charset=gb18030")
    fields: dict[str, str | None] = {}
    current = None
    for raw in text.splitlines():
        line = _clean(raw)
        if not line:
            continue
        m = re.match(r"^([^：:]{1,12})[：:]\s*(.*)$", line)
        if m and m[1] in ATTACHMENT_LABELS:
            current = ATTACHMENT_LABELS[m[1]]
            fields[current] = m[2]
        elif current is not None:  # a wrapped value continues on the next line
            fields[current] = f"{fields[current]}{line}"
    return _penalty_record(fields, page_url or url, "attachment")


# --------------------------------------------------------------------------------------
# news: feeds and article pages
# --------------------------------------------------------------------------------------


def _xml(content: str | bytes) -> BeautifulSoup:
    return BeautifulSoup(content, "xml")


def _child_text(node: Tag, name: str) -> str:
    child = node.find(name, recursive=False)
    return _clean(child.get_text()) if child is not None else ""


def parse_rss(content: str | bytes, url: str) -> list[dict]:
    """RSS 2.0 -> entries ``{title, link, published_at (ISO 8601), guid, news_source, feed}``."""
    entries = []
    for item in _xml(content).find_all("item"):
        link = _child_text(item, "link")
        entries.append(
            {
                "title": _child_text(item, "title"),
                "link": urljoin(url, link) if link else None,
                "published_at": normalize_datetime(_child_text(item, "pubDate")),
                "guid": _child_text(item, "guid") or None,
                "news_source": _child_text(item, "source") or None,
                "feed": "rss",
            }
        )
    return entries


def parse_atom(content: str | bytes, url: str) -> list[dict]:
    """Atom 1.0 -> entries in the same shape as :func:`parse_rss` (``feed="atom"``)."""
    entries = []
    for entry in _xml(content).find_all("entry"):
        link = None
        for candidate in entry.find_all("link", recursive=False):
            if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
                link = urljoin(url, candidate["href"])
                break
        source = entry.find("source", recursive=False)
        author = entry.find("author", recursive=False)
        news_source = None
        if source is not None:
            news_source = _child_text(source, "title") or _clean(source.get_text()) or None
        elif author is not None:
            news_source = _child_text(author, "name") or None
        published = _child_text(entry, "published") or _child_text(entry, "updated")
        entries.append(
            {
                "title": _child_text(entry, "title"),
                "link": link,
                "published_at": normalize_datetime(published),
                "guid": _child_text(entry, "id") or None,
                "news_source": news_source,
                "feed": "atom",
            }
        )
    return entries


def parse_feed(content: str | bytes, url: str) -> list[dict]:
    """RSS or Atom, decided by the document's root element."""
    soup = _xml(content)
    root = next((c for c in soup.children if isinstance(c, Tag)), None)
    if root is not None and root.name == "feed":
        return parse_atom(content, url)
    if root is not None and root.name in ("rss", "RDF"):
        return parse_rss(content, url)
    raise ParseError("not_a_feed", f"root element {getattr(root, 'name', None)!r}")


_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")


def guess_language(text: str) -> str:
    """``zh`` when Chinese characters are a noticeable share of the letters, else ``en``."""
    cjk, latin = len(_CJK.findall(text)), len(_LATIN.findall(text))
    return "zh" if cjk and cjk * 3 >= latin else "en"


# Boilerplate: elements dropped before looking for the article text.
_DROP_TAGS = (
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "iframe", "button", "select", "input", "textarea", "svg", "canvas", "object", "embed",
)  # fmt: skip
_BOILER_TOKENS = {
    "nav", "navbar", "navigation", "menu", "topbar", "breadcrumb", "breadcrumbs", "crumb",
    "crumbs", "share", "sharing", "social", "sidebar", "side", "aside", "related", "hot",
    "popular", "recommend", "recommended", "ad", "ads", "advert", "advertisement", "banner",
    "sponsor", "sponsored", "promo", "comment", "comments", "reply", "replies", "footer",
    "copyright", "toolbar", "pagination", "pager", "login", "subscribe", "newsletter", "tags",
    "widget", "rank", "ranking",
}  # fmt: skip
_META_TOKENS = {
    "meta", "info", "byline", "dateline", "date", "time", "source", "author", "title",
    "subtitle", "caption", "editor",
}  # fmt: skip
_TOKEN_SPLIT = re.compile(r"[\s_\-]+")
_META_TEXT = re.compile(
    r"^(?:发布时间|发表时间|时间|来源|作者|编辑|责任编辑|By\s|Source:|Published|Updated)", re.I
)
_BLOCKS = ("div", "article", "section", "main", "td", "body", "blockquote")


def _tokens(tag: Tag) -> set[str]:
    values = list(tag.get("class") or [])
    if tag.get("id"):
        values.append(tag["id"])
    if tag.get("role"):
        values.append(tag["role"])
    return {t.lower() for v in values for t in _TOKEN_SPLIT.split(str(v)) if t}


def _link_density(tag: Tag, text_len: int) -> float:
    if not text_len:
        return 1.0
    linked = sum(len(_clean(a.get_text())) for a in tag.find_all("a"))
    return min(1.0, linked / text_len)


def _paragraph_score(text: str) -> float:
    """Readability-style weight of one paragraph: longer, punctuated prose scores more."""
    if len(text) < 10:
        return 0.0
    commas = len(re.findall(r"[，,、；;。.!?！？]", text))
    return 1.0 + commas + min(len(text) / 50.0, 6.0)


def _is_meta_paragraph(tag: Tag, text: str) -> bool:
    return bool(_tokens(tag) & _META_TOKENS) or bool(_META_TEXT.match(text))


def extract_main_text(soup: BeautifulSoup) -> tuple[Tag | None, list[str]]:
    """The article's container and its paragraphs, boilerplate removed.

    Two passes: (1) drop elements that are boilerplate by tag (nav, header, footer, aside,
    form, script...) or by class/id tokens (menu, breadcrumb, share, sidebar, related, ad,
    comment, copyright...); (2) score every block element by the text density of the
    paragraphs it holds (length and punctuation, discounted by link density; a parent
    gets a paragraph's full score, the grandparent half) and keep the best block's
    paragraphs, minus metadata lines (byline, time, source). The density pass alone
    picks the article on pages whose boilerplate carries no telling class names."""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed or tag.name in ("html", "body"):
            continue
        if _tokens(tag) & _BOILER_TOKENS and not tag.find("h1"):
            tag.decompose()

    scores: dict[int, float] = {}
    nodes: dict[int, Tag] = {}
    for p in soup.find_all(["p", "pre"]):
        text = _clean(p.get_text(" "))
        if _is_meta_paragraph(p, text):
            continue
        score = _paragraph_score(text) * (1.0 - _link_density(p, len(text)))
        if not score:
            continue
        parent = p.find_parent(_BLOCKS)
        for weight, node in ((1.0, parent), (0.5, parent.find_parent(_BLOCKS) if parent else None)):
            if node is None:
                continue
            scores[id(node)] = scores.get(id(node), 0.0) + score * weight
            nodes[id(node)] = node
    if not scores:
        return None, []
    best = nodes[max(scores, key=lambda k: scores[k])]
    paragraphs = []
    for p in best.find_all(["p", "pre"]):
        text = _clean(p.get_text(" "))
        if not text or _is_meta_paragraph(p, text):
            continue
        if _link_density(p, len(text)) > 0.5:
            continue
        paragraphs.append(text)
    if not paragraphs:  # text directly in the block, split by <br>
        lines = [_clean(s) for s in best.strings if isinstance(s, NavigableString)]
        paragraphs = [s for s in lines if len(s) >= 10]
    return best, paragraphs


_SOURCE_TEXT = re.compile(r"(?:来源|Source)\s*[：:]\s*([^|｜\s]+(?:\s[A-Z][\w&.-]*)*)")


def parse_article(content: str | bytes, url: str) -> dict:
    """A news article page (any of the three templates, or an unknown one) ->
    ``{title, published_at, news_source, body, language}``.

    Raises ``ParseError("missing_title")`` / ``ParseError("missing_body")``."""
    soup = _soup(content)
    h1 = soup.find("h1")
    title = _text(h1) or _text(soup.find("title"))
    published_at = None
    time_tag = soup.find("time")
    if time_tag is not None:
        published_at = normalize_datetime(time_tag.get("datetime") or _text(time_tag))
    meta_texts = [
        _text(t)
        for t in soup.select(".meta, .info, .byline, .source, .dateline, .date, .time")
        if t is not None
    ]
    if published_at is None:
        for t in meta_texts:
            if published_at := normalize_datetime(t):
                break
    news_source = None
    source_tag = soup.select_one(".source")
    for t in ([_text(source_tag)] if source_tag is not None else []) + meta_texts:
        if m := _SOURCE_TEXT.search(t):
            news_source = m[1].strip()
            break

    _, paragraphs = extract_main_text(soup)
    if not title:
        raise ParseError("missing_title", "article page without a title")
    body = "\n".join(paragraphs)
    if not body:
        raise ParseError("missing_body", "article page without body text")
    return {
        "title": title,
        "published_at": published_at,
        "news_source": news_source,
        "body": body,
        "language": guess_language(title + body),
    }


def parse_hub_links(content: str | bytes, url: str) -> list[str]:
    """Every link of a page (absolute, fragment-free, in document order, unique); schemes
    are kept as written so the crawler's policy, not the parser, decides what to follow."""
    soup = _soup(content)
    seen: dict[str, None] = {}
    for a in soup.find_all("a", href=True):
        href = a["href"].strip()
        if not href or href.startswith("#"):
            continue
        seen.setdefault(urljoin(url, href).split("#", 1)[0], None)
    return list(seen)
