"""Point-in-time features and matured labels, hand-checked on tiny books."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from riskcontrol.analyze import labels
from riskcontrol.core import dates
from riskcontrol.modeling import models, plots

D = dt.date


def test_pit_dpd(spark):
    rows = [
        (D(2024, 1, 10), None, D(2024, 3, 1)),  # unpaid: 51 days late on Mar 1
        (D(2024, 1, 10), D(2024, 1, 15), D(2024, 3, 1)),  # paid 5 days late
        (D(2024, 1, 10), D(2024, 5, 1), D(2024, 3, 1)),  # paid after as-of: still unpaid then
        (D(2024, 4, 10), None, D(2024, 3, 1)),  # not yet due
        (D(2024, 1, 10), D(2024, 1, 1), D(2024, 3, 1)),  # paid early
    ]
    df = spark.createDataFrame(rows, "due date, paid date, asof date")
    got = [
        r[0] for r in df.select(dates.pit_dpd(F.col("due"), F.col("paid"), F.col("asof"))).collect()
    ]
    assert got == [51, 5, 51, 0, 0]


def add_months(day: dt.date, months: int) -> dt.date:
    """Spark's add_months: the same day ``months`` later, clamped to the month's end."""
    y, m = divmod(day.month - 1 + months, 12)
    first = D(day.year + y, m + 1, 1)
    following = D(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first.replace(day=min(day.day, (following - first).days))


def _schedule(loan_id: str, disbursed: dt.date, paid: list[dt.date | None]) -> list[tuple]:
    """Installment k due k months after ``disbursed``, paid on ``paid[k-1]`` (None: never)."""
    return [(loan_id, k, add_months(disbursed, k), p) for k, p in enumerate(paid, start=1)]


REPAYMENTS = "loan_id string, installment_no int, due_date date, paid_date date"
LOANS = "loan_id string, application_id string, disbursed_date date"


def test_a_stop_at_installment_four_is_bad_whatever_the_disbursement_month(spark):
    # Six installments; 1-3 paid on the day, nothing from installment 4. A window of six
    # calendar months from disbursement saw installment 4 59 to 62 days late at its end
    # (disbursed 2022-10-01: due 2023-02-01, window end 04-01, 59 days: good at 60 DPD;
    # 2023-03-01: 62 days, bad). Judged 90 days after installment 6 falls due, each such
    # loan is 90+ days late: bad, whatever the month it was disbursed in.
    disbursed = [D(2022, m, d) for m in range(1, 13) for d in (1, 15, 28)]
    disbursed += [D(2023, m, d) for m in range(1, 13) for d in (1, 15, 28)]
    disbursed += [D(2023, 1, 31), D(2023, 3, 31), D(2023, 5, 31), D(2023, 8, 31)]
    calendar_window = {(add_months(d, 6) - add_months(d, 4)).days for d in disbursed}
    assert calendar_window == {59, 60, 61, 62}  # what the old window saw
    loans, reps = [], []
    for i, day0 in enumerate(disbursed):
        loans.append((f"L{i}", f"A{i}", day0))
        due = [add_months(day0, k) for k in range(1, 7)]
        reps += _schedule(f"L{i}", day0, [*due[:3], None, None, None])
    got = labels.loan_labels(
        spark.createDataFrame(loans, LOANS),
        spark.createDataFrame(reps, REPAYMENTS),
        D(2025, 1, 1),
        labels.LabelDefinition(),
    ).collect()
    assert len(got) == len(disbursed)
    assert {(r.label_status, r.label, r.label_matured) for r in got} == {("bad", 1, True)}
    # The worst delay is installment 4's on the judgement day.
    for r in got:
        day0 = disbursed[int(r.application_id[1:])]
        assert r.judged_on == add_months(day0, 6) + dt.timedelta(days=90)
        assert r.worst_dpd == (r.judged_on - add_months(day0, 4)).days


def test_the_default_definition_on_a_hand_made_book(spark):
    day0 = D(2024, 1, 15)
    due = [add_months(day0, k) for k in range(1, 9)]

    def late(k: int, days: int) -> dt.date:
        return due[k - 1] + dt.timedelta(days=days)

    paid = {
        "G": due[:6],  # every installment on the day: good
        "I": [*due[:2], late(3, 45), *due[3:6]],  # 45 days late, then cured: indeterminate
        "J": [*due[:5], late(6, 89)],  # 89 days late on the judgement day: indeterminate
        "B": [*due[:5], None],  # installment 6 never paid: 90 on the judgement day: bad
        "P": [*due[:5], late(6, 95)],  # paid after the judgement day: 90 then: bad
        "A": [*due[:6], None, None],  # stops at installment 7, after the window: good
        "S": [due[0], late(2, 100), due[2]],  # a 3-installment loan, 100 days late: bad
    }
    reps = [row for loan_id, p in paid.items() for row in _schedule(loan_id, day0, p)]
    young = D(2024, 6, 1)  # installment 6 due Dec 1: judged 2025-03-01, after the as-of
    reps += _schedule("Y", young, [None] * 6)
    reps.reverse()  # the window is taken in due order, not in file order
    book = [(k, f"app-{k}", day0) for k in paid] + [("Y", "app-Y", young), ("N", "app-N", day0)]
    got = {
        r.application_id[4:]: (r.label_status, r.label, r.label_matured, r.worst_dpd)
        for r in labels.loan_labels(
            spark.createDataFrame(book, LOANS),
            spark.createDataFrame(reps, REPAYMENTS),
            D(2024, 11, 1),
            labels.LabelDefinition(),
        ).collect()
    }
    # Six installments: judged 2024-07-15 + 90 days = 10-13; the 3-installment loan
    # 2024-04-15 + 90 = 07-14; both before the as-of date 11-01.
    assert got == {
        "G": ("good", 0, True, 0),
        "I": ("indeterminate", None, True, 45),
        "J": ("indeterminate", None, True, 89),
        "B": ("bad", 1, True, 90),
        "P": ("bad", 1, True, 90),
        "A": ("good", 0, True, 0),
        "S": ("bad", 1, True, 100),
        "Y": ("immature", None, False, None),  # not judged yet: no delay reported
        "N": ("no_schedule", None, None, None),  # no installment: nothing to judge
    }
    # A shorter band, a stricter default: 60 DPD, indeterminate from 60 (no band).
    strict = labels.LabelDefinition(bad_dpd=60, cycles=6, indeterminate_dpd=60)
    assert strict.describe() == (
        "bad: 60+ DPD within the first 6 installments, judged 60 days after the last one falls due"
    )


def test_the_exclusions_table_counts_every_application_once(spark):
    rows = [("approved", "good")] * 5 + [("approved", "bad")] * 2
    rows += [("approved", "indeterminate"), ("approved", "immature"), ("approved", "no_loan")]
    rows += [("rejected", "no_loan")] * 3 + [("pending", "no_loan"), (None, "no_loan")]
    features = spark.createDataFrame(rows, "status string, label_status string")
    table = labels.exclusions(features)
    assert table == [
        {"label_status": "good", "rows": 5, "fitted": True},
        {"label_status": "bad", "rows": 2, "fitted": True},
        {"label_status": "indeterminate", "rows": 1, "fitted": False},
        {"label_status": "immature", "rows": 1, "fitted": False},
        {"label_status": "no_loan", "rows": 1, "fitted": False},
        {"label_status": "not approved: pending", "rows": 1, "fitted": False},
        {"label_status": "not approved: rejected", "rows": 3, "fitted": False},
        {"label_status": "not approved: unknown", "rows": 1, "fitted": False},
    ]
    assert sum(r["rows"] for r in table) == len(rows)


def test_cure_rates_and_the_vintage_curve_justify_the_definition(spark):
    from riskcontrol.analyze import label_choice

    day0 = D(2023, 1, 10)
    due = [add_months(day0, k) for k in range(1, 13)]

    def late(k: int, days: int) -> dt.date:
        return due[k - 1] + dt.timedelta(days=days)

    paid = {
        "C": [*due[:2], late(3, 40), *due[3:]],  # 40 days late, cured
        "K": [*due[:2], late(3, 100), *due[3:]],  # 100 days late, then paid up: cured
        "S": [*due[:3], *[None] * 9],  # stops at installment 4: never back
        "T": [*due[:7], *[None] * 5],  # stops at installment 8: bad after a 6 window
        "G": list(due),  # never late
    }
    reps = [row for loan_id, p in paid.items() for row in _schedule(loan_id, day0, p)]
    as_of = D(2024, 6, 1)  # installment 12 fell due 2024-01-10; + 90 days = 04-09
    repayments = spark.createDataFrame(reps, REPAYMENTS)
    assert label_choice.cure_rates(repayments, as_of) == [
        {"dpd": 30, "loans": 4, "cured": 2, "cure_rate": 0.5},
        {"dpd": 60, "loans": 3, "cured": 1, "cure_rate": round(1 / 3, 6)},
        {"dpd": 90, "loans": 3, "cured": 1, "cure_rate": round(1 / 3, 6)},
        {"dpd": 120, "loans": 2, "cured": 0, "cure_rate": 0.0},
    ]
    curve = label_choice.vintage(repayments, as_of, bad_dpd=90)
    # All five watched for 12 installments; K (installment 3), S (4), T (8) went bad.
    assert curve == {
        "horizon": 12,
        "loans": 5,
        "bad_by_cycle": [0, 0, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3],
        "bad_rate_by_cycle": [0.0, 0.0, 0.2, 0.4, 0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.6, 0.6],
    }
    why = label_choice.justify(repayments, as_of, labels.LabelDefinition())
    assert why["verdict"]["depth"] == ("33.3% of the 3 loans ever 90+ DPD are back under 30 DPD")
    # Five loans are too few for a verdict on the window (30 are needed).
    assert why["verdict"]["window"] == (
        "5 loans watched for 12 installments, 3 bad: too few to judge the window"
    )
    assert why["vintage"]["captured_by_window"] is None
    fig = plots.label_choice_plot(why)  # logged with every model as label/justification.png
    cures, curve = fig.axes
    assert [round(b.get_height(), 6) for b in cures.patches] == [0.5, 0.333333, 0.333333, 0.0]
    assert list(curve.lines[0].get_ydata()) == why["vintage"]["bad_rate_by_cycle"]
    assert list(curve.lines[1].get_xdata()) == [6, 6]  # the window, marked


def test_only_whole_months_of_judged_loans_are_fitted(spark):
    rows = [
        ("a1", "2024-01", "approved", 0, "good", True),
        ("a2", "2024-01", "approved", 1, "bad", True),
        ("a3", "2024-01", "approved", None, "indeterminate", True),
        ("a4", "2024-01", "rejected", None, "no_loan", False),
        # February: a short loan is judged, a long one of the same month is not yet
        ("b1", "2024-02", "approved", 0, "good", True),
        ("b2", "2024-02", "approved", None, "immature", False),
        ("c1", "2024-03", "approved", None, "immature", False),
    ]
    features = spark.createDataFrame(
        rows,
        "application_id string, application_month string, status string, label int, "
        "label_status string, label_matured boolean",
    )
    fitted = models.matured_applications(features)
    assert sorted(r.application_id for r in fitted.collect()) == ["a1", "a2"]
