"""The policy backtest on hand-built histories (pure pandas, no Spark)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskcontrol.apply import riskcost
from riskcontrol.apply.backtest import (
    Policy,
    SegmentOverride,
    decide,
    fuzzy,
    guard,
    parcelling,
    rejecting_rule,
    replay,
)
from riskcontrol.apply.riskcost import CostModel

N = np.nan
KO_DD, KO_BL, RF_VEL = "KO_DISHONEST_DEBTOR", "KO_BLOCKLIST", "RF_VELOCITY_24H"
COLUMNS = [
    "application_id", "channel", "province", "product", "score_band", "pd_active",
    "pd_proposed", "rules_fired", "exposure", "historical_decision", "bad",
]  # fmt: skip
# Twelve applications. Known outcomes: rows 1-4, 8, 9 (bads 2 and 4: known bad rate 2/6);
# to infer: the historically rejected 5, 6, 7, 10, 11; immature (approved, no outcome): 12.
# fmt: off
ROWS = [
    # id  channel   prov  product band  pd_act pd_prop rules_fired        exp   historical  bad
    (1,  "app",    "GD", "cash", "A",  0.05,  0.05,  N,                  1000, "approved", 0),
    (2,  "app",    "GD", "cash", "A",  0.08,  0.12,  None,               1000, "approved", 1),
    (3,  "app",    "ZJ", "cash", "B",  0.12,  0.18,  [RF_VEL],           2000, "approved", 0),
    (4,  "app",    "ZJ", "bnpl", "B",  0.15,  0.10,  [KO_BL],            2000, "approved", 1),
    (5,  "web",    "GD", "bnpl", "C",  0.25,  0.25,  None,               1000, "rejected", N),
    (6,  "web",    "GD", "cash", "C",  0.22,  0.12,  [KO_DD],            1000, "rejected", N),
    (7,  "web",    "ZJ", "cash", "D",  0.35,  0.40,  None,               3000, "rejected", N),
    (8,  "broker", "GD", "cash", "B",  0.09,  0.08,  None,               2000, "approved", 0),
    (9,  "broker", "ZJ", "bnpl", "C",  0.18,  0.12,  None,               1000, "approved", 0),
    (10, "app",    "GD", "cash", "A",  0.03,  0.04,  (KO_DD, KO_BL),     1000, "rejected", N),
    (11, "web",    "ZJ", "bnpl", "D",  0.30,  0.20,  np.array([]),       2000, "rejected", N),
    (12, "app",    "GD", "cash", "A",  0.06,  0.06,  None,               1000, "approved", N),
]
# fmt: on
# Active: approve PD < 0.10, review [0.10, 0.20), reject >= 0.20, and the dishonest-debtor
# rule. Proposed: approve < 0.15, review [0.15, 0.30), reject >= 0.30, the blocklist rule,
# and brokers approve < 0.05, review [0.05, 0.10), reject >= 0.10.
ACTIVE = Policy("v1", "logistic v3", 0.10, 0.20, (KO_DD,))
PROPOSED = Policy(
    "v2", "gbt v1", 0.15, 0.30, (KO_BL,), (SegmentOverride("channel", "broker", 0.05, 0.10),)
)
# A good earns 0.1 x exposure, a bad loses 0.5 x exposure, a review costs 10.
COST = CostModel(lgd=0.5, good_margin=0.1, review_cost=10.0, review_band=0.05, risk_tolerance=0.1)
# Parcelling bands of the inference PD (pd_active unless told): [0, 0.1) [0.1, 0.2) [0.2, 1.0]
EDGES = [0.0, 0.1, 0.2, 1.0]
# The notes replay adds on the inference PD.
ACTIVE_PD_NOTE = (
    "reject inference: the rejected applications' outcomes inferred with the active model's "
    "PD (pd_active, logistic v3), not with the proposed model under test"
)
PROPOSED_PD_NOTE = (
    "reject inference: the rejected applications' outcomes inferred with the proposed "
    "model's PD (pd_proposed, gbt v1): the model under test infers the outcomes it is judged on"
)

# Decisions row by row (1..12):
ACTIVE_DECISIONS = [
    "approve",  # 1: 0.05 < 0.10
    "approve",  # 2: 0.08
    "review",  # 3: 0.12; RF_VELOCITY_24H is no rule of either policy
    "review",  # 4: 0.15; KO_BLOCKLIST is not an active rule
    "reject",  # 5: 0.25 >= 0.20
    "reject",  # 6: KO_DISHONEST_DEBTOR (0.22 would reject anyway)
    "reject",  # 7: 0.35
    "approve",  # 8: 0.09
    "review",  # 9: 0.18
    "reject",  # 10: KO_DISHONEST_DEBTOR although 0.03 would approve
    "reject",  # 11: 0.30
    "approve",  # 12: 0.06
]
PROPOSED_DECISIONS = [
    "approve",  # 1: 0.05 < 0.15
    "approve",  # 2: 0.12
    "review",  # 3: 0.18 in [0.15, 0.30)
    "reject",  # 4: KO_BLOCKLIST although 0.10 would approve
    "review",  # 5: 0.25
    "approve",  # 6: 0.12; KO_DISHONEST_DEBTOR is no proposed rule
    "reject",  # 7: 0.40 >= 0.30
    "review",  # 8: broker, 0.08 in [0.05, 0.10)
    "reject",  # 9: broker, 0.12 >= 0.10
    "reject",  # 10: KO_BLOCKLIST
    "review",  # 11: 0.20
    "approve",  # 12: 0.06
]


def history() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=COLUMNS)


@pytest.fixture(scope="module")
def result():
    return replay(history(), ACTIVE, PROPOSED, COST, band_edges=EDGES, reject_factor=1.5)


# ------------------------------------------------------------------------- decisions


def test_decide_by_thresholds_rules_and_segment_overrides():
    frame = history()
    assert decide(frame, ACTIVE, "pd_active").tolist() == ACTIVE_DECISIONS
    assert decide(frame, PROPOSED, "pd_proposed").tolist() == PROPOSED_DECISIONS
    # without the override, brokers 8 (0.08) and 9 (0.12) approve
    plain = Policy("v2b", "gbt v1", 0.15, 0.30, (KO_BL,))
    assert decide(frame, plain, "pd_proposed").tolist()[7:9] == ["approve", "approve"]
    # without the rules column no rule fires: 4 approves (0.10), 10 approves (0.04)
    no_rules = decide(frame, PROPOSED, "pd_proposed", rules_col=None).tolist()
    assert (no_rules[3], no_rules[9]) == ("approve", "approve")


def test_rejecting_rule_is_the_first_of_the_policys_rules_that_fired():
    frame = history()
    assert rejecting_rule(frame, ACTIVE).tolist() == [None] * 5 + [KO_DD] + [None] * 3 + [
        KO_DD,
        None,
        None,
    ]
    # row 10 fired (KO_DD, KO_BL): the policy's order decides, not the order fired
    both = Policy("v3", "m", 0.1, 0.2, (KO_BL, KO_DD))
    assert rejecting_rule(frame, both).tolist()[9] == KO_BL
    assert rejecting_rule(frame, Policy("v4", "m", 0.1, 0.2, (KO_DD, KO_BL))).tolist()[9] == KO_DD
    # a rule no row fired, and a fired rule the policy lacks, reject nothing
    assert rejecting_rule(frame, Policy("v5", "m", 0.1, 0.2, ("KO_FRAUD_LINK",))).isna().all()


def test_the_first_matching_override_wins():
    frame = pd.DataFrame(
        {
            "pd": [0.12, 0.12, 0.12],
            "channel": ["web", "web", "app"],
            "product": ["cash", "bnpl", "cash"],
        }
    )
    policy = Policy(
        "v1",
        "m",
        0.10,
        0.20,
        overrides=(
            SegmentOverride("channel", "web", 0.05, 0.10),  # web: 0.12 rejects
            SegmentOverride("product", "cash", 0.15, 0.30),  # cash: 0.12 approves
        ),
    )
    # web cash -> first override (reject); web bnpl -> first (reject); app cash -> second
    assert decide(frame, policy, rules_col=None).tolist() == ["reject", "reject", "approve"]


def test_decide_refuses_what_it_cannot_read():
    frame = history()
    with pytest.raises(
        ValueError,
        match=r"rules_fired must hold a list .*; index 0 holds 'KO_X' \(write \['KO_X'\]\)",
    ):
        decide(frame.assign(rules_fired=["KO_X"] + [None] * 11), ACTIVE, "pd_active")
    with pytest.raises(ValueError, match=r"pd_active must be a PD within \[0, 1\]: 1 row"):
        decide(frame.assign(pd_active=[1.5] + [0.1] * 11), ACTIVE, "pd_active")
    with pytest.raises(ValueError, match="overrides thresholds on column 'channel'"):
        decide(frame.drop(columns="channel"), PROPOSED, "pd_proposed")
    with pytest.raises(ValueError, match="frame has no rules column 'rules'"):
        decide(frame, ACTIVE, "pd_active", rules_col="rules")


# -------------------------------------------------------------------- policy metrics


def test_policy_metrics_on_known_outcomes_only(result):
    def metric(policy, name):
        return result.metric(policy, name, "none")

    # Active lends 1, 2, 3, 4, 8, 9, 12 (reviews 3, 4, 9); rejects 5, 6, 7, 10, 11.
    assert [
        metric("active", m) for m in ("applications", "approvals", "reviews", "rejections")
    ] == [
        12,
        7,
        3,
        5,
    ]
    assert metric("active", "approval_rate") == pytest.approx(7 / 12)
    # 12 is immature: outcomes of 1, 2, 3, 4, 8, 9; bads 2 and 4
    assert (metric("active", "known_outcomes"), metric("active", "outcomes")) == (6, 6)
    assert metric("active", "bad_rate") == pytest.approx(2 / 6)
    # 0.5 x (1000 + 2000)
    assert metric("active", "expected_loss") == pytest.approx(1500)
    # 1: +100; 2: -500; 3 (review): +200 - 10; 4 (review): -1000 - 10; 8: +200;
    # 9 (review): +100 - 10
    assert metric("active", "profit") == pytest.approx(-930)
    # EL / approved exposure with an outcome: 1500 / 9000
    assert metric("active", "residual_risk") == pytest.approx(1500 / 9000)

    # Proposed lends 1, 2, 3, 5, 6, 8, 11, 12 (reviews 3, 5, 8, 11); rejects 4, 7, 9, 10.
    assert [metric("proposed", m) for m in ("approvals", "reviews", "rejections")] == [8, 4, 4]
    assert metric("proposed", "approval_rate") == pytest.approx(8 / 12)
    # known: 1, 2, 3, 8 (bad: 2); 5, 6, 11 unknown, not inferred under "none"
    assert (metric("proposed", "known_outcomes"), metric("proposed", "inferred_outcomes")) == (4, 0)
    assert metric("proposed", "bad_rate") == pytest.approx(1 / 4)
    assert metric("proposed", "expected_loss") == pytest.approx(500)
    # 1: +100; 2: -500; 3 (review): +200 - 10; 8 (review): +200 - 10
    assert metric("proposed", "profit") == pytest.approx(-20)
    assert metric("proposed", "approved_exposure") == pytest.approx(11000)
    assert result.policies[["method", "policy", "version", "model"]].iloc[1].tolist() == [
        "none",
        "proposed",
        "v2",
        "gbt v1",
    ]
    assert result.notes == (
        "1 historically approved row(s) have no outcome yet (immature): counted in the "
        "decisions, left out of every rate, loss and profit",
        ACTIVE_PD_NOTE,
    )


def test_metrics_by_segment(result):
    seg = result.segments
    channel = seg[(seg["method"] == "none") & (seg["segment_type"] == "channel")]
    got = channel.set_index(["policy", "segment"])[
        [
            "applications",
            "approvals",
            "reviews",
            "rejections",
            "known_outcomes",
            "bad_rate",
            "profit",
        ]
    ]
    expected = pd.DataFrame(
        [
            # app = 1, 2, 3, 4, 10, 12: lends 1, 2, 3r, 4r, 12; outcomes 1-4, bads 2, 4;
            # profit 100 - 500 + 190 - 1010
            ("active", "app", 6, 5, 2, 1, 4, 0.5, -1220.0),
            # broker = 8, 9r: 200 + 90
            ("active", "broker", 2, 2, 1, 0, 2, 0.0, 290.0),
            ("active", "web", 4, 0, 0, 4, 0, N, 0.0),
            # lends 1, 2, 3r, 12; outcomes 1, 2, 3, bad 2; 100 - 500 + 190
            ("proposed", "app", 6, 4, 1, 2, 3, 1 / 3, -210.0),
            # 8r lent (190), 9 rejected by the broker override
            ("proposed", "broker", 2, 1, 1, 1, 1, 0.0, 190.0),
            # 5r, 6, 11r lent, no known outcome; 7 rejected
            ("proposed", "web", 4, 3, 2, 1, 0, N, 0.0),
        ],
        columns=["policy", "segment", *got.columns],
    ).set_index(["policy", "segment"])
    pd.testing.assert_frame_equal(got, expected)
    assert sorted(seg["segment_type"].unique()) == ["channel", "product", "province", "score_band"]
    # every method x segment type x policy sums back to the policy's applications
    sums = seg.groupby(["method", "segment_type", "policy"])["applications"].sum()
    assert (sums == 12).all() and len(sums) == 3 * 4 * 2


# ---------------------------------------------------------------------------- swaps


def test_swap_matrix_counts_bad_rates_and_exposure(result):
    labels = ["approve", "review", "reject"]

    def table(values):
        return pd.DataFrame(values, index=labels, columns=labels, dtype=float)

    # approve->approve 1, 2, 12; approve->review 8; review->review 3; review->reject 4, 9;
    # reject->approve 6; reject->review 5, 11; reject->reject 7, 10
    expected_counts = table([[3, 1, 0], [0, 1, 2], [1, 2, 2]])
    pd.testing.assert_frame_equal(
        result.matrix("applications").astype(float), expected_counts, check_names=False
    )
    pd.testing.assert_frame_equal(
        result.matrix("exposure"),
        table([[3000, 2000, 0], [0, 2000, 3000], [1000, 3000, 4000]]),
        check_names=False,
    )
    # known outcomes: 1, 2 | 8 | 3 | 4, 9; bads: 2 | - | - | 4
    pd.testing.assert_frame_equal(
        result.matrix("known_outcomes").astype(float),
        table([[2, 1, 0], [0, 1, 2], [0, 0, 0]]),
        check_names=False,
    )
    pd.testing.assert_frame_equal(
        result.matrix("known_bads").astype(float),
        table([[1, 0, 0], [0, 0, 1], [0, 0, 0]]),
        check_names=False,
    )
    pd.testing.assert_frame_equal(
        result.matrix("known_bad_rate"),
        table([[0.5, 0.0, N], [N, 0.0, 0.5], [N, N, N]]),
        check_names=False,
    )
    assert len(result.swap_matrix) == 3 * 9


def test_swap_in_and_swap_out_sets(result):
    # swap-in: 5, 6, 11 (active rejects, proposed lends): 4000, all unknown
    assert result.swap("swap_in", "applications") == 3
    assert result.swap("swap_in", "exposure") == pytest.approx(4000)
    assert result.swap("swap_in", "known_outcomes") == 0
    assert np.isnan(result.swap("swap_in", "bad_rate"))
    # swap-out: 4 (bad), 9 (good): 3000, bad rate 1/2, loss 0.5 x 2000
    assert result.swap("swap_out", "applications") == 2
    assert result.swap("swap_out", "exposure") == pytest.approx(3000)
    assert result.swap("swap_out", "known_outcomes") == 2
    assert result.swap("swap_out", "bad_rate") == pytest.approx(0.5)
    assert result.swap("swap_out", "expected_loss") == pytest.approx(1000)
    # what the active policy earned on them: 4 (review, bad) -1010; 9 (review, good) +90
    assert result.swap("swap_out", "profit") == pytest.approx(-920)
    rows = result.rows.set_index("application_id")["swap"]
    assert rows[rows.notna()].to_dict() == {
        4: "swap_out",
        5: "swap_in",
        6: "swap_in",
        9: "swap_out",
        11: "swap_in",
    }


def test_rule_driven_swaps_by_rule(result):
    # 6 swaps in, rejected by the active KO_DISHONEST_DEBTOR; 4 swaps out, rejected by the
    # proposed KO_BLOCKLIST; 10 is rejected by a rule of each: no swap
    expected = pd.DataFrame(
        {
            "swap": ["swap_in", "swap_out"],
            "policy": ["active", "proposed"],
            "rule": [KO_DD, KO_BL],
            "applications": [1, 1],
            "exposure": [1000.0, 2000.0],
        }
    )
    pd.testing.assert_frame_equal(result.swap_rules, expected)
    rows = result.rows.set_index("application_id")
    assert rows.loc[10, ["active_rule", "proposed_rule", "swap"]].tolist() == [KO_DD, KO_BL, None]


# ------------------------------------------------------------------ reject inference


def test_parcelling_rates_per_band_of_the_active_pd():
    inference = parcelling(history(), EDGES, reject_factor=1.5)
    assert inference.details["pd_col"] == "pd_active"
    # known by band of pd_active: [0, 0.1): 1 (0.05), 2 (0.08, bad), 8 (0.09) -> 1/3;
    # [0.1, 0.2): 3 (0.12), 4 (0.15, bad), 9 (0.18) -> 1/3; [0.2, 1.0]: none (no known
    # row has a pd_active above 0.18) -> the overall known rate 2/6; each times 1.5 = 0.5
    bands = inference.bands
    assert bands["known_outcomes"].tolist() == [3, 3, 0]
    assert bands["known_bads"].tolist() == [1, 1, 0]
    assert bands["bad_rate"].tolist()[:2] == pytest.approx([1 / 3, 1 / 3])
    assert np.isnan(bands["bad_rate"].iloc[2])
    assert bands["inferred_rate"].tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert bands["fallback"].tolist() == [False, False, True]
    # rows 1..12 by pd_active: 0.05 0.08 | 0.12 0.15 | 0.25 0.22 0.35 | 0.09 | 0.18 | 0.03 |
    # 0.30 | 0.06
    assert inference.band.tolist() == [0, 0, 1, 1, 2, 2, 2, 0, 1, 0, 2, 0]
    # to infer: 5 (0.25), 6 (0.22), 7 (0.35), 11 (0.30) in band 2, 10 (0.03) in band 0
    assert bands["unknown_rows"].tolist() == [1, 0, 4]
    assert inference.details["fallback_rows"] == 4
    assert inference.details["capped_rows"] == 0
    bad = inference.bad.tolist()
    assert bad[4:7] == pytest.approx([0.5, 0.5, 0.5])
    assert bad[9:11] == pytest.approx([0.5, 0.5])
    # known rows keep their outcome, the immature row 12 gets none
    assert bad[:4] + bad[7:9] == [0, 1, 0, 1, 0, 0]
    assert np.isnan(bad[11])
    assert inference.inferred.tolist() == [False] * 4 + [True] * 3 + [False] * 2 + [True] * 2 + [
        False
    ]


def test_parcelling_rates_per_band_of_the_proposed_pd_with_an_empty_band():
    inference = parcelling(history(), EDGES, reject_factor=1.5, pd_col="pd_proposed")
    assert inference.details["pd_col"] == "pd_proposed"
    # known by band of pd_proposed: [0, 0.1): 1 (0.05), 8 (0.08), no bad -> 0;
    # [0.1, 0.2): 2 (0.12, bad), 3 (0.18), 4 (0.10, bad), 9 (0.12) -> 2/4;
    # [0.2, 1.0]: none -> the overall known rate 2/6; each times 1.5
    bands = inference.bands
    assert bands["known_outcomes"].tolist() == [2, 4, 0]
    assert bands["known_bads"].tolist() == [0, 2, 0]
    assert bands["bad_rate"].tolist()[:2] == pytest.approx([0.0, 0.5])
    assert np.isnan(bands["bad_rate"].iloc[2])
    assert bands["inferred_rate"].tolist() == pytest.approx([0.0, 0.75, 0.5])
    assert bands["fallback"].tolist() == [False, False, True]
    # to infer: 5 (0.25, band 2), 6 (0.12, band 1), 7 (0.40, band 2), 10 (0.04, band 0),
    # 11 (0.20, band 2: a band includes its low edge)
    assert bands["unknown_rows"].tolist() == [1, 1, 3]
    assert inference.details["fallback_rows"] == 3
    assert inference.details["capped_rows"] == 0
    bad = inference.bad.tolist()
    assert bad[4:7] == pytest.approx([0.5, 0.75, 0.5])
    assert bad[9:11] == pytest.approx([0.0, 0.5])
    # known rows keep their outcome, the immature row 12 gets none
    assert bad[:4] + bad[7:9] == [0, 1, 0, 1, 0, 0]
    assert np.isnan(bad[11])
    assert inference.inferred.tolist() == [False] * 4 + [True] * 3 + [False] * 2 + [True] * 2 + [
        False
    ]


def test_parcelling_caps_an_inferred_rate_at_one():
    # on pd_active every band's rate is 1/3 (the empty band's the overall 2/6): x 3 = 1 is
    # not above 1; x 4 = 4/3 is, and caps all five rows to infer
    assert parcelling(history(), EDGES, reject_factor=3.0).details["capped_rows"] == 0
    four = parcelling(history(), EDGES, reject_factor=4.0)
    assert four.bands["inferred_rate"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert four.details["capped_rows"] == 5
    # on pd_proposed: band [0.1, 0.2) at 0.5 x 3 = 1.5 -> 1; the fallback 1/3 x 3 = 1 is not
    # above 1
    inference = parcelling(history(), EDGES, reject_factor=3.0, pd_col="pd_proposed")
    assert inference.bands["inferred_rate"].tolist() == pytest.approx([0.0, 1.0, 1.0])
    assert inference.details["capped_rows"] == 1  # row 6


def test_parcelling_defaults_to_deciles_of_the_known_rows():
    # known PDs 0.01 ... 0.10, bad from 0.08: decile edges 0.01 + 0.009 k put each known
    # row in a band of its own (0.01 in band 0, ..., 0.10 in band 9)
    frame = pd.DataFrame(
        {
            "pd_active": [0.01 * k for k in range(1, 11)] + [0.005, 0.075, 0.095, 0.5],
            "bad": [0] * 7 + [1] * 3 + [N] * 4,
            "historical_decision": ["approved"] * 10 + ["rejected"] * 4,
        }
    )
    inference = parcelling(frame)
    assert inference.details["bands"] == 10
    assert inference.bands["known_outcomes"].tolist() == [1] * 10
    assert inference.band.tolist() == list(range(10)) + [0, 7, 9, 9]
    # 0.005 below the first edge -> band 0 (rate 0); 0.075 in [0.073, 0.082) -> band 7 (the
    # 0.08 bad); 0.095 and 0.5 at or above the last edge's band start -> band 9
    assert inference.bad.tolist()[10:] == pytest.approx([0.0, 1.0, 1.0, 1.0])
    assert inference.details["fallback_rows"] == 0


def test_parcelling_policy_and_swap_in_figures(result):
    # on pd_active's bands every row to infer gets 0.5 (test_parcelling_rates_per_band_of_
    # the_active_pd); proposed lends 5, 6, 11 besides 1, 2, 3, 8 (bad: 2): bads 1 + 1.5 over 7
    assert result.metric("proposed", "inferred_outcomes", "parcelling") == 3
    assert result.metric("proposed", "outcomes", "parcelling") == 7
    assert result.metric("proposed", "bad_rate", "parcelling") == pytest.approx(2.5 / 7)
    # 500 + 0.5 x (1000 x 0.5 + 1000 x 0.5 + 2000 x 0.5)
    assert result.metric("proposed", "expected_loss", "parcelling") == pytest.approx(1500)
    # 5 (review): 0.5 x 100 - 0.5 x 500 - 10 = -210; 6: 0.5 x 100 - 0.5 x 500 = -200;
    # 11 (review): 0.5 x 200 - 0.5 x 1000 - 10 = -410; plus the known -20
    assert result.metric("proposed", "profit", "parcelling") == pytest.approx(-840)
    # the active policy lends no row to infer: as without inference
    assert result.metric("active", "bad_rate", "parcelling") == pytest.approx(2 / 6)
    assert result.metric("active", "profit", "parcelling") == pytest.approx(-930)
    # swap-in 5, 6, 11: 1.5 bads over 3; loss 0.5 x (500 + 500 + 1000); -210 - 200 - 410
    assert result.swap("swap_in", "bad_rate", "parcelling") == pytest.approx(0.5)
    assert result.swap("swap_in", "expected_loss", "parcelling") == pytest.approx(1000)
    assert result.swap("swap_in", "profit", "parcelling") == pytest.approx(-820)
    # 5, 6, 7, 11 in the band above the active cut-off, which has no known outcome
    assert result.inference["parcelling"]["fallback_rows"] == 4
    assert result.inference["parcelling"]["pd_col"] == "pd_active"


def test_fuzzy_rates_per_row_and_policy(result):
    # calibration in the large: known bad rate 2/6 over the known rows' mean pd_active
    # (0.05 + 0.08 + 0.12 + 0.15 + 0.09 + 0.18) / 6 = 0.67 / 6 -> factor 2 / 0.67 = 200/67
    assert result.inference["fuzzy"]["pd_col"] == "pd_active"
    assert result.inference["fuzzy"]["calibration_factor"] == pytest.approx(200 / 67)
    rows = result.rows.set_index("application_id")["inferred_fuzzy"]
    # 5: 0.25 x 200/67 = 50/67; 6: 0.22 -> 44/67; 7: 0.35 -> 70/67, capped at 1;
    # 10: 0.03 -> 6/67; 11: 0.30 -> 60/67
    assert rows[[5, 6, 7, 10, 11]].tolist() == pytest.approx([50 / 67, 44 / 67, 1, 6 / 67, 60 / 67])
    assert rows.drop([5, 6, 7, 10, 11]).isna().all()
    assert result.inference["fuzzy"]["capped_rows"] == 1
    # proposed: bads 1 + (50 + 44 + 60)/67 = 1 + 154/67 = 221/67 over 7
    assert result.metric("proposed", "bad_rate", "fuzzy") == pytest.approx(221 / 469)
    # 500 + 0.5 x (1000 x 50/67 + 1000 x 44/67 + 2000 x 60/67) = 500 + 107000/67
    assert result.metric("proposed", "expected_loss", "fuzzy") == pytest.approx(500 + 107000 / 67)
    # 5 (review): 17/67 x 100 - 50/67 x 500 - 10; 6: 23/67 x 100 - 44/67 x 500;
    # 11 (review): 7/67 x 200 - 60/67 x 1000 - 10; plus the known -20
    profit = -20 + (1700 - 25000) / 67 - 10 + (2300 - 22000) / 67 + (1400 - 60000) / 67 - 10
    assert result.metric("proposed", "profit", "fuzzy") == pytest.approx(profit)
    assert result.swap("swap_in", "bad_rate", "fuzzy") == pytest.approx(154 / 201)
    assert result.metric("active", "bad_rate", "fuzzy") == pytest.approx(2 / 6)


def proposed_pd_result():
    """The hand history replayed with the outcomes inferred from the proposed model's PD."""
    return replay(
        history(),
        ACTIVE,
        PROPOSED,
        COST,
        band_edges=EDGES,
        reject_factor=1.5,
        inference_pd="pd_proposed",
    )


