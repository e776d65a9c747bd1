"""The scorecard baseline: binning, points, SQL = Spark, reason codes, prior correction."""

from __future__ import annotations

import json
import math
import random

import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F

from riskcontrol.apply import scoring
from riskcontrol.apply.localscore import LocalScorer, _score, classify_row
from riskcontrol.modeling import metrics, scorecard, tracking
from riskcontrol.modeling.scale import ScoreScale

LN2_OVER_PDO = math.log(2) / 50.0  # a coefficient of -this is worth 1 point per unit of WOE


def rows_from_counts(*specs) -> list[tuple]:
    """Rows whose every column has the given (value, rows, bads) counts, plus the label.

    Each spec lists one column's values; bads and goods are zipped across columns, so
    every spec must have the same number of bads and of goods.
    """
    bads, goods = [], []
    for spec in specs:
        bads.append([v for v, _, b in spec for _ in range(b)])
        goods.append([v for v, n, b in spec for _ in range(n - b)])
    return [(*vals, 1) for vals in zip(*bads, strict=True)] + [
        (*vals, 0) for vals in zip(*goods, strict=True)
    ]


def woe(goods: float, bads: float, total_goods: float = 74, total_bads: float = 26) -> float:
    return math.log(((goods + 0.5) / total_goods) / ((bads + 0.5) / total_bads))


def iv(counts: list[tuple[float, float]], total_goods=74, total_bads=26) -> float:
    """IV from (rows, bads) per bin, the same +0.5 smoothing; empty bins add nothing."""
    return sum(
        ((n - b + 0.5) / total_goods - (b + 0.5) / total_bads)
        * woe(n - b, b, total_goods, total_bads)
        for n, b in counts
        if n
    )


# 100 rows, 26 bads. x: 1..7 and nulls; c: two levels seen in 30+ rows (MIN_LEVEL_ROWS),
# three in fewer, and nulls; k (and its copy k2): two levels, no nulls, nothing rare.
X_COUNTS = [
    (None, 10, 3),
    (1.0, 15, 6),  # 40%
    (2.0, 15, 5),  # 33% \ not decreasing: pooled -> [2, 4) 11/30 = 36.7%
    (3.0, 15, 6),  # 40% /
    (4.0, 15, 3),  # 20%
    (5.0, 15, 2),  # 13.3%
    (6.0, 12, 1),  # \ 7 is 3% of rows (< 5%): pooled into its only neighbour 6
    (7.0, 3, 0),  # /  -> [6, +inf) 1/15 = 6.7%
]
C_COUNTS = [
    ("A", 40, 4),  # 10%
    ("B", 30, 9),  # 30%
    ("C", 20, 6),  # \ under 30 rows: pooled -> other 11/27 = 40.7% (the old rule, levels
    ("D", 4, 3),  # |  under 5% of rows, kept C and merged it with B on the equal rate:
    ("E", 3, 2),  # /  {A}, {B, C}, other 5/7; 20 rows are too few to single C out)
    (None, 3, 2),
]
K_COUNTS = [("u", 50, 10), ("v", 50, 16)]


@pytest.fixture(scope="module")
def hand(spark):
    rows = rows_from_counts(X_COUNTS, C_COUNTS, K_COUNTS, K_COUNTS)
    df = spark.createDataFrame(rows, "x double, c string, k string, k2 string, label int")
    return scorecard.fit_bins(df, ["x"], ["c", "k", "k2"], max_bins=4)


