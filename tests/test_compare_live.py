"""Champion/challenger per policy arm on the service's decisions: approval and bad rates
with Wilson intervals, Newcombe's interval of the difference, the paired score
distributions (PSI, KS), and `riskctl decisions compare --outcomes`."""

from __future__ import annotations

import json
import math

import pytest
from conftest import TEST_PII_KEY

from riskcontrol.cli import main
from riskcontrol.core.pii import hmac_hex
from riskcontrol.serve import compare
from riskcontrol.serve.journal import DecisionJournal, default_path

KEY = TEST_PII_KEY.encode()
Z = 1.959963984540054


def key(i: int) -> str:
    return hmac_hex(f"A-{i}".encode(), KEY)


def record(i, arm, decision, champion_pd=0.05, challenger_pd=0.06, challenger=True):
    acting_pd = challenger_pd if arm == "challenger" else champion_pd
    return {
        "application_key": key(i),
        "arm": arm,
        "decision": decision,
        "pd": acting_pd,
        "versions": {"policy": "cutoff-7"},
        "champion": {"model": "gbt/3", "decision": decision, "pd": champion_pd},
        "challenger": (
            {"model": "nn/4", "decision": decision, "pd": challenger_pd} if challenger else None
        ),
    }


def wilson_by_hand(x, n):
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


# champion arm: 10 decisions, 8 approved, 6 of them matured, 1 bad;
# challenger arm: 10 decisions, 6 approved, 5 matured, 2 bad
CHAMPION = [record(i, "champion", "approve" if i < 8 else "reject") for i in range(10)]
CHALLENGER = [record(i, "challenger", "approve" if i < 16 else "review") for i in range(10, 20)]
OUTCOMES = {
    **{key(i): int(i == 0) for i in range(6)},  # champion approvals 0-5 matured, 0 bad
    **{key(i): int(i in (10, 11)) for i in range(10, 15)},  # challenger 10-14, 10 and 11 bad
    key(8): 1,  # a rejected application has no outcome that counts
    key(99): 1,  # nor one the journal never decided
}


def test_per_arm_rates_carry_exact_wilson_and_newcombe_intervals():
    s = compare.compare(CHAMPION + CHALLENGER, OUTCOMES).summary()
    one, two = s["arms"]["champion"], s["arms"]["challenger"]
    assert (one["decisions"], one["approved"], one["approved_with_outcome"], one["bad"]) == (
        10,
        8,
        6,
        1,
    )
    assert (two["decisions"], two["approved"], two["approved_with_outcome"], two["bad"]) == (
        10,
        6,
        5,
        2,
    )
    assert one["models"] == [{"model": "gbt/3", "policy_version": "cutoff-7", "decisions": 10}]
    assert two["models"] == [{"model": "nn/4", "policy_version": "cutoff-7", "decisions": 10}]
    for got, (x, n) in [
        (one["approval_rate_ci95"], (8, 10)),
        (two["approval_rate_ci95"], (6, 10)),
        (one["bad_rate_ci95"], (1, 6)),
        (two["bad_rate_ci95"], (2, 5)),
    ]:
        assert got == pytest.approx(wilson_by_hand(x, n), abs=1e-9)
    assert one["approval_rate"] == 0.8 and two["bad_rate"] == 0.4
    assert one["bad_rate"] == pytest.approx(1 / 6, abs=1e-12)
    # Newcombe (method 10): challenger minus champion
    (l1, u1), (l2, u2) = wilson_by_hand(1, 6), wilson_by_hand(2, 5)
    p1, p2 = 1 / 6, 2 / 5
    d = s["bad_rate_difference"]
    assert d["difference"] == pytest.approx(p2 - p1, abs=1e-12)
    assert d["low"] == pytest.approx(p2 - p1 - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), abs=1e-9)
    assert d["high"] == pytest.approx(
        p2 - p1 + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2), abs=1e-9
    )
    assert s["outcomes_known"] == 11