def test_inference_on_the_proposed_pd_on_request():
    result = proposed_pd_result()
    assert result.notes[-1] == PROPOSED_PD_NOTE
    assert result.inference["parcelling"]["pd_col"] == "pd_proposed"
    assert result.inference["fuzzy"]["pd_col"] == "pd_proposed"
    # Parcelling: on pd_proposed's bands (test_parcelling_rates_per_band_of_the_proposed_pd_
    # with_an_empty_band) proposed lends 5 (0.5), 6 (0.75), 11 (0.5) besides 1, 2, 3, 8
    # (bad: 2): bads 1 + 1.75 over 7
    rows = result.rows.set_index("application_id")
    assert rows.loc[[5, 6, 7, 10, 11], "inferred_parcelling"].tolist() == pytest.approx(
        [0.5, 0.75, 0.5, 0.0, 0.5]
    )
    assert result.metric("proposed", "bad_rate", "parcelling") == pytest.approx(2.75 / 7)
    # 500 + 0.5 x (1000 x 0.5 + 1000 x 0.75 + 2000 x 0.5)
    assert result.metric("proposed", "expected_loss", "parcelling") == pytest.approx(1625)
    # 5 (review): 0.5 x 100 - 0.5 x 500 - 10 = -210; 6: 0.25 x 100 - 0.75 x 500 = -350;
    # 11 (review): 0.5 x 200 - 0.5 x 1000 - 10 = -410; plus the known -20
    assert result.metric("proposed", "profit", "parcelling") == pytest.approx(-990)
    assert result.swap("swap_in", "bad_rate", "parcelling") == pytest.approx(1.75 / 3)
    assert result.swap("swap_in", "expected_loss", "parcelling") == pytest.approx(1125)
    assert result.swap("swap_in", "profit", "parcelling") == pytest.approx(-970)
    assert result.inference["parcelling"]["fallback_rows"] == 3

    # Fuzzy: known bad rate 2/6 over the known rows' mean pd_proposed
    # (0.05 + 0.12 + 0.18 + 0.10 + 0.08 + 0.12) / 6 = 0.65 / 6 -> factor 40/13
    assert result.inference["fuzzy"]["calibration_factor"] == pytest.approx(40 / 13)
    # 5: 0.25 x 40/13; 6: 0.12 x 40/13; 7: 0.40 x 40/13 = 16/13 -> capped at 1;
    # 10: 0.04 x 40/13; 11: 0.20 x 40/13
    assert rows.loc[[5, 6, 7, 10, 11], "inferred_fuzzy"].tolist() == pytest.approx(
        [10 / 13, 24 / 65, 1, 8 / 65, 8 / 13]
    )
    assert result.inference["fuzzy"]["capped_rows"] == 1
    # proposed: bads 1 + (10/13 + 24/65 + 8/13) = 1 + 114/65 over 7
    assert result.metric("proposed", "bad_rate", "fuzzy") == pytest.approx(179 / 455)
    # 500 + 0.5 x (1000 x 10/13 + 1000 x 24/65 + 2000 x 8/13) = 500 + 77000/65
    assert result.metric("proposed", "expected_loss", "fuzzy") == pytest.approx(500 + 77000 / 65)
    # 5: 3/13 x 100 - 10/13 x 500 - 10; 6: 41/65 x 100 - 24/65 x 500;
    # 11: 5/13 x 200 - 8/13 x 1000 - 10; plus the known -20
    profit = -20 + (300 - 5000) / 13 - 10 + (4100 - 12000) / 65 + (1000 - 8000) / 13 - 10
    assert result.metric("proposed", "profit", "fuzzy") == pytest.approx(profit)
    assert result.swap("swap_in", "bad_rate", "fuzzy") == pytest.approx(114 / 195)
    # the guard on it: fuzzy bad rate 1/3 -> 179/455 (+6.0 points)
    assert guard(result, max_approval_shift=0.10, max_bad_rate_shift=0.05) == [
        "bad rate of approvals (fuzzy reject inference) rises from 33.3% to 39.3% "
        "(active v1 -> proposed v2): +6.0 points, more than the 5.0 allowed"
    ]
    # the decisions and known-outcome figures do not depend on the inference PD
    default = replay(history(), ACTIVE, PROPOSED, COST, band_edges=EDGES, reject_factor=1.5)
    pd.testing.assert_frame_equal(
        result.policies[result.policies["method"] == "none"],
        default.policies[default.policies["method"] == "none"],
    )