def test_fit_bins_merges_to_monotonic_bins_with_missing_and_other(hand):
    x = hand["x"]
    # Pre-bins one per value (the cut at 1 leaves (-inf, 1) empty); 7 pooled into 6 and
    # {2, 3} pooled for a decreasing bad rate leaves 5 bins: 40, 36.7, 20, 13.3, 6.7%.
    # max_bins=4 merges the adjacent pair whose merge loses the least IV (with the +0.5
    # smoothing, merging two small bins even gains IV): IV change of merging
    # (1|2-3) -0.0129, (2-3|4) -0.0647, (4|5) +0.0019, (5|6-7) +0.0164 -> merge 5 and 6-7.
    assert [b.label for b in x.bins] == ["(-inf, 2)", "[2, 4)", "[4, 5)", "[5, +inf)", "missing"]
    assert [b.condition for b in x.bins] == [
        "x < 2.0E0",
        "x >= 2.0E0 AND x < 4.0E0",
        "x >= 4.0E0 AND x < 5.0E0",
        "x >= 5.0E0",
        "x IS NULL",
    ]
    x_counts = [(15, 6), (30, 11), (15, 3), (30, 3), (10, 3)]
    assert [(b.count, b.bads) for b in x.bins] == x_counts
    # e.g. (-inf, 2): ln(((9 + 0.5) / 74) / ((6 + 0.5) / 26)) = ln(0.1284 / 0.25) = -0.6665
    assert [b.woe for b in x.bins] == pytest.approx([woe(n - b, b) for n, b in x_counts])
    assert x.bins[0].woe == pytest.approx(-0.666479, abs=1e-6)
    assert x.iv == pytest.approx(iv(x_counts)) and x.iv == pytest.approx(0.431553, abs=1e-6)
    assert (x.kind, x.bins[1].lower, x.bins[1].upper) == ("numeric", 2.0, 4.0)

    c = hand["c"]
    # Sorted by the bad rate shrunk toward c's 24/97 with 30 rows: A (4 + 30 * 24/97) / 70
    # = 0.163, B 0.274, other 0.323; each holds >= 5 rows and the rates increase.
    assert [b.label for b in c.bins] == ["{A}", "{B}", "other", "missing"]
    assert [b.condition for b in c.bins] == [
        "c IN ('A')",
        "c IN ('B')",
        "c NOT IN ('A', 'B')",
        "c IS NULL",
    ]
    c_counts = [(40, 4), (30, 9), (27, 11), (3, 2)]
    assert [(b.count, b.bads) for b in c.bins] == c_counts
    assert [b.woe for b in c.bins] == pytest.approx([woe(n - b, b) for n, b in c_counts])
    assert c.iv == pytest.approx(iv(c_counts)) and c.iv == pytest.approx(0.620824, abs=1e-6)
    assert [b.bad_rate for b in c.bins] == pytest.approx([0.1, 0.3, 11 / 27, 2 / 3])
    assert [(b.levels, b.other) for b in c.bins] == [
        (("A",), False),
        (("B",), False),
        ((), True),
        ((), False),
    ]

    # No nulls and nothing rare in training: missing and other exist with WOE 0.
    k = hand["k"]
    assert [(b.label, b.count, b.woe) for b in k.bins[2:]] == [
        ("other", 0.0, 0.0),
        ("missing", 0.0, 0.0),
    ]
    assert k.iv == pytest.approx(iv([(50, 10), (50, 16)]))


def test_woe_transform_sends_rare_and_unseen_levels_to_other(spark, hand):
    rows = [
        (1, 2.5, "C", "u"),  # [2, 4); C was pooled -> other
        (2, None, "Z", "v"),  # missing; unseen level -> other
        (3, 100.0, None, "w"),  # [5, +inf); missing; k unseen without other rows -> 0
        (4, -5.0, "B", None),  # (-inf, 2); {B}; k null without a missing bin -> 0
    ]
    df = spark.createDataFrame(rows, "id int, x double, c string, k string")
    woe_of = scorecard.woe_transformer([hand["x"], hand["c"], hand["k"]])
    got = {r["id"]: (r["x__woe"], r["c__woe"], r["k__woe"]) for r in woe_of.transform(df).collect()}
    x, c, k = ([b.woe for b in hand[f].bins] for f in ("x", "c", "k"))
    assert got == {
        1: (x[1], c[2], k[0]),
        2: (x[4], c[2], k[1]),
        3: (x[3], c[3], 0.0),
        4: (x[0], c[1], 0.0),
    }


def test_reason_codes_name_the_three_largest_shortfalls(spark, hand):
    # Each coefficient scaled so the feature's best-to-worst bin spread is exactly
    # `spread` points: x 40, c 30, k and k2 10 (k2 is a copy of k: exact ties).
    def coef(f, spread):
        woes = [b.woe for b in hand[f].bins]
        return -LN2_OVER_PDO * spread / (max(woes) - min(woes))

    card = scorecard.Scorecard(
        bins=hand,
        coefficients={
            "x": coef("x", 40),
            "c": coef("c", 30),
            "k": coef("k", 10),
            "k2": coef("k2", 10),
        },
        intercept=-1.0,
    )
    rows = [
        # x and k, k2 worst: 40, 10, 10; c other 30 * (1.047 + 0.685) / (1.047 + 1.557)
        # = 19.96 -> x, c, k (k before k2 on the tie)
        (1, 1.0, "Z", "v", "v"),
        # x best (0); c missing, its worst bin: 30; k best; k2 worst 10
        (2, 6.0, None, "u", "v"),
        # x missing 40 * (1.015 + 0.284) / (1.015 + 0.666) = 30.9; c best; k null (WOE 0)
        # 10 * 0.304 / (0.304 + 0.308) = 4.97; k2 best
        (3, None, "A", None, "u"),
        (4, 9.0, "A", "u", "u"),  # the best bin everywhere: no reason
    ]
    df = spark.createDataFrame(rows, "id int, x double, c string, k string, k2 string")
    got = {r["id"]: r["reason_codes"] for r in card.model.transform(df).collect()}
    assert got == {1: ["x", "c", "k"], 2: ["c", "k2"], 3: ["x", "k"], 4: []}