def test_wilson_at_the_edges():
    assert compare.wilson(0, 0) is None
    low, high = compare.wilson(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(Z**2 / (10 + Z**2), abs=1e-12)
    low, high = compare.wilson(10, 10)
    assert high == pytest.approx(1.0, abs=1e-12)
    assert low == pytest.approx(10 / (10 + Z**2), abs=1e-12)


def test_paired_scores_psi_on_champion_deciles_and_ks():
    champion_pds = [i / 100 for i in range(1, 11)]  # one PD in each champion decile
    challenger_pds = [0.005] * 5 + [0.2] * 5  # half in the lowest decile, half in the top
    records = [
        record(i, "champion", "approve", champion_pd=a, challenger_pd=b)
        for i, (a, b) in enumerate(zip(champion_pds, challenger_pds, strict=True))
    ]
    s = compare.compare(records).score_comparison()
    assert s["paired"] == 10
    floor = 1e-4
    expected = 2 * (0.5 - 0.1) * math.log(0.5 / 0.1) + 8 * (floor - 0.1) * math.log(floor / 0.1)
    assert s["psi"]["psi"] == pytest.approx(expected, abs=1e-9)
    assert s["psi"]["bins"] == 10
    assert s["psi"]["noise"] == pytest.approx(
        (1 / 10 + 1 / 10) * (9 + 3 * math.sqrt(18)), abs=1e-12
    )
    assert s["psi"]["beyond_noise"] is True
    # ECDF gap: at 0.10 the champion's is 1, the challenger's 0.5
    assert s["ks"] == pytest.approx(0.5, abs=1e-12)
    assert s["champion"]["mean"] == pytest.approx(0.055, abs=1e-12)
    assert s["champion"]["quantiles"] == pytest.approx(
        dict(
            zip(
                ["p10", "p25", "p50", "p75", "p90"],
                [0.019, 0.0325, 0.055, 0.0775, 0.091],
                strict=True,
            )
        )
    )
    assert s["challenger"]["quantiles"]["p50"] == pytest.approx(0.1025, abs=1e-12)
    assert compare.ks([1, 2, 3], [2.5, 4]) == pytest.approx(2 / 3, abs=1e-12)
    assert compare.psi(champion_pds, champion_pds)["psi"] == pytest.approx(0.0, abs=1e-12)


def test_noise_matches_the_warning_indicators(spark):
    """``psi_noise`` is ``warning.stability_noise`` on numbers: the same value."""
    from pyspark.sql import functions as F

    from riskcontrol.apply.warning import stability_noise

    for recent, reference, bins in [(10, 10, 10), (250, 4000, 7), (30, 40, 1)]:
        spark_value = (
            spark.range(1)
            .select(
                stability_noise(F.lit(float(recent)), F.lit(float(reference)), F.lit(float(bins)))
            )
            .first()[0]
        )
        assert compare.psi_noise(recent, reference, bins) == pytest.approx(spark_value, abs=1e-12)


def test_no_paired_records_no_outcomes_one_arm():
    records = [record(i, "champion", "approve", challenger=False) for i in range(4)]
    c = compare.compare(records, {})
    s = c.summary()
    assert s["paired"] == 0
    assert s["scores"]["psi"] is None and s["scores"]["ks"] is None
    assert s["scores"]["champion"] == {"n": 0, "mean": None, "quantiles": None}
    assert list(s["arms"]) == ["champion"]
    assert s["arms"]["champion"]["bad_rate"] is None
    assert s["arms"]["champion"]["bad_rate_ci95"] is None
    assert s["arms"]["champion"]["pd_distribution"]["n"] == 4
    assert s["bad_rate_difference"] is None and s["outcomes_known"] == 0
    text = compare.render(c)
    assert "no decision carries a challenger score" in text
    assert "outcomes: not known yet for any approved decision" in text
    assert "--outcomes" not in text  # an outcome map was given; it matched nothing
    assert "PSI" not in text
    assert "decided by champion  : n 4  mean 0.0500" in text
    assert "--outcomes" in compare.render(compare.compare(records))
    empty = compare.compare([]).summary()
    assert empty["arms"] == {} and empty["scores"]["psi"] is None


def test_outcomes_on_one_arm_only_give_no_difference():
    c = compare.compare(CHAMPION + CHALLENGER, {key(0): 1})
    assert c.bad_rate_difference() is None
    assert "needs outcomes on both arms" in compare.render(c)


def test_render_shows_intervals_and_no_identifier():
    c = compare.compare(CHAMPION + CHALLENGER, OUTCOMES)
    text = compare.render(c)
    low, high = wilson_by_hand(8, 10)
    assert f"  champion          10   80.0% [{low:6.1%}, {high:6.1%}]" in text
    assert "model nn/4  policy cutoff-7  (10 decisions)" in text
    assert "bad rate, challenger - champion: +23.3% [" in text
    assert "(95%, Newcombe hybrid score)" in text
    # every champion PD 0.05 (one edge, two bins), every challenger PD 0.06 (the upper one)
    psi = 2 * (1 - 1e-4) * math.log(1e4)
    noise = (1 / 20 + 1 / 20) * (1 + 3 * math.sqrt(2))
    assert (
        f"PSI challenger vs champion deciles: {psi:.4f} (beyond sampling noise {noise:.4f})"
        "   KS: 1.0000"
    ) in text
    dumped = json.dumps(c.summary())
    for i in (*range(20), 99):
        assert key(i) not in text and key(i) not in dumped


def test_compare_outcomes_without_features_table_is_one_clear_line(cli_home, spark, capsys):
    journal = DecisionJournal(default_path(cli_home))
    for r in CHAMPION[:3]:
        journal.record(r["application_key"], {k: v for k, v in r.items() if k != "application_key"})
    assert main.main(["decisions", "compare", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["arms"]["champion"]["decisions"] == 3 and s["outcomes_given"] is False
    assert main.main(["decisions", "compare", "--outcomes"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [
        "riskctl decisions: error: gold.application_features does not exist: outcomes "
        "come from it, run `riskctl run` (or collect and analyze) first"
    ]


def test_compare_outcomes_reads_matured_labels_keyed_as_the_journal(cli_home, spark, capsys):
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import GOLD_APPLICATION_FEATURES
    from riskcontrol.core.config import get_settings

    journal = DecisionJournal(default_path(cli_home))
    for r in CHAMPION + CHALLENGER:
        journal.record(r["application_key"], {k: v for k, v in r.items() if k != "application_key"})
    labels = {i: "bad" if i in (0, 10, 11) else "good" for i in (*range(6), *range(10, 15))}
    labels |= {6: "immature", 15: None, 8: "bad", 99: "bad"}  # not matured; rejected; unknown
    rows = [{"application_id": f"A-{i}", "label_status": s} for i, s in labels.items()]
    lakehouse.overwrite(
        spark.createDataFrame(rows, GOLD_APPLICATION_FEATURES.schema),
        GOLD_APPLICATION_FEATURES,
        get_settings(),
    )
    assert main.main(["decisions", "compare", "--outcomes", "--json"]) == 0
    out = capsys.readouterr().out
    got = json.loads(out)  # Spark's start line went to standard error
    expected = compare.compare(CHAMPION + CHALLENGER, OUTCOMES).summary()
    assert got["arms"] == json.loads(json.dumps(expected["arms"]))
    assert got["bad_rate_difference"] == pytest.approx(expected["bad_rate_difference"])
    assert "A-1" not in out and key(1) not in out
    assert main.main(["decisions", "compare", "--outcomes"]) == 0
    out = capsys.readouterr().out
    assert "starting Spark" in out and "bad rate, challenger - champion: +23.3% [" in out