# The two profits of the proposed policy under fuzzy inference: with the active model's PD
# (test_fuzzy_rates_per_row_and_policy), about -1556.4, and with the proposed model's
# (test_inference_on_the_proposed_pd_on_request), about -1061.5; -20 of each is the known
# rows', the rest the swap-ins 5, 6, 11.
FUZZY_PROFIT_ACTIVE_PD = (
    -20 + (1700 - 25000) / 67 - 10 + (2300 - 22000) / 67 + (1400 - 60000) / 67 - 10
)
FUZZY_PROFIT_PROPOSED_PD = (
    -20 + (300 - 5000) / 13 - 10 + (4100 - 12000) / 65 + (1000 - 8000) / 13 - 10
)


def test_ranges_span_the_two_models_inferences(result):
    # headline: the active model's PD (as before); each range: the min and max of the
    # figures with the active PD (test_parcelling_policy_and_swap_in_figures,
    # test_fuzzy_rates_per_row_and_policy) and with the proposed PD
    # (test_inference_on_the_proposed_pd_on_request)
    expected = {
        # (method, what, metric): (headline, low, high)
        ("parcelling", "proposed", "bad_rate"): (2.5 / 7, 2.5 / 7, 2.75 / 7),
        ("parcelling", "proposed", "expected_loss"): (1500, 1500, 1625),
        ("parcelling", "proposed", "profit"): (-840, -990, -840),
        ("parcelling", "swap_in", "bad_rate"): (0.5, 0.5, 1.75 / 3),
        ("parcelling", "swap_in", "expected_loss"): (1000, 1000, 1125),
        ("parcelling", "swap_in", "profit"): (-820, -970, -820),
        # fuzzy: 221/469 = 47.1% (active PD) against 179/455 = 39.3% (proposed PD)
        ("fuzzy", "proposed", "bad_rate"): (221 / 469, 179 / 455, 221 / 469),
        ("fuzzy", "proposed", "expected_loss"): (
            500 + 107000 / 67,
            500 + 77000 / 65,
            500 + 107000 / 67,
        ),
        ("fuzzy", "proposed", "profit"): (
            FUZZY_PROFIT_ACTIVE_PD,
            FUZZY_PROFIT_ACTIVE_PD,
            FUZZY_PROFIT_PROPOSED_PD,
        ),
        # swap-in: 154/201 = 76.6% against 114/195 = 58.5%; losses 0.5 x (1000 x p5 +
        # 1000 x p6 + 2000 x p11); profits the policy's less the known rows' -20
        ("fuzzy", "swap_in", "bad_rate"): (154 / 201, 114 / 195, 154 / 201),
        ("fuzzy", "swap_in", "expected_loss"): (107000 / 67, 77000 / 65, 107000 / 67),
        ("fuzzy", "swap_in", "profit"): (
            FUZZY_PROFIT_ACTIVE_PD + 20,
            FUZZY_PROFIT_ACTIVE_PD + 20,
            FUZZY_PROFIT_PROPOSED_PD + 20,
        ),
    }
    for (method, what, name), (headline, low, high) in expected.items():
        get = result.swap if what.startswith("swap") else result.metric
        found = [get(what, name + end, method) for end in ("", "_low", "_high")]
        assert found == pytest.approx([headline, low, high]), (method, what, name)
    # nothing inferred, no spread: the active policy lends no row to infer, swap-out 4 and 9
    # are known, and "none" infers nothing
    for method in ("none", "parcelling", "fuzzy"):
        for name in ("bad_rate", "expected_loss", "profit"):
            for get, what in ((result.metric, "active"), (result.swap, "swap_out")):
                value = get(what, name, method)
                assert get(what, name + "_low", method) == pytest.approx(value)
                assert get(what, name + "_high", method) == pytest.approx(value)
        low = result.metric("proposed", "bad_rate_low", "none")
        assert low == result.metric("proposed", "bad_rate_high", "none") == pytest.approx(1 / 4)
    # swap-in has no known outcome: no bad rate, so no range, without inference
    assert np.isnan(result.swap("swap_in", "bad_rate_low"))
    assert np.isnan(result.swap("swap_in", "bad_rate_high"))
    # the segments carry no range
    assert "bad_rate_low" not in result.segments.columns
    with pytest.raises(KeyError, match="no metric 'bad_rate_middle'"):
        result.metric("proposed", "bad_rate_middle", "fuzzy")