def test_a_tiny_best_bin_is_no_standard_and_excluded_features_are_never_reasons(spark, hand):
    # x: below 5, 100 rows at 10% bad; from 5, 100 rows at 30%; 4 missing, all good.
    rows = [(float(i % 5), int(i < 10)) for i in range(100)]
    rows += [(5.0 + i % 5, int(i < 30)) for i in range(100)]
    rows += [(None, 0)] * 4
    x = scorecard.fit_bins(spark.createDataFrame(rows, "x double, label int"), ["x"], [])["x"]
    assert [(b.label, b.count, b.bads) for b in x.bins] == [
        ("(-inf, 5)", 100, 10),
        ("[5, +inf)", 100, 30),
        ("missing", 4, 0),
    ]
    card = scorecard.Scorecard(bins={"x": x}, coefficients={"x": -1.0}, intercept=-1.0)
    points = [card.points("x", b.woe) for b in x.bins]
    assert points[2] > points[0] > points[1]  # the 4 missing rows hold the best points
    # The best of x is its best bin of at least 5% of the rows (204 * 5% = 10.2): the low
    # bin. Applicants there fall short of nothing; above 5 they do; missing beats the best.
    assert card.max_points("x") == points[0]
    df = spark.createDataFrame([(1, 2.0), (2, 7.0), (3, None)], "id int, x double")
    got = {r["id"]: r["reason_codes"] for r in card.model.transform(df).collect()}
    assert got == {1: [], 2: ["x"], 3: []}
    # A feature declared not a reason: scored the same, never named; the next one moves up.
    coefficients = {"x": -0.02, "c": -0.015, "k": -0.005, "k2": -0.005}
    full = scorecard.Scorecard(bins=hand, coefficients=coefficients, intercept=-1.0)
    private = scorecard.Scorecard(
        bins=hand, coefficients=coefficients, intercept=-1.0, not_reasons=("x",)
    )
    df = spark.createDataFrame(
        [(1, 1.0, "Z", "v", "v")], "id int, x double, c string, k string, k2 string"
    )
    ((a,), (b,)) = (
        m.model.transform(df).select("pd", "reason_codes").collect() for m in (full, private)
    )
    assert a["pd"] == b["pd"]
    assert (a["reason_codes"], b["reason_codes"]) == (["x", "c", "k"], ["c", "k", "k2"])
    assert private.to_dict()["not_reasons"] == ["x"]
    everything = scorecard.Scorecard(
        bins=hand, coefficients={"x": -0.02}, intercept=-1.0, not_reasons=("x",)
    )
    (row,) = everything.model.transform(df).collect()
    assert row["reason_codes"] == []
    local = LocalScorer.from_champion(
        tracking.Champion(everything.model, "m", "1", "scorecard", "r")
    )
    assert local.predict({"x": 1.0}) == (row["pd"], [])


def test_fit_bins_counts_row_weights_and_rejects_labels_other_than_0_1(spark, monkeypatch):
    rows = [
        ("a", 2.0, 1),
        ("a", 1.0, 0),
        ("a", 3.0, 0),
        ("b", 0.5, 1),
        ("b", 1.5, 1),
        ("b", 2.0, 0),
    ]
    df = spark.createDataFrame(rows, "c string, w double, label int")
    # The level floor counts rows, not weight: at 4 rows, a (weight 6) and b (4) are pooled.
    monkeypatch.setattr(scorecard, "MIN_LEVEL_ROWS", 4)
    bins = scorecard.fit_bins(df, [], ["c"], weight="w", min_bin_share=0.0)["c"].bins
    assert [(b.label, b.count, b.bads) for b in bins] == [
        ("other", 10.0, 4.0),
        ("missing", 0.0, 0.0),
    ]
    monkeypatch.setattr(scorecard, "MIN_LEVEL_ROWS", 3)  # 3 rows each: both named
    bins = scorecard.fit_bins(df, [], ["c"], weight="w", min_bin_share=0.0)["c"].bins
    # weighted: a 6 rows 2 bads, b 4 rows 2 bads; goods 6, bads 4 in all
    assert [(b.label, b.count, b.bads) for b in bins] == [
        ("{a}", 6.0, 2.0),
        ("{b}", 4.0, 2.0),
        ("other", 0.0, 0.0),
        ("missing", 0.0, 0.0),
    ]
    # ln(((4 + 0.5) / 6) / ((2 + 0.5) / 4)) = ln(0.75 / 0.625) = ln 1.2
    assert bins[0].woe == pytest.approx(math.log(1.2))
    with pytest.raises(ValueError, match="1 rows have a label other than 0/1"):
        scorecard.fit_bins(df.union(spark.createDataFrame([("a", 1.0, 2)], df.schema)), [], ["c"])


# --- a fitted scorecard on generated applicants -----------------------------------------
CITY_RISK = {"A": -0.6, "B": 0.0, "C": 0.5, "D": 1.0} | {f"r{i}": 0.3 for i in range(8)}
CITY_WEIGHT = {"A": 30, "B": 25, "C": 20, "D": 15} | {f"r{i}": 1.25 for i in range(8)}
CHANNEL_RISK = {"app": -0.4, "web": 0.0, "agent": 0.7}


