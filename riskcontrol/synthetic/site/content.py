"""The generated public web's content: court cases, penalties and news, epoch by epoch.

``build_site`` reads the lending book (``lending.db`` with sqlite3, ``generation.json``)
and decides, deterministically for (book, seed), who appears where: most court subjects
are customers who went 90+ days past due, some are good customers, some are people
outside the book, and some share a name with a customer but nothing else (the hard
cases for entity resolution). Companies come from the customers' employers.

Epoch k's records are drawn from a random stream of their own, after epochs 1..k-1, so
adding epochs never changes an earlier epoch. Epoch 1 is dated before the book's
``as_of``; epoch k >= 2 falls in the week ``[as_of + 7(k-2), as_of + 7(k-1))``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from riskcontrol.synthetic.site import faults
from riskcontrol.synthetic.site.book import load_book, rng_for
from riskcontrol.synthetic.site.court import CourtBuilder
from riskcontrol.synthetic.site.news import NewsBuilder
from riskcontrol.synthetic.site.records import (
    CLOSED,
    CourtCase,
    NewsArticle,
    Penalty,
    SiteContent,
)
from riskcontrol.synthetic.site.regulator import PenaltyBuilder
from riskcontrol.synthetic.site.render import crawl_targets, page_counts


@dataclass(frozen=True)
class Sizes:
    """How many records epoch 1 gets, and the growth of each later epoch."""

    person_cases: int
    company_cases: int
    penalties: int
    news: int

    @classmethod
    def for_book(cls, customers: int, scale: float) -> Sizes:
        def sized(n: float, floor: int) -> int:
            return max(floor, round(n * scale))

        return cls(
            person_cases=sized(min(0.025 * customers, 1500), 4),
            company_cases=sized(min(max(2, customers / 50), 300), 2),
            penalties=sized(min(150, max(10, customers / 40)), 3),
            news=sized(min(300, max(20, customers / 20)), 5),
        )

    def grown(self, rng: random.Random) -> Sizes:
        """A later epoch: 5-10% more of each kind (at least one)."""

        def more(n: int) -> int:
            return max(1, round(n * rng.uniform(0.05, 0.10)))

        return Sizes(
            more(self.person_cases),
            more(self.company_cases),
            more(self.penalties),
            more(self.news),
        )


def build_site(data_dir: Path, seed: int, epochs: int = 3, scale: float = 1.0) -> SiteContent:
    """Decide every record of every epoch from the lending book in ``data_dir``.

    ``scale`` multiplies the record counts (the caps included), for bigger or smaller
    sites than the defaults, which keep a 20,000-customer site to about 1,500 pages.
    """
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    book, start, as_of = load_book(Path(data_dir))
    content_start = max(start, as_of - dt.timedelta(days=730))
    court = CourtBuilder(seed, book, content_start, as_of)
    penalties = PenaltyBuilder(seed, book, content_start, as_of)
    news = NewsBuilder(seed, book, content_start, as_of)
    sizes = Sizes.for_book(len(book), scale)
    for epoch in range(1, epochs + 1):
        size = sizes if epoch == 1 else sizes.grown(rng_for(seed, "growth", epoch))
        court.add_epoch(epoch, size.person_cases, size.company_cases)
        penalties.add_epoch(epoch, size.penalties)
        news.add_epoch(epoch, size.news, court.cases, penalties.penalties)
    return SiteContent(
        seed=seed,
        customers=len(book),
        start=content_start,
        as_of=as_of,
        epochs=epochs,
        court=tuple(court.cases),
        penalties=tuple(penalties.penalties),
        news=tuple(news.articles),
    )


# --- ground truth ------------------------------------------------------------------------------
def _court_truth(c: CourtCase) -> dict:
    return {
        "kind": "court",
        "record_id": c.case_no,
        "url_path": c.url_path,
        "epoch_added": c.epoch_added,
        "customer_id": c.customer_id,
        "company": c.company,
        "subject_name": c.subject_name,
        "subject_type": c.subject_type,
        "subject_origin": c.subject_origin,
        "id_number": c.id_number,
        "id_shown": c.id_shown,
        "id_masked": c.id_masked,
        "court": c.court,
        "case_no": c.case_no,
        "list_type": "dishonest" if c.list_type == "失信被执行人" else "enforcement",
        "amount": c.amount,
        "filing_date": c.filing_date.isoformat(),
        "status": c.status,
        "status_changes": (
            [{"epoch": c.closed_epoch, "status": CLOSED}] if c.closed_epoch is not None else []
        ),
        "has_fault": bool(c.faults),
        "faults": list(c.faults),
        "expect_record": "missing_case_no" not in c.faults,
    }


def _penalty_truth(p: Penalty) -> dict:
    return {
        "kind": "penalty",
        "record_id": p.record_id,
        "url_path": p.url_path,
        "epoch_added": p.epoch_added,
        "customer_id": p.customer_id,
        "company": p.company,
        "subject_name": p.subject_name,
        "subject_type": p.subject_type,
        "institution": p.institution,
        "list_type": None,
        "amount": p.amount,
        "penalty_types": list(p.penalty_types),
        "decision_no": p.decision_no if p.shows_decision_no else None,
        "authority": p.authority_en if p.language == "en" else p.authority,
        "decision_date": p.decision_date.isoformat(),
        "form": p.form,
        "language": p.language,
        "attachment_path": p.attachment_path if p.form == "attachment" else None,
        "has_fault": bool(p.faults),
        "faults": list(p.faults),
        "expect_record": "no_decision_text" not in p.faults,
    }


def _news_truth(a: NewsArticle) -> dict:
    return {
        "kind": "news",
        "record_id": a.guid,
        "url_path": a.url_path,
        "epoch_added": a.epoch_added,
        "customer_id": a.customer_id,
        "company": a.company,
        "subject_name": a.subject_name,
        "list_type": None,
        "amount": None,
        "published_at": a.published_at.isoformat(),
        "title": a.title,
        "topic": a.topic,
        "language": a.language,
        "template": a.template,
        "encoding": a.encoding,
        "news_source": a.source,
        "related_record": a.related_record,
        "has_fault": bool(a.faults),
        "faults": list(a.faults),
        "expect_record": True,
    }


def ground_truth(content: SiteContent) -> Iterator[dict]:
    """One dict per court case, penalty and article, in a stable order."""
    yield from (_court_truth(c) for c in content.court)
    yield from (_penalty_truth(p) for p in content.penalties)
    yield from (_news_truth(a) for a in content.news)


def first_request_faults(content: SiteContent) -> dict[str, int]:
    """List, feed, sitemap and attachment targets (of any epoch) whose first request fails."""
    targets = {
        target
        for epoch in range(1, content.epochs + 1)
        for kind, paths in crawl_targets(content, epoch).items()
        if not kind.endswith("_detail") and kind != "news_article"
        for target in paths
    }
    found = ((t, faults.first_request_fault(content.seed, t)) for t in sorted(targets))
    return {t: status for t, status in found if status is not None}


def summary(content: SiteContent) -> dict:
    """The ``site.json`` summary: records and pages per kind and epoch, and the fault paths.

    Detail pages' faults are in ``fault_paths`` (as in the ground truth); other pages'
    first-request statuses are in ``other_first_request_faults``.
    """
    per_epoch: dict[str, Counter] = {"court": Counter(), "penalty": Counter(), "news": Counter()}
    for row in ground_truth(content):
        per_epoch[row["kind"]][row["epoch_added"]] += 1
    fault_paths: dict[str, list[str]] = {}
    for row in ground_truth(content):
        for name in row["faults"]:
            fault_paths.setdefault(name, []).append(row["url_path"])
    closed = Counter(c.closed_epoch for c in content.court if c.closed_epoch is not None)
    return {
        "seed": content.seed,
        "customers": content.customers,
        "as_of": content.as_of.isoformat(),
        "epochs": content.epochs,
        "records_added": {
            kind: {str(e): counts[e] for e in range(1, content.epochs + 1)}
            for kind, counts in per_epoch.items()
        },
        "court_status_changes": {str(e): closed[e] for e in range(2, content.epochs + 1)},
        "pages": {str(e): page_counts(content, e) for e in range(1, content.epochs + 1)},
        "fault_paths": {name: sorted(paths) for name, paths in sorted(fault_paths.items())},
        "other_first_request_faults": first_request_faults(content),
        "oversized_path": "/news/archive/full-dump.html",
    }


def write_ground_truth(content: SiteContent, site_dir: Path) -> Path:
    """Write ``ground_truth.jsonl`` and ``site.json`` to ``site_dir``; returns the former."""
    site_dir = Path(site_dir)
    site_dir.mkdir(parents=True, exist_ok=True)
    path = site_dir / "ground_truth.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for row in ground_truth(content):
            out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    (site_dir / "site.json").write_text(
        json.dumps(summary(content), ensure_ascii=False, indent=2) + "\n",
        encoding="utf-8",
    )
    return path