def test_the_range_does_not_depend_on_the_headline_pd(result):
    # inferred with the proposed PD, the headline moves to the proposed PD's figure and the
    # range stays: fuzzy swap-in 114/195 within [114/195, 154/201]
    other = proposed_pd_result()
    assert other.swap("swap_in", "bad_rate", "fuzzy") == pytest.approx(114 / 195)
    columns = ["method", "policy", *(f"{m}_{e}" for m in ("bad_rate", "expected_loss",
               "profit") for e in ("low", "high"))]  # fmt: skip
    pd.testing.assert_frame_equal(other.policies[columns], result.policies[columns])
    pd.testing.assert_frame_equal(
        other.swaps[columns[2:]].assign(swap=other.swaps["swap"]),
        result.swaps[columns[2:]].assign(swap=result.swaps["swap"]),
    )


def test_an_unknown_inference_pd_is_refused():
    with pytest.raises(
        ValueError,
        match=r"inference_pd must be 'pd_active' \(the active model's PD, the default\) or "
        r"'pd_proposed' \(the proposed model's\), got 'pd_champion'",
    ):
        replay(history(), ACTIVE, PROPOSED, COST, inference_pd="pd_champion")


def test_inference_needs_known_outcomes():
    frame = history().assign(bad=N, historical_decision="rejected")
    with pytest.raises(ValueError, match="parcelling reject inference needs rows with a known"):
        parcelling(frame)
    with pytest.raises(ValueError, match="fuzzy reject inference needs rows with a known"):
        fuzzy(frame)
    with pytest.raises(ValueError, match="reject_factor must be > 0"):
        parcelling(history(), reject_factor=0)
    with pytest.raises(ValueError, match="band_edges must be at least two strictly increasing"):
        parcelling(history(), band_edges=[0.0, 0.2, 0.1])