def applicants(n: int, seed: int, unseen: bool = False) -> list[tuple]:
    """(id, income, age, city, channel, label) with a known logistic risk; ``unseen``
    rows add cities and channels training never saw and more nulls."""
    rng = random.Random(seed)
    cities, weights = list(CITY_WEIGHT), list(CITY_WEIGHT.values())
    rows = []
    for i in range(n):
        income = None if rng.random() < 0.08 else round(rng.lognormvariate(8.5, 0.5), 2)
        age = None if unseen and rng.random() < 0.2 else rng.randint(20, 65)
        city = rng.choices(cities, weights)[0]
        channel = None if rng.random() < 0.05 else rng.choice(list(CHANNEL_RISK))
        if unseen:
            city = rng.choice([city, "new-1", "new'2", None])
            channel = rng.choice([channel, "kiosk"])
        logit = (
            -1.3
            - 0.8 * math.log((income or 5000.0) / 5000.0)
            - 0.03 * ((age or 40) - 40)
            + CITY_RISK.get(city or "", 0.0)
            + CHANNEL_RISK.get(channel or "", 0.0)
        )
        label = int(rng.random() < 1 / (1 + math.exp(-logit)))
        rows.append((i + (10_000 if unseen else 0), income, age, city, channel, label))
    return rows


SCHEMA = "id int, income double, age int, city string, channel string, label int"


@pytest.fixture(scope="module")
def fitted(spark):
    """The scorecard, the scored rows (training + unseen) and the SQL scores per id."""
    train = spark.createDataFrame(applicants(400, seed=1), SCHEMA)
    card = scorecard.fit_scorecard(train, ["income", "age"], ["city", "channel"])
    rows = spark.createDataFrame(
        applicants(400, seed=1) + applicants(100, seed=2, unseen=True), SCHEMA
    )
    rows.createOrReplaceTempView("scorecard_rows")
    woe_cols = [scorecard.woe_column(f) for f in card.features]
    out = card.model.transform(rows)
    scored = out.select(
        "id",
        "pd",
        "score",
        "reason_codes",
        *woe_cols,
        ScoreScale().column(F.col("pd")).alias("score_from_pd"),
    ).collect()
    sql = spark.sql(card.sql_query("scorecard_rows")).select("id", "score").collect()
    return card, rows, out.columns, scored, sql


def test_fitted_scorecard_keeps_informative_features_with_the_safer_sign(fitted):
    card, rows, columns, _, _ = fitted
    assert card.features == ["income", "age", "city", "channel"]
    assert all(c < 0 for c in card.coefficients.values())
    assert card.dropped == {}
    # Levels by shrunk bad rate; r0..r7 (~5 rows each, under 30) pooled into other; no null cities
    # nor unseen channels in training: those bins are empty with WOE 0.
    city = card.bins["city"].bins
    assert [b.label for b in city] == ["{A}", "{B}", "{C}", "other", "{D}", "missing"]
    assert [b.count for b in city] == [131, 89, 78, 44, 58, 0]
    channel = card.bins["channel"].bins
    assert [b.label for b in channel] == ["{app}", "{web}", "{agent}", "other", "missing"]
    assert (channel[3].count, channel[3].woe, channel[4].count) == (0, 0.0, 18)
    woe_cols = [f"{f}__woe" for f in card.features]
    assert columns == [*rows.columns, *woe_cols, "pd", "score", "reason_codes"]


def test_points_add_up_to_the_continuous_score_and_the_pd(fitted):
    card, _, _, scored, _ = fitted
    table = card.points_table()
    assert list(table.columns) == [
        "feature",
        "bin",
        "count",
        "bad_rate",
        "woe",
        "coefficient",
        "points",
        "points_exact",
    ]
    assert (table["points"] == table["points_exact"].round(1)).all()
    points = {(r.feature, r.woe): r.points_exact for r in table.itertuples()}
    factor = 50 / math.log(2)
    for row in scored:
        woes = {f: row[f"{f}__woe"] for f in card.features}
        total = sum(points[(f, w)] for f, w in woes.items())
        logit = card.intercept + sum(card.coefficients[f] * w for f, w in woes.items())
        continuous = 600 + factor * (-logit - math.log(19.0))
        assert total == pytest.approx(continuous, abs=1e-9)
        assert row["pd"] == pytest.approx(1 / (1 + math.exp(-logit)), rel=1e-12)
        assert row["score"] == min(max(round(total), 300), 900)
    assert [r["score_from_pd"] for r in scored] == [r["score"] for r in scored]


def test_sql_scorecard_matches_the_spark_scorecard_on_every_row(fitted):
    card, _, _, scored, sql = fitted
    spark_scores = sorted((r["id"], r["score"]) for r in scored)
    sql_scores = sorted((r["id"], r["score"]) for r in sql)
    assert len(sql_scores) == 500
    assert all(score is not None for _, score in sql_scores)
    assert sql_scores == spark_scores
    assert card.sql_expression().startswith("CAST(LEAST(GREATEST(ROUND(CASE WHEN ")


