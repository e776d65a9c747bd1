"""The risk-cost balance of the approval cut-off on a hand-built population (pure pandas)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import make_settings
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from riskcontrol.apply import riskcost
from riskcontrol.apply.riskcost import CostModel

# Twelve applications with their observed outcome. Totals: exposure 22000, bad exposure
# 5000 (rows 5, 7, 9, 10, 12; loss 2500 at LGD 0.5), good exposure 17000.
#        row:    1     2     3     4     5     6     7     8     9    10    11    12
POPULATION = pd.DataFrame(
    {
        "pd": [0.02, 0.04, 0.07, 0.10, 0.14, 0.15, 0.25, 0.32, 0.40, 0.55, 0.70, 0.96],
        "bad": [0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1],
        "exposure": [4000, 4000, 3000, 2000, 1000, 2000, 1000, 1000, 1000, 1000, 1000, 1000],
    }
)
COST = CostModel(lgd=0.5, good_margin=0.2, review_cost=20.0, review_band=0.05, risk_tolerance=0.05)
# Given out of order: the sweep sorts them from least to most control.
CANDIDATES = [0.2, 1.0, 0.03, 0.9, 0.12, 0.5, 0.01, 0.3, 0.08, 0.05]

# Reject PD >= t, review t - 0.05 <= PD < t, approve PD < t. effect = 0.5 x rejected bad
# exposure; cost = 0.2 x rejected good exposure + 20 x reviewed; residual = 0.5 x approved
# bad exposure / approved exposure; marginal = increase over the row above (first row:
# over no control). Area: effect >= cost? residual <= 0.05?
# fmt: off
EXPECTED_COLUMNS = [
    "cutoff_pd", "approve_below_pd", "approved", "reviewed", "rejected", "approval_rate",
    "bad_rate", "control_effect", "control_cost", "net_benefit", "marginal_effect",
    "marginal_cost", "residual_risk", "area", "area_name", "optimal",
]
EXPECTED = [
    # t=1: nothing rejected; row 12 (0.96) reviewed; cost 20 > effect 0 and residual
    # 2500/22000 = 0.114 > 0.05 -> area 1; marginal = own values
    (1.00, 0.95, 12, 1, 0, 12 / 12, 5 / 12, 0.0, 20.0, -20.0, 0.0, 20.0, 2500 / 22000,
     1, "invalid", False),
    # t=0.9: reject row 12 (bad 1000): effect 500; no review in [0.85, 0.9): cost 0;
    # residual 0.5 x 4000 / 21000; marginal 500 - 0, 0 - 20
    (0.90, 0.85, 11, 0, 1, 11 / 12, 4 / 11, 500.0, 0.0, 500.0, 500.0, -20.0, 2000 / 21000,
     2, "weaker", False),
    # t=0.5: reject rows 10-12 (bads 1000 + 1000, good 1000): effect 1000, cost 0.2 x 1000
    # = 200; residual 0.5 x 3000 / 19000 = 0.079 -> area 2
    (0.50, 0.45, 9, 0, 3, 9 / 12, 3 / 9, 1000.0, 200.0, 800.0, 500.0, 200.0, 1500 / 19000,
     2, "weaker", False),
    # t=0.3: reject rows 8-12 (bads 3000, goods 2000); review [0.25, 0.3) = row 7: cost
    # 400 + 20 = 420; residual 0.5 x 2000 / 17000 = 0.0588 -> still area 2
    (0.30, 0.25, 7, 1, 5, 7 / 12, 2 / 7, 1500.0, 420.0, 1080.0, 500.0, 220.0, 1000 / 17000,
     2, "weaker", False),
    # t=0.2: reject rows 7-12 (bads 4000, goods 2000); review [0.15, 0.2) = row 6 (PD 0.15
    # exactly, though 0.2 - 0.05 is 0.15000000000000002 in floats): cost 400 + 20 = 420;
    # residual 0.5 x 1000 / 16000 = 0.03125 <= 0.05 -> area 3
    (0.20, 0.15, 6, 1, 6, 6 / 12, 1 / 6, 2000.0, 420.0, 1580.0, 500.0, 0.0, 500 / 16000,
     3, "reasonable", False),
    # t=0.12: reject rows 5-12 (all bads 5000, goods 2000 + 1000 + 1000 = 4000); review
    # rows 3, 4 in [0.07, 0.12): cost 800 + 40 = 840; net 1660 is the largest in area 3:
    # marginal effect 500 still covers marginal cost 420, the next step adds 0 for 400
    (0.12, 0.07, 4, 2, 8, 4 / 12, 0.0, 2500.0, 840.0, 1660.0, 500.0, 420.0, 0.0,
     3, "reasonable", True),
    # t=0.08: also reject row 4 (good 2000): goods 6000; review rows 2, 3: 1200 + 40
    (0.08, 0.03, 3, 2, 9, 3 / 12, 0.0, 2500.0, 1240.0, 1260.0, 0.0, 400.0, 0.0,
     3, "reasonable", False),
    # t=0.05: reject rows 3-12: goods 9000; review band clipped to [0, 0.05): rows 1, 2;
    # cost 1800 + 40 = 1840 <= effect 2500
    (0.05, 0.00, 2, 2, 10, 2 / 12, 0.0, 2500.0, 1840.0, 660.0, 0.0, 600.0, 0.0,
     3, "reasonable", False),
    # t=0.03: reject rows 2-12: goods 13000; review row 1: cost 2600 + 20 = 2620 > 2500
    # with residual 0 -> area 4
    (0.03, 0.00, 1, 1, 11, 1 / 12, 0.0, 2500.0, 2620.0, -120.0, 0.0, 780.0, 0.0,
     4, "override", False),
    # t=0.01: everything rejected: goods 17000 -> cost 3400; nothing approved, so bad rate
    # and residual risk are 0
    (0.01, 0.00, 0, 0, 12, 0.0, 0.0, 2500.0, 3400.0, -900.0, 0.0, 780.0, 0.0,
     4, "override", False),
]
# fmt: on


def expected_frame() -> pd.DataFrame:
    frame = pd.DataFrame(EXPECTED, columns=EXPECTED_COLUMNS)
    frame.insert(2, "applications", 12)
    frame.insert(14, "risk_tolerance", 0.05)
    return frame.astype(
        {
            "applications": "int64",
            "approved": "int64",
            "reviewed": "int64",
            "rejected": "int64",
            "area": "int32",
            "optimal": bool,
        }
    )


@pytest.fixture(scope="module")
def balance() -> pd.DataFrame:
    return riskcost.sweep(POPULATION, CANDIDATES, COST)


def test_sweep_gives_every_column_of_every_candidate(balance):
    assert list(balance.columns) == list(riskcost.COLUMNS)
    pd.testing.assert_frame_equal(balance, expected_frame(), check_exact=False, rtol=1e-12)


def test_each_area_is_reached_by_its_chosen_candidate(balance):
    areas = balance.set_index("cutoff_pd")[["area", "area_name"]]
    assert areas.loc[1.0].tolist() == [1, "invalid"]
    assert areas.loc[0.5].tolist() == [2, "weaker"]
    assert areas.loc[0.2].tolist() == [3, "reasonable"]
    assert areas.loc[0.03].tolist() == [4, "override"]


def test_optimal_row_is_the_area_3_point_where_marginal_effect_meets_marginal_cost(balance):
    row = riskcost.optimal_row(balance)
    assert row["cutoff_pd"] == 0.12
    assert (row["marginal_effect"], row["marginal_cost"]) == (500.0, 420.0)
    assert balance["optimal"].sum() == 1
    # one step further (0.08) adds no effect for 400 more cost
    following = balance[balance["cutoff_pd"] == 0.08].iloc[0]
    assert (following["marginal_effect"], following["marginal_cost"]) == (0.0, 400.0)


def test_a_tie_of_net_benefit_goes_to_the_candidate_with_less_control():
    # t=0.14 and t=0.13 both reject rows 5-12 (effect 2500, goods 4000 -> 800) and review
    # only row 4 ([0.09, 0.14) and [0.08, 0.13)): cost 820, net 1680 each
    frame = riskcost.sweep(POPULATION, [0.13, 0.14], COST)
    assert frame[["cutoff_pd", "net_benefit", "area", "optimal"]].values.tolist() == [
        [0.14, 1680.0, 3, True],
        [0.13, 1680.0, 3, False],
    ]


def test_without_area_3_there_is_no_optimal_row(balance):
    # the four least-controlling candidates never bring the residual risk within 5%
    frame = riskcost.sweep(POPULATION, [1.0, 0.9, 0.5, 0.3], COST)
    assert frame["area"].tolist() == [1, 2, 2, 2]
    assert frame["optimal"].tolist() == [False] * 4
    assert riskcost.optimal_row(frame) is None


def test_exact_boundaries_are_not_moved_by_float_noise():
    # LGD 0.35, margin 0.1, no review. At t=0.5: rejected bad 700 -> effect 0.35 x 700 =
    # 244.99999999999997 in floats, rejected good 2450 -> cost 245.0: equal, so effect >=
    # cost; approved bad 700 of exposure 700 + 4200: residual 245 / 4900 = 0.05 = tolerance.
    population = pd.DataFrame(
        {"pd": [0.1, 0.2, 0.6, 0.7], "bad": [1, 0, 1, 0], "exposure": [700, 4200, 700, 2450]}
    )
    cost = CostModel(lgd=0.35, good_margin=0.1, review_cost=0.0, review_band=0.0,
                     risk_tolerance=0.05)  # fmt: skip
    row = riskcost.sweep(population, [0.5], cost).iloc[0]
    assert row["control_effect"] < row["control_cost"]  # the noise the rule absorbs
    assert row["residual_risk"] == pytest.approx(0.05)
    assert (row["area"], row["optimal"]) == (3, True)


def test_duplicate_candidates_give_one_row():
    frame = riskcost.sweep(POPULATION, [0.5, 0.5, 0.2], COST)
    assert frame["cutoff_pd"].tolist() == [0.5, 0.2]


def test_cost_model_from_settings(tmp_path):
    settings = make_settings(
        tmp_path, lgd=0.4, good_margin=0.12, review_cost=25.0, review_band_pd=0.03,
        risk_tolerance=0.02, review_catch=0.3,
    )  # fmt: skip
    assert CostModel.from_settings(settings) == CostModel(
        lgd=0.4, good_margin=0.12, review_cost=25.0, review_band=0.03, risk_tolerance=0.02,
        review_catch=0.3,
    )  # fmt: skip


def test_candidate_cutoffs_grid():
    grid = riskcost.candidate_cutoffs(0.005)
    assert len(grid) == 200
    assert (grid[0], grid[19], grid[-2], grid[-1]) == (0.005, 0.1, 0.995, 1.0)
    assert riskcost.candidate_cutoffs(0.3) == [0.3, 0.6, 0.9, 1.0]
    assert riskcost.candidate_cutoffs(0.1, low=0.05, high=0.4) == [0.05, 0.15, 0.25, 0.35, 0.4]
    with pytest.raises(ValueError, match="step must be > 0"):
        riskcost.candidate_cutoffs(0.0)
    with pytest.raises(ValueError, match="0 < low <= high <= 1"):
        riskcost.candidate_cutoffs(0.1, low=0.5, high=0.2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.drop(columns=["exposure"]), r"lacks column\(s\) \['exposure'\]"),
        (lambda p: p.iloc[0:0], "population is empty"),
        (lambda p: p.assign(pd=[1.2] + [0.1] * 11), r"pd must be .*within \[0, 1\].*index \[0\]"),
        (lambda p: p.assign(pd=[np.nan] * 12), r"pd must be .* 12 row"),
        (lambda p: p.assign(bad=[2] + [0] * 11), "bad must be 0 or 1"),
        (lambda p: p.assign(exposure=[-1] + [0] * 11), "exposure must be a non-negative"),
    ],
)
def test_population_is_validated(change, message):
    with pytest.raises(ValueError, match=message):
        riskcost.sweep(change(POPULATION), [0.5], COST)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [([], "no candidate cut-offs"), ([0.5, 0.0], r"within \(0, 1\]"), ([1.5], r"\[1.5\]")],
)
def test_candidates_are_validated(candidates, message):
    with pytest.raises(ValueError, match=message):
        riskcost.sweep(POPULATION, candidates, COST)


def test_cost_model_is_validated():
    with pytest.raises(ValueError, match=r"lgd \(RISK_LGD\) must be within \[0, 1\]"):
        CostModel(lgd=1.5, good_margin=0.1, review_cost=0, review_band=0, risk_tolerance=0.03)
    with pytest.raises(ValueError, match="review_cost .* must be >= 0"):
        CostModel(lgd=0.5, good_margin=0.1, review_cost=-1, review_band=0, risk_tolerance=0.03)


def test_plot_balance_of_rows_read_back_in_any_order(balance):
    # as read from gold.cutoff_policy: extra columns, shuffled rows
    stored = balance.assign(policy_version=3, chosen=balance["optimal"]).sample(
        frac=1.0, random_state=7
    )
    fig = riskcost.plot_balance(stored, title="Cut-off policy v3")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "Cut-off policy v3"
    assert ax.get_xlabel() == "degree of control: applications rejected (%)"
    assert ax.get_ylabel() == "amount (currency units)"
    risk = next(a for a in fig.axes if a.get_ylabel().startswith("residual risk"))

    # x = share rejected: 0, 8.3, 25, 41.7 | 50, 66.7, 75, 83.3 | 91.7, 100; spans reach
    # halfway to the neighbouring candidate
    spans = {
        p.get_label(): (pytest.approx(p.get_x()), pytest.approx(p.get_x() + p.get_width()))
        for p in ax.patches
        if isinstance(p, Rectangle) and p.get_label()[:1].isdigit()
    }
    assert spans == {
        "1 invalid": (0.0, 100 / 24),
        "2 weaker": (100 / 24, 1100 / 24),
        "3 reasonable": (1100 / 24, 87.5),
        "4 override": (87.5, 100.0),
    }
    assert {t.get_text() for t in ax.texts} == {
        "1 invalid",
        "2 weaker",
        "3 reasonable",
        "4 override",
        "optimal: cut-off PD 0.12\nnet benefit 1,660",
    }

    lines = {line.get_label(): line for line in ax.get_lines() + risk.get_lines()}
    star = lines["optimal cut-off PD 0.12"]
    assert (list(star.get_xdata()), list(star.get_ydata())) == ([pytest.approx(800 / 12)], [2500])
    assert list(lines["control effect (losses avoided)"].get_ydata())[:3] == [0, 500, 1000]
    assert list(lines["risk tolerance (5.0%)"].get_ydata()) == [0.05, 0.05]
    assert lines["risk tolerance (5.0%)"].get_linestyle() == "--"

    top = ax.child_axes[0]
    assert top.get_xlabel() == "cut-off PD (reject at or above)"
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels == ["1", "0.5", "0.3", "0.12", "0.05", "0.01"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "3 reasonable" in legend and "residual risk (right axis)" in legend


def test_plot_balance_shades_only_areas_present_and_uses_a_given_axes():
    frame = riskcost.sweep(POPULATION, [1.0, 0.9, 0.5], COST)
    fig = Figure()
    ax = fig.add_subplot()
    assert riskcost.plot_balance(frame, ax=ax) is fig
    labels = sorted(p.get_label() for p in ax.patches if p.get_label()[:1].isdigit())
    assert labels == ["1 invalid", "2 weaker"]
    assert not any(line.get_label().startswith("optimal") for line in ax.get_lines())
    assert ax.get_title() == "Risk-cost balance of the approval cut-off"


def test_plot_balance_refuses_rows_of_several_versions(balance):
    with pytest.raises(ValueError, match="single policy_version"):
        riskcost.plot_balance(pd.concat([balance, balance]))
    with pytest.raises(ValueError, match=r"missing \['area'\]"):
        riskcost.plot_balance(balance.drop(columns=["area"]))


def test_a_review_that_catches_bads_moves_a_cut_off_into_area_3():
    # t=0.3 reviews row 7 (a bad, exposure 1000). Catching half the band's bads avoids
    # 500 x 0.5 more: effect (3000 + 500) x 0.5 = 1750; approved exposure 17000 - 500,
    # its loss (2000 - 500) x 0.5 = 750: residual 750 / 16500 = 0.04545 <= 0.05, area 3
    # (2 without the review's effect); bads 2 - 0.5 of 7 - 0.5 approvals.
    frame = riskcost.sweep(POPULATION, [0.3], replace(COST, review_catch=0.5))
    row = frame.iloc[0]
    assert row["control_effect"] == pytest.approx(1750.0)
    assert row["control_cost"] == pytest.approx(420.0)
    assert row["residual_risk"] == pytest.approx(750 / 16500)
    assert row["bad_rate"] == pytest.approx(1.5 / 6.5)
    assert (row["area"], row["area_name"]) == (3, "reasonable")


def test_a_good_earns_its_interest_by_rate_and_term():
    # 1,200 over 12 months at 12% a year: 1% a month, installments of
    # 12 / (1 - 1.01^-12) = 106.61855; 12 of them pay 79.42256 of interest. At 0%: none.
    got = riskcost.lifetime_interest([1200.0, 1200.0, 3000.0], [0.12, 0.0, 0.24], [12, 12, 3])
    assert got[0] == pytest.approx(79.42256, abs=1e-5)
    assert got[1] == 0.0
    # 3,000 over 3 months at 2% a month: 60 / (1 - 1.02^-3) = 1040.26402, x 3 - 3000
    assert got[2] == pytest.approx(120.79205, abs=1e-5)
    # A revenue column equal to exposure x margin sweeps as the margin does; a richer
    # rejected good costs more: row 11 (PD 0.70, rejected from t=0.5) earning 500, not 200.
    revenue = POPULATION.assign(revenue=POPULATION["exposure"] * COST.good_margin)
    pd.testing.assert_frame_equal(
        riskcost.sweep(revenue, CANDIDATES, COST), riskcost.sweep(POPULATION, CANDIDATES, COST)
    )
    revenue.loc[10, "revenue"] = 500.0
    row = riskcost.sweep(revenue, [0.5], COST).iloc[0]
    assert row["control_cost"] == pytest.approx(500.0)
    with pytest.raises(ValueError, match="revenue must be a non-negative amount: 1 row"):
        riskcost.sweep(revenue.assign(revenue=[-1.0] + [0.0] * 11), [0.5], COST)


def test_the_bootstrap_band_of_a_clear_optimum_is_one_point():
    # 20 goods at PD 0.05 and 20 bads at PD 0.9: a resample with a bad in it is best cut
    # at 0.5 (every bad out, no good), never at 0.01 (every good out too); one with no bad
    # (a chance of 2^-40) would have no optimum at all.
    population = pd.DataFrame(
        {"pd": [0.05] * 20 + [0.9] * 20, "bad": [0] * 20 + [1] * 20, "exposure": [1000.0] * 40}
    )
    band = riskcost.bootstrap_band(population, [1.0, 0.5, 0.01], COST, draws=50)
    assert band == {"draws": 50, "found": 50, "low": 0.5, "median": 0.5, "high": 0.5}
    strict = replace(COST, risk_tolerance=0.0, review_band=0.0)
    none = riskcost.bootstrap_band(population.assign(pd=0.5), [1.0, 0.6], strict, draws=5)
    assert none == {"draws": 5, "found": 0, "low": None, "median": None, "high": None}


def test_sensitivity_of_the_optimum_to_lgd_revenue_and_review_cost():
    # Worked from the table above with one input scaled. LGD x 0.5: at t=0.2 effect 1000,
    # cost 420, net 580, the best in area 3 (t=0.12: 1250 - 840 = 410). LGD x 1.5: t=0.12
    # 3750 - 840 = 2910. Margin x 0.5: t=0.12 2500 - 440 = 2060. Margin x 1.5: t=0.2
    # 2000 - 620 = 1380 beats t=0.12 2500 - 1240 = 1260. Review cost x 0.5 and x 1.5:
    # t=0.12 2500 - 820 = 1680 and 2500 - 860 = 1640.
    rows = riskcost.sensitivity(POPULATION, CANDIDATES, COST)
    got = [(r["input"], r["factor"], r["cutoff_pd"], round(r["net_benefit"], 6)) for r in rows]
    assert got == [
        ("lgd", 0.5, 0.2, 580.0),
        ("lgd", 1.0, 0.12, 1660.0),
        ("lgd", 1.5, 0.12, 2910.0),
        ("revenue", 0.5, 0.12, 2060.0),
        ("revenue", 1.0, 0.12, 1660.0),
        ("revenue", 1.5, 0.2, 1380.0),
        ("review_cost", 0.5, 0.12, 1680.0),
        ("review_cost", 1.0, 0.12, 1660.0),
        ("review_cost", 1.5, 0.12, 1640.0),
    ]