# ----------------------------------------------------------------------- economics


def test_profit_follows_the_riskcost_economics():
    # Approve PD < 0.1, review [0.1, 0.2), reject >= 0.2; a review catches half the bads it
    # sees; a good earns its revenue column; a bad loses 0.6 x exposure; a review costs 5.
    cost = CostModel(
        lgd=0.6,
        good_margin=0.1,
        review_cost=5.0,
        review_band=0.1,
        risk_tolerance=0.2,
        review_catch=0.5,
    )
    frame = pd.DataFrame(
        {
            "application_id": range(1, 7),
            "pd_active": [0.05, 0.05, 0.15, 0.15, 0.25, 0.25],
            "bad": [0, 1, 0, 1, 1, 0],
            "exposure": [1000.0, 1000.0, 2000.0, 2000.0, 500.0, 500.0],
            "revenue": [150.0, 150.0, 300.0, 300.0, 80.0, 80.0],
            "historical_decision": "approved",
            "rules_fired": None,
        }
    ).assign(pd_proposed=lambda f: f["pd_active"])
    policy = Policy("cut", "m", 0.1, 0.2)
    everything = Policy("all", "m", 1.0, 1.0)
    result = replay(frame, policy, everything, cost, segments=())
    # 1: +150; 2: -600; 3 (review, good): 300 - 5; 4 (review, bad, half caught):
    # -0.6 x 2000 x 0.5 - 5; 5, 6 rejected
    assert result.metric("active", "profit") == pytest.approx(-760)
    # bads 2 - 0.5 caught over 4 - 0.5 kept
    assert result.metric("active", "bad_rate") == pytest.approx(1.5 / 3.5)
    # 0.6 x (1000 + 2000 x 0.5); over 6000 - 1000 caught
    assert result.metric("active", "expected_loss") == pytest.approx(1200)
    assert result.metric("active", "residual_risk") == pytest.approx(1200 / 5000)
    # no control: goods earn 150 + 300 + 80, bads lose 0.6 x 3500
    assert result.metric("proposed", "profit") == pytest.approx(530 - 2100)

    # riskcost.sweep at cut-off 0.2 (review band 0.1) is the same policy: its net benefit
    # over no control is the profit the cut-off adds
    sweep = riskcost.sweep(frame.rename(columns={"pd_active": "pd"}), [0.2, 1.0], cost).set_index(
        "cutoff_pd"
    )
    assert sweep.loc[1.0, "net_benefit"] == 0
    assert result.metric("active", "profit") - result.metric("proposed", "profit") == pytest.approx(
        sweep.loc[0.2, "net_benefit"]
    )
    assert result.metric("active", "bad_rate") == pytest.approx(sweep.loc[0.2, "bad_rate"])
    assert result.metric("active", "residual_risk") == pytest.approx(
        sweep.loc[0.2, "residual_risk"]
    )