def test_pipeline_saves_and_loads_with_the_same_scores(fitted, tmp_path):
    card, rows, _, scored, _ = fitted
    card.model.write().save(str(tmp_path / "scorecard"))
    loaded = PipelineModel.load(str(tmp_path / "scorecard"))
    again = loaded.transform(rows).select("id", "pd", "score", "reason_codes").collect()
    assert [tuple(r) for r in again] == [
        (r["id"], r["pd"], r["score"], r["reason_codes"]) for r in scored
    ]


def test_a_changed_score_scale_moves_points_sql_batch_and_local_scores_together(
    fitted, spark, settings
):
    """One scale from the settings: the scorecard's points and exported SQL, batch scoring
    (``scoring.classify``) and the local scorer all put the same PD on the same score."""
    _, rows, _, _, _ = fitted
    moved = settings.model_copy(
        update={
            "score_base": 500,
            "score_base_odds": 10.0,
            "score_pdo": 20.0,
            "score_min": 400,
            "score_max": 550,
        }
    )
    scale = ScoreScale.from_settings(moved)
    assert scale == ScoreScale(base=500, base_odds=10.0, pdo=20.0, low=400, high=550)
    train = spark.createDataFrame(applicants(400, seed=1), SCHEMA)
    card = scorecard.fit_scorecard(train, ["income", "age"], ["city", "channel"], scale=scale)
    assert card.to_dict()["base"] == 500 and card.to_dict()["pdo"] == 20.0
    points = {r["id"]: (r["pd"], r["score"]) for r in card.model.transform(rows).collect()}
    sql = {r["id"]: r["score"] for r in spark.sql(card.sql_query("scorecard_rows")).collect()}
    frame = spark.createDataFrame(
        [(i, pd, 1000.0) for i, (pd, _) in points.items()],
        "id int, pd double, requested_amount double",
    )
    batch = {r["id"]: r["score"] for r in scoring.classify(frame, moved).collect()}
    local = {i: classify_row(pd, 1000.0, moved)["score"] for i, (pd, _) in points.items()}
    by_points = {i: score for i, (_, score) in points.items()}
    assert sql == by_points == batch == local
    # the default 300-900 scale would have put these rows elsewhere
    default = {i: _score(pd, ScoreScale()) for i, (pd, _) in points.items()}
    assert default != by_points
    # both new bounds clip some rows (unclipped, these rows span 335-572), in every path
    assert (min(by_points.values()), max(by_points.values())) == (400, 550)
    assert card.sql_expression().endswith(", 400), 550) AS INTEGER)")


# --- wrong sign and prior correction on a 2x2 table -------------------------------------
# g (A risky, B safe) x z: within each g, z=1 is riskier, but z=1 is mostly in B, so its
# marginal WOE says "safer" (Simpson's paradox): its coefficient comes out > 0.
G_Z_COUNTS = [  # (g, z, rows, bads)
    ("A", "1", 20, 12),  # 60%
    ("A", "0", 80, 36),  # 45%
    ("B", "1", 80, 10),  # 12.5%
    ("B", "0", 20, 1),  # 5%
]


@pytest.mark.parametrize("bad_weight", [1.0, 4.0])
def test_wrong_sign_feature_dropped_and_pd_calibrated(spark, bad_weight):
    rows = []
    for g, z, n, b in G_Z_COUNTS:
        rows += [(g, z, 1)] * b + [(g, z, 0)] * (n - b)
    # n: no information (p 29/100, q 30/100 bads): IV 0.0002 < min_iv
    rows = [(g, z, "p" if i % 2 else "q", y) for i, (g, z, y) in enumerate(rows)]
    df = spark.createDataFrame(rows, "g string, z string, n string, label int")
    card = scorecard.fit_scorecard(df, [], ["g", "z", "n"], bad_weight=bad_weight)
    assert card.dropped == {"n": "low_iv", "z": "wrong_sign"}
    assert card.features == ["g"]
    logged = json.loads(json.dumps(card.to_dict()))
    assert [(f["feature"], f["dropped"]) for f in logged["features"]] == [
        ("g", None),
        ("z", "wrong_sign"),
        ("n", "low_iv"),
    ]
    assert logged["sql"] == card.sql_expression()
    # One two-bin feature is a saturated model: PD = each bin's observed bad rate,
    # A 48/100 and B 11/100 (to the solver's tolerance) once the intercept is
    # corrected by -ln(bad_weight); the mean PD is the bad rate 59/200.
    out = card.model.transform(df).groupBy("g").agg(F.avg("pd").alias("pd"), F.count("*"))
    got = {r["g"]: r["pd"] for r in out.collect()}
    assert got == pytest.approx({"A": 0.48, "B": 0.11}, abs=1e-6)


