"""A backtest as rows of gold.policy_backtests and back (pure pandas, no Spark)."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pandas as pd
import pytest
from test_backtest import ACTIVE, COST, EDGES, PROPOSED, history

from riskcontrol.apply import backtest_store
from riskcontrol.apply.backtest import replay
from riskcontrol.core.catalog import GOLD_POLICY_BACKTESTS

AT = datetime(2026, 12, 6, 15, 0)
FLAGS = ["approval rate rises from 58.3% to 66.7%", "a second flag"]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    result = replay(history(), ACTIVE, PROPOSED, COST, band_edges=EDGES, reject_factor=1.5)
    return backtest_store.records(result, FLAGS, backtest_id="b1", window="2025-01..2025-03",
                                  created_at=AT)  # fmt: skip


def _one(rows, **where) -> pd.Series:
    hit = rows
    for column, value in where.items():
        hit = hit[hit[column] == value]
    assert len(hit) == 1, where
    return hit.iloc[0]


def test_the_rows_match_the_table_and_carry_both_policies(rows):
    assert list(rows.columns) == GOLD_POLICY_BACKTESTS.columns
    assert set(rows["backtest_id"]) == {"b1"} and set(rows["created_at"]) == {AT}
    assert json.loads(rows["proposed_policy"].iloc[0]) == PROPOSED.to_dict()
    assert json.loads(rows["active_policy"].iloc[0]) == ACTIVE.to_dict()
    assert set(rows["proposed_version"]) == {"v2"} and set(rows["active_version"]) == {"v1"}
    # one row per key: the table's keys identify a figure
    keys = ["section", "method", "subject", "segment_type", "segment", "metric"]
    assert not rows[keys].astype(str).duplicated().any()
    assert set(rows["section"]) == set(backtest_store.SECTIONS)


def test_the_figures_are_the_replays(rows):
    # the hand figures of test_backtest: active lends 7 of 12, bad rate 2/6 on known outcomes
    assert _one(rows, section="policy", method="none", subject="active",
                metric="approvals")["value"] == 7  # fmt: skip
    bad = _one(rows, section="policy", method="none", subject="proposed", metric="bad_rate")
    assert (bad["value"], bad["low"], bad["high"]) == pytest.approx((0.25, 0.25, 0.25))
    # swap-in 5, 6, 11: 3 applications, 4000 exposed, no known outcome (rate NaN: null in Delta)
    assert _one(rows, section="swap", method="none", subject="swap_in",
                metric="exposure")["value"] == 4000  # fmt: skip
    assert math.isnan(_one(rows, section="swap", method="none", subject="swap_in",
                           metric="bad_rate")["value"])  # fmt: skip
    # the swap matrix (test_backtest): active reject -> proposed review holds 5 and 11
    cell = _one(rows, section="swap_matrix", method="none", subject="reject->review",
                metric="applications")  # fmt: skip
    assert cell["value"] == 2
    # rules: 6 swapped in past the active KO_DISHONEST_DEBTOR
    rule = _one(rows, section="swap_rule", subject="swap_in", segment="KO_DISHONEST_DEBTOR",
                metric="applications")  # fmt: skip
    assert (rule["value"], rule["note"]) == (1, "active")
    segment = _one(rows, section="segment", method="none", subject="active",
                   segment_type="channel", segment="broker", metric="approvals")  # fmt: skip
    assert segment["value"] == 2
    inference = _one(rows, section="inference", method="parcelling", metric="pd_col")
    assert math.isnan(inference["value"]) and inference["note"] == "pd_active"


def test_no_row_names_an_application(rows):
    ids = {str(i) for i in history()["application_id"]}
    strings = rows.drop(columns=["value", "low", "high", "created_at"]).astype(str)
    assert not strings.isin(ids).any().any()


def test_the_summary_reads_the_rows_back(rows):
    s = backtest_store.summary(rows)
    assert (s["backtest_id"], s["window"], s["created_at"]) == ("b1", "2025-01..2025-03", AT)
    assert s["proposed"] == PROPOSED.to_dict() and s["active"] == ACTIVE.to_dict()
    assert s["flags"] == FLAGS
    assert s["notes"][-1].startswith("reject inference: ")
    assert list(s["policies"]) == ["none", "parcelling", "fuzzy"]
    none = s["policies"]["none"]
    assert none["active"]["approval_rate"]["value"] == pytest.approx(7 / 12)
    assert none["proposed"]["approvals"] == {"value": 8, "low": None, "high": None}
    assert s["swaps"]["none"]["swap_in"]["bad_rate"] == {"value": None, "low": None,
                                                         "high": None}  # fmt: skip
    assert s["swaps"]["none"]["swap_out"]["bad_rate"]["value"] == pytest.approx(0.5)


def test_the_summary_refuses_two_backtests_and_the_latest_is_found(rows):
    later = rows.assign(backtest_id="b2", created_at=datetime(2026, 12, 6, 16, 0))
    both = pd.concat([later, rows], ignore_index=True)
    with pytest.raises(ValueError, match="one backtest, got 2"):
        backtest_store.summary(both)
    assert backtest_store.latest_id(both) == "b2"
    assert backtest_store.latest_id(rows.iloc[0:0]) is None