# ---------------------------------------------------------------------------- guard


def test_guard_flags_shifts_beyond_the_allowed(result):
    # approval rate 7/12 -> 8/12 (+8.3 points); fuzzy bad rate 1/3 -> 221/469 = 47.1%
    # (+194/1407 = 13.8 points)
    assert guard(result, max_approval_shift=0.05, max_bad_rate_shift=0.15) == [
        "approval rate rises from 58.3% to 66.7% (active v1 -> proposed v2): +8.3 points, "
        "more than the 5.0 allowed"
    ]
    assert guard(result, max_approval_shift=0.10, max_bad_rate_shift=0.05) == [
        "bad rate of approvals (fuzzy reject inference) rises from 33.3% to 47.1% "
        "(active v1 -> proposed v2): +13.8 points, more than the 5.0 allowed"
    ]
    assert guard(result, 0.10, 0.15) == []
    # a shift equal to the allowed passes
    assert guard(result, 1 / 12, 194 / 1407) == []
    # on known outcomes alone the bad rate falls, 1/3 -> 1/4
    assert guard(result, 0.10, 0.05, method="none") == [
        "bad rate of approvals (known outcomes only) falls from 33.3% to 25.0% "
        "(active v1 -> proposed v2): -8.3 points, more than the 5.0 allowed"
    ]