# --- high-cardinality categoricals ------------------------------------------------------
# 20 states in 10 pairs, the two of a pair alike; each state holds 40-60 of 1,500 rows
# (2.7-4%), all under the old rule's 5% (which pooled them all into `other`); 500 nulls.
STATE_PAIRS = [  # (the pair's states, rows and bads of each)
    (("AK", "AL"), 50, 1),  # 2%
    (("AR", "AZ"), 40, 2),  # 5%
    (("CA", "CO"), 60, 5),  # 8.3%
    (("CT", "DE"), 50, 6),  # 12%
    (("FL", "GA"), 40, 7),  # 17.5%
    (("HI", "IA"), 60, 13),  # 21.7%
    (("ID", "IL"), 50, 14),  # 28%
    (("IN", "KS"), 40, 14),  # 35%
    (("KY", "LA"), 60, 25),  # 41.7%
    (("MA", "MD"), 50, 25),  # 50%
]
STATE_COUNTS = [(s, n, b) for states, n, b in STATE_PAIRS for s in states] + [(None, 500, 100)]


def test_small_levels_are_grouped_on_their_bad_rate_not_pooled(spark, monkeypatch):
    df = spark.createDataFrame(rows_from_counts(STATE_COUNTS), "state string, label int")
    state = scorecard.fit_bins(df, [], ["state"], max_bins=10)["state"]
    # Every state has 30+ rows: all reach the driver. Shrunk toward 224/1000 with 30 rows
    # the rates keep their order (AK (1 + 6.72) / 80 = 0.097 ... MA 0.3965), a pair's
    # states tie (by name: AK before AL). Under 75 rows (5%), the smallest state merges
    # with its neighbour of closer bad rate: its twin (gap 0). 10 pairs of 80-120 rows.
    pairs = [(2 * n, 2 * b) for _, n, b in STATE_PAIRS]
    assert [b.label for b in state.bins] == [
        *("{" + ", ".join(states) + "}" for states, _, _ in STATE_PAIRS),
        "other",
        "missing",
    ]
    assert [b.levels for b in state.bins[:10]] == [states for states, _, _ in STATE_PAIRS]
    assert state.bins[0].condition == "state IN ('AK', 'AL')"
    names = ", ".join(f"'{s}'" for states, _, _ in STATE_PAIRS for s in states)
    assert (state.bins[10].condition, state.bins[10].count, state.bins[10].woe) == (
        f"state NOT IN ({names})",
        0.0,
        0.0,
    )
    assert [(b.count, b.bads) for b in state.bins] == [*pairs, (0, 0), (500, 100)]
    assert all(b.count >= 0.05 * 1500 for b in state.bins[:10])
    rates = [b.bad_rate for b in state.bins[:10]]
    assert rates == sorted(set(rates)) and rates[0] == 0.02 and rates[-1] == 0.5
    goods, bads = 1176, 324
    assert state.iv == pytest.approx(iv([*pairs, (500, 100)], goods, bads))
    assert round(state.iv, 4) == 0.6319
    # The old rule (levels under 5% of rows pooled in Spark) kept no state: one `other`
    # bin of 1000 rows (22.4% bad) and the missing bin (20%), IV 0.0044.
    old_iv = iv([(1000, 224), (500, 100)], goods, bads)
    assert round(old_iv, 4) == 0.0044
    monkeypatch.setattr(scorecard, "MIN_LEVEL_SHARE", 0.05)
    old = scorecard.fit_bins(df, [], ["state"], max_bins=10)["state"]
    assert [(b.label, b.count, b.bads) for b in old.bins] == [
        ("other", 1000, 224),
        ("missing", 500, 100),
    ]
    assert old.iv == pytest.approx(old_iv) and state.iv > 100 * old.iv


# Levels seen in fewer than 30 rows, and one with __THIS__ (which SQLTransformer rewrites),
# are pooled; names with a quote, a backslash, non-ASCII letters and an emoji are named.
EMPLOYER_COUNTS = [
    ("it's", 300, 6),  # 2%
    ("back\\slash", 200, 10),  # 5%
    ("q", 30, 0),  # no bad in 30 rows
    ("Zürich 😀", 150, 60),  # 40%
    ("a__THIS__b", 60, 15),  # 30+ rows, but SQLTransformer would rewrite it: pooled
    *[(f"r{i}", 20, 6 if i < 5 else 5) for i in range(10)],  # under 30 rows: pooled
    (None, 60, 30),
]
EMPLOYER_SQL = "employer NOT IN ('Zürich 😀', 'back\\\\slash', 'it''s', 'q')"


def test_rare_levels_go_to_other_and_odd_names_score_alike_everywhere(spark, monkeypatch, tmp_path):
    train = spark.createDataFrame(rows_from_counts(EMPLOYER_COUNTS), "employer string, label int")
    card = scorecard.fit_scorecard(train, [], ["employer"])
    # other: 60 + 10 * 20 = 260 rows, 15 + 55 = 70 bads (26.9%). Sorted by the bad rates
    # shrunk toward 146/940 = 0.155 with 30 rows: it's (6 + 4.66) / 330 = 0.032,
    # back\slash 0.064, q 0.078 (0/30 raw), other 0.257, Zürich 0.359. q (30 < 50 rows)
    # joins back\slash, its neighbour of closer bad rate (5% against other's 26.9%).
    bins = card.bins["employer"].bins
    assert [(b.label, b.condition, b.count, b.bads) for b in bins] == [
        ("{it's}", "employer IN ('it''s')", 300, 6),
        ("{back\\slash, q}", "employer IN ('back\\\\slash', 'q')", 230, 10),
        ("other", EMPLOYER_SQL, 260, 70),
        ("{Zürich 😀}", "employer IN ('Zürich 😀')", 150, 60),
        ("missing", "employer IS NULL", 60, 30),
    ]
    assert card.features == ["employer"] and card.coefficients["employer"] < 0

    rows = [
        # (id, employer, the bin it falls in)
        (0, "it's", 0),
        (1, "back\\slash", 1),
        (2, "q", 1),
        (3, "Zürich 😀", 3),
        (4, "a__THIS__b", 2),  # pooled in training
        (5, "r3", 2),  # pooled in training
        (6, "unseen", 2),
        (7, "it''s", 2),  # unseen look-alikes of the named levels
        (8, "back\\\\slash", 2),
        (9, "back\\\\", 2),
        (10, "Zürich", 2),
        (11, "IT'S", 2),
        (12, "", 2),
        (13, None, 4),
    ]
    df = spark.createDataFrame([r[:2] for r in rows], "id int, employer string")
    df.createOrReplaceTempView("employer_rows")
    out = card.model.transform(df).collect()
    assert {r["id"]: r["employer__woe"] for r in out} == {i: bins[b].woe for i, _, b in rows}
    model = {r["id"]: (r["pd"], r["score"], r["reason_codes"]) for r in out}
    sql = {r["id"]: r["score"] for r in spark.sql(card.sql_query("employer_rows")).collect()}
    assert sql == {i: score for i, (_, score, _) in model.items()}
    assert len(set(sql.values())) == 5  # one score per bin
    champion = tracking.Champion(card.model, "m", "1", "scorecard", "r")
    local = LocalScorer.from_champion(champion)
    assert {i: local.predict({"employer": e}) for i, e, _ in rows} == {
        i: (pd, codes) for i, (pd, _, codes) in model.items()
    }
    assert {i: _score(pd, ScoreScale()) for i, (pd, _, _) in model.items()} == sql
    card.model.write().save(str(tmp_path / "card"))
    loaded = PipelineModel.load(str(tmp_path / "card")).transform(df).collect()
    assert {r["id"]: (r["pd"], r["score"], r["reason_codes"]) for r in loaded} == model

    # Unshrunk, q's 0 of 30 would sort it first, next to it's: bins {it's, q}, {back\slash}.
    monkeypatch.setattr(scorecard, "PRIOR_ROWS", 0.0)
    raw = scorecard.fit_bins(train, [], ["employer"])["employer"].bins
    assert [b.label for b in raw] == [
        "{it's, q}",
        "{back\\slash}",
        "other",
        "{Zürich 😀}",
        "missing",
    ]


def test_only_the_most_frequent_levels_reach_the_driver(spark, monkeypatch):
    monkeypatch.setattr(scorecard, "MAX_LEVELS", 5)
    counts = [  # (level, rows, bads); 395 rows
        ("m", 70, 7),
        ("k", 60, 12),
        ("z", 50, 20),
        ("b", 50, 5),
        ("y", 40, 2),
        ("f", 40, 20),
        ("a", 40, 4),
        ("n", 35, 7),
        ("tiny", 10, 5),  # under 30 rows
    ]
    rows = [(level, int(i < b)) for level, n, b in counts for i in range(n)]
    df = spark.createDataFrame(rows, "c string, label int")
    # The 5 most frequent of the levels with 30+ rows: m, k, then b and z (50 rows), then
    # of the three with 40 rows the first by name, a; f, y, n and tiny are pooled.
    expected = {
        (0, "m"): (70, 7),
        (0, "k"): (60, 12),
        (0, "b"): (50, 5),
        (0, "z"): (50, 20),
        (0, "a"): (40, 4),
        (2, None): (125, 34),
    }
    for frame in (df, spark.createDataFrame(rows[::-1], df.schema).repartition(3)):
        got = scorecard._bin_counts(frame, {}, ["c"], "label", None).collect()
        assert {(r["slot"], r["key"]): (r["n"], r["bads"]) for r in got} == expected
    # Shrunk toward 82/395: m 0.132, b 0.140, a 0.146 (all 10% bad: merged), k 0.203,
    # other 0.260 (27.2%), z 0.328 (40%).
    bins = scorecard.fit_bins(df, [], ["c"])["c"].bins
    assert [(b.label, b.count, b.bads) for b in bins] == [
        ("{a, b, m}", 160, 16),
        ("{k}", 60, 12),
        ("other", 125, 34),
        ("{z}", 50, 20),
        ("missing", 0, 0),
    ]
    assert bins[2].condition == "c NOT IN ('a', 'b', 'k', 'm', 'z')"