def test_guard_flags_a_bad_rate_it_cannot_compare():
    shut = Policy("v9", "m", 0.0, 0.0)  # rejects everything
    result = replay(history(), ACTIVE, shut, COST, band_edges=EDGES)
    assert guard(result, 0.5, 0.5) == [
        "approval rate falls from 58.3% to 0.0% (active v1 -> proposed v9): -58.3 points, "
        "more than the 50.0 allowed",
        "bad rate of approvals (fuzzy reject inference) cannot be compared (active v1 -> "
        "proposed v9): the proposed policy has no approval with an outcome",
    ]
    # nothing swaps in: an empty set, with no bad rate
    assert result.swap("swap_in", "applications", "fuzzy") == 0
    assert np.isnan(result.swap("swap_in", "bad_rate", "fuzzy"))
    # every active approval swaps out: 1, 2, 3, 4, 8, 9, 12
    assert result.swap("swap_out", "applications") == 7
    with pytest.raises(ValueError, match="max_approval_shift must be a share >= 0"):
        guard(result, -0.1, 0.1)
    with pytest.raises(ValueError, match="method must be one of none, parcelling, fuzzy"):
        guard(result, 0.1, 0.1, method="augmentation")


# ----------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: Policy("v1", "m", 0.3, 0.2),
            r"policy v1: approve_below_pd 0.3 is above reject_from_pd 0.2: lower "
            r"approve_below_pd or raise reject_from_pd",
        ),
        (
            lambda: Policy("v1", "m", -0.1, 1.2),
            r"policy v1: approve_below_pd -0.1 is outside \[0, 1\]; reject_from_pd 1.2 is "
            r"outside \[0, 1\] \(need 0 <= approve_below_pd <= reject_from_pd <= 1\)",
        ),
        (
            lambda: Policy("v1", "m", "0.1", 0.2),
            r"policy v1: approve_below_pd must be a number within \[0, 1\], got '0.1'",
        ),
        (lambda: Policy(3, "m", 0.1, 0.2), r"version must be a non-empty string, got 3 \(in YAML"),
        (lambda: Policy("v1", "m", 0.1, 0.2, "KO_X"), r"rules must be a list of rule codes"),
        (
            lambda: SegmentOverride("channel", "web", 0.2, 0.1),
            r"segment override channel='web': approve_below_pd 0.2 is above reject_from_pd 0.1",
        ),
        (lambda: SegmentOverride("channel", None, 0.1, 0.2), r"value must be a string or a number"),
        (
            lambda: Policy(
                "v1",
                "m",
                0.1,
                0.2,
                overrides=(
                    SegmentOverride("channel", "web", 0.1, 0.2),
                    SegmentOverride("channel", "web", 0.0, 0.1),
                ),
            ),
            r"override 2 repeats channel='web'; the first match wins",
        ),
    ],
)
def test_policy_validation(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_policy_dict_round_trip_through_json():
    data = PROPOSED.to_dict()
    assert data == {
        "version": "v2",
        "model": "gbt v1",
        "approve_below_pd": 0.15,
        "reject_from_pd": 0.30,
        "rules": [KO_BL],
        "overrides": [
            {
                "column": "channel",
                "value": "broker",
                "approve_below_pd": 0.05,
                "reject_from_pd": 0.10,
            }
        ],
    }
    assert Policy.from_dict(json.loads(json.dumps(data))) == PROPOSED
    minimal = Policy.from_dict(
        {"version": "v1", "model": "m", "approve_below_pd": 0.1, "reject_from_pd": 0.2}
    )
    assert (minimal.rules, minimal.overrides) == ((), ())


def test_policy_from_dict_refuses_unknown_and_missing_keys():
    allowed = "version, model, approve_below_pd, reject_from_pd, rules, overrides"
    with pytest.raises(
        ValueError, match=f"policy: unknown key\\(s\\) cutoff; allowed keys: {allowed}"
    ):
        Policy.from_dict({**ACTIVE.to_dict(), "cutoff": 0.2})
    with pytest.raises(ValueError, match="policy: missing key\\(s\\) model, reject_from_pd"):
        Policy.from_dict({"version": "v1", "approve_below_pd": 0.1})
    bad_override = {
        **PROPOSED.to_dict(),
        "overrides": [{"column": "channel", "value": "web", "approve_below": 0.1}],
    }
    with pytest.raises(
        ValueError,
        match=r"policy v2: override 1: unknown key\(s\) approve_below; allowed keys: column, "
        r"value, approve_below_pd, reject_from_pd",
    ):
        Policy.from_dict(bad_override)
    with pytest.raises(ValueError, match="policy must be a mapping"):
        Policy.from_dict(["v1"])


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda f: f.drop(columns=["bad", "channel"]),
            r"history lacks column\(s\) \['bad', 'channel'\]",
        ),
        (lambda f: f.assign(bad=[2] + [0] * 11), r"bad must be 1 \(bad\), 0 \(good\) or missing"),
        (
            lambda f: f.assign(historical_decision=["pending"] + ["approved"] * 11),
            r"historical_decision must be 'approved' or 'rejected': 1 row\(s\) break it, "
            r"e\.g\. index \[0\]",
        ),
        (
            lambda f: f.assign(application_id=[1, 1] + list(range(3, 13))),
            r"application_id must be unique; repeated: \[1\]",
        ),
        (
            lambda f: f.assign(exposure=[-1] + [1000] * 11),
            r"exposure must be a non-negative amount",
        ),
        (lambda f: f.iloc[:0], r"history is empty"),
    ],
)
def test_replay_validates_the_history(change, message):
    with pytest.raises(ValueError, match=message):
        replay(change(history()), ACTIVE, PROPOSED, COST)