def test_hundreds_of_odd_levels_score_alike_in_spark_sql_and_locally(spark):
    # 300 levels with a quote, a backslash and an accent in each, 30 rows and 0-9 bads.
    levels = [f"{i:03d} it's a\\b é" for i in range(300)]
    rows = [(level, int(j < i % 10)) for i, level in enumerate(levels) for j in range(30)]
    c = scorecard.fit_bins(spark.createDataFrame(rows, "c string, label int"), [], ["c"])["c"]
    named = sorted(level for b in c.bins for level in b.levels)
    assert named == levels  # every level named once; the other bin is empty
    assert [(b.label, b.count) for b in c.bins[-2:]] == [("other", 0), ("missing", 0)]
    assert c.bins[-2].condition.count("it''s a\\\\b é'") == 300
    card = scorecard.Scorecard(bins={"c": c}, coefficients={"c": -1.0}, intercept=-1.0)
    woe_of = {level: b.woe for b in c.bins for level in b.levels}
    cases = [*levels, "it's", "000 it's a\\\\b é", "", None]
    df = spark.createDataFrame(list(enumerate(cases)), "id int, c string")
    df.createOrReplaceTempView("many_levels")
    out = card.model.transform(df).collect()
    assert {r["id"]: r["c__woe"] for r in out} == {
        i: woe_of.get(level, 0.0) for i, level in enumerate(cases)
    }
    model = {r["id"]: (r["pd"], r["score"], r["reason_codes"]) for r in out}
    sql = {r["id"]: r["score"] for r in spark.sql(card.sql_query("many_levels")).collect()}
    assert sql == {i: score for i, (_, score, _) in model.items()}
    local = LocalScorer.from_champion(tracking.Champion(card.model, "m", "1", "scorecard", "r"))
    assert {i: local.predict({"c": level}) for i, level in enumerate(cases)} == {
        i: (pd, codes) for i, (pd, _, codes) in model.items()
    }


# 40 employer types, each with its own frequency and log-odds (one fixed seed).
_EMPLOYER_RNG = random.Random(40)
EMPLOYERS = [
    (f"e{i:02d}", _EMPLOYER_RNG.lognormvariate(0.0, 0.5), _EMPLOYER_RNG.gauss(0.0, 0.8))
    for i in range(40)
]


def loans(n: int, seed: int) -> list[tuple]:
    """(x, employer, label): the log-odds of bad are -1.5 + 0.6 x + the employer's."""
    rng = random.Random(seed)
    names, weights = [e for e, _, _ in EMPLOYERS], [w for _, w, _ in EMPLOYERS]
    effect = {e: b for e, _, b in EMPLOYERS}
    rows = []
    for _ in range(n):
        x, employer = rng.gauss(0.0, 1.0), rng.choices(names, weights)[0]
        logit = -1.5 + 0.6 * x + effect[employer]
        rows.append((x, employer, int(rng.random() < 1 / (1 + math.exp(-logit)))))
    return rows


def test_a_high_cardinality_feature_lifts_the_test_auc(spark, monkeypatch):
    schema = "x double, employer string, label int"
    train = spark.createDataFrame(loans(3000, seed=1), schema)
    test = spark.createDataFrame(loans(2000, seed=2), schema)

    def auc(card) -> float:
        scored = card.model.transform(test).select("pd", "label").collect()
        return metrics.auc([r["pd"] for r in scored], [r["label"] for r in scored])

    new = scorecard.fit_scorecard(train, ["x"], ["employer"])
    employer = new.bins["employer"].bins
    # Levels with 21-199 of the 3,000 rows: e12 and e23 (under 30) are pooled into other,
    # the rest grouped into 8 bins of 235-560 rows with increasing bad rates.
    assert len(employer) == 9 and employer[5].label.endswith("} + other")
    assert [b.count for b in employer] == [235, 329, 321, 412, 412, 560, 452, 279, 0]
    assert all(b.count >= 150 for b in employer[:-1])
    rates = [b.bad_rate for b in employer[:-1]]
    assert rates == sorted(set(rates))
    monkeypatch.setattr(scorecard, "MIN_LEVEL_SHARE", 0.05)  # the old rule: 5% of rows
    old = scorecard.fit_scorecard(train, ["x"], ["employer"])
    assert [b.label for b in old.bins["employer"].bins] == ["{e29}", "other", "{e16}", "missing"]
    assert (round(new.iv["employer"], 3), round(old.iv["employer"], 3)) == (0.551, 0.038)
    # x alone reaches 0.644 on the test rows, the true log-odds 0.722.
    new_auc, old_auc = auc(new), auc(old)
    assert (round(new_auc, 3), round(old_auc, 3)) == (0.703, 0.650)
    assert new_auc > old_auc + 0.05