def test_a_history_without_rules_fired_fires_no_rule():
    result = replay(history().drop(columns="rules_fired"), ACTIVE, PROPOSED, COST, band_edges=EDGES)
    assert result.notes[0] == "history has no rules_fired column: no policy rule fired on any row"
    rows = result.rows.set_index("application_id")
    # 10 (PD 0.03 / 0.04) now approves under both; 4 (0.10) approves under the proposed
    assert rows.loc[10, ["active_decision", "proposed_decision"]].tolist() == ["approve", "approve"]
    assert rows.loc[4, "proposed_decision"] == "approve"
    assert result.swap_rules.empty


# ------------------------------------------------------------------ a larger history


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_inference_with_the_active_pd_lands_nearer_the_hidden_truth():
    # 20000 applications. The active model is calibrated: with its logit s, the true bad
    # probability is expit(s + u), u ~ N(0, 0.3) being what no model sees. 35% of the
    # applicants have many recent credit enquiries, 0.5 logits riskier, which the active
    # model knows; the active policy's rule KO_ENQUIRIES rejected them, bar 5% let through
    # by an underwriter's exception. The proposed model, fitted on approved loans only
    # (few of them with many enquiries), reads them 1.0 logit too risky: its PD is biased
    # upward on the rejected. The proposed policy drops the rule, so they make most of its
    # swap-ins. The other applicants the active policy approved below PD 0.2, and let
    # through half the rejects just above (fading out by 0.28) and 4% of the rest. 10% of
    # the approved are immature.
    rng = np.random.default_rng(21)
    n = 20_000
    enquiries = rng.random(n) < 0.35
    score = rng.normal(-2.4, 0.9, n) + 0.5 * enquiries
    pd_active = _expit(score)
    truth = (rng.random(n) < _expit(score + rng.normal(0.0, 0.3, n))).astype(float)
    pd_proposed = _expit(score + 1.0 * enquiries + rng.normal(0.0, 0.2, n))
    let_through = rng.random(n) < 0.04 + 0.5 * np.clip(1 - (pd_active - 0.2) / 0.08, 0, 1)
    exception = rng.random(n) < 0.05
    approved = np.where(enquiries, exception, (pd_active < 0.2) | let_through)
    bad = np.where(approved, truth, np.nan)
    bad[approved & (rng.random(n) < 0.1)] = np.nan
    frame = pd.DataFrame(
        {
            "application_id": np.arange(n),
            "channel": rng.choice(["app", "web", "broker"], n),
            "province": rng.choice(["GD", "ZJ"], n),
            "product": rng.choice(["cash", "bnpl"], n),
            "score_band": pd.cut(pd_active, [0, 0.05, 0.1, 0.2, 1.0], labels=list("ABCD")),
            "pd_active": pd_active,
            "pd_proposed": pd_proposed,
            "rules_fired": [["KO_ENQUIRIES"] if e else [] for e in enquiries],
            "exposure": rng.integers(1, 20, n) * 500.0,
            "historical_decision": np.where(approved, "approved", "rejected"),
            "bad": bad,
        }
    )
    # the motivating case: on the historically rejected the proposed PD overshoots the
    # hidden bad rate, the active PD does not
    rejected = ~approved
    assert pd_proposed[rejected].mean() - truth[rejected].mean() > 0.1
    assert pd_active[rejected].mean() == pytest.approx(truth[rejected].mean(), abs=0.02)

    active = Policy("v1", "logistic v3", 0.10, 0.20, ("KO_ENQUIRIES",))
    proposed = Policy("v2", "gbt v1", 0.12, 0.30)
    edges = [*np.linspace(0, 0.5, 11), 1.0]
    by_active = replay(frame, active, proposed, COST, band_edges=edges)
    by_proposed = replay(
        frame, active, proposed, COST, band_edges=edges, inference_pd="pd_proposed"
    )
    swap_in = (by_active.rows["swap"] == "swap_in").to_numpy()
    hidden = truth[swap_in].mean()
    # mostly rows with many enquiries, nearly all rejected by the rule: few known outcomes,
    # and those, mostly the rejects let through just above the cut-off, riskier than the set
    assert enquiries[swap_in].mean() > 0.5
    assert by_active.swap("swap_in", "known_outcomes") < swap_in.sum() / 2
    known_only = by_active.swap("swap_in", "bad_rate", "none")
    assert known_only - hidden > 0.02
    for method in ("parcelling", "fuzzy"):
        with_active = by_active.swap("swap_in", "bad_rate", method)
        with_proposed = by_proposed.swap("swap_in", "bad_rate", method)
        assert with_proposed - hidden > 0.02, method  # the proposed PD's bias carries over
        assert abs(with_active - hidden) < abs(with_proposed - hidden), method
        assert abs(with_active - hidden) < abs(known_only - hidden), method
    # the fuzzy calibration finds the active model calibrated
    assert by_active.inference["fuzzy"]["calibration_factor"] == pytest.approx(1.0, abs=0.1)
