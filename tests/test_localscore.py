"""Local single-row scoring equals the Spark path: pd, reason codes and classification."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.feature import Bucketizer, SQLTransformer
from pyspark.ml.linalg import DenseVector

from riskcontrol.apply import scoring
from riskcontrol.apply.localscore import (
    LocalScorer,
    NotSupported,
    affine,
    classify_row,
    spark_blas_lanes,
    strict_exp,
    strict_log,
    strict_log1p,
    vector_ddot,
)
from riskcontrol.modeling import explain, models, tracking
from riskcontrol.modeling.models import FeatureSpec, Split

SPEC = FeatureSpec(("x1", "x2", "x3"), ("c",), log=("x3",), month="month")
SCHEMA = "id string, x1 double, x2 double, x3 double, c string, label double"
FAST_PARAMS = {
    "decision_tree": {"maxDepth": 4, "minInstancesPerNode": 30, "maxBins": 32},
    "gbt": {"maxIter": 10, "maxDepth": 3, "minInstancesPerNode": 20, "stepSize": 0.3},
    "scorecard": {"max_bins": 6, "min_iv": 0.02},
    "neural_network": {"hidden": 4, "step": 6, "rounds": 1, "patience": 1},
    "logistic": {"regParam": 0.001, "elasticNetParam": 0.0, "maxIter": 50},
    # Enough L1 to zero some coefficients (Spark still keeps them in a dense vector).
    "logistic_lasso": {"regParam": 0.05, "elasticNetParam": 1.0, "maxIter": 50},
}


def small_book(n: int = 600, seed: int = 11) -> pd.DataFrame:
    """Default odds rise with x1 and level 'c', fall with x2; x2 sometimes missing."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    c = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    logit = -2.0 + 1.1 * x1 - 0.7 * x2 + 0.9 * (c == "c")
    frame = pd.DataFrame(
        {
            "id": [f"T{i:04d}" for i in range(n)],
            "x1": x1,
            "x2": x2,
            "x3": rng.lognormal(3, 1, size=n),
            "c": c,
            "label": (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float),
        }
    )
    frame.loc[::37, "x2"] = np.nan
    return frame


@pytest.fixture(scope="module")
def book(spark):
    df = spark.createDataFrame(small_book(), SCHEMA).cache()
    yield Split(df, df, df, "all")
    df.unpersist()


def edge_rows(extra: list[dict]) -> list[dict]:
    """Typical rows, then nulls, NaN, unseen and empty levels, negatives, zeros, extremes
    and the model-specific boundary values in ``extra``."""
    rng = np.random.default_rng(5)
    rows = [
        {"x1": float(a), "x2": float(b), "x3": float(d), "c": "abc"[i % 3]}
        for i, (a, b, d) in enumerate(
            zip(rng.normal(size=40), rng.normal(size=40), rng.lognormal(3, 1, 40), strict=True)
        )
    ]
    base = {"x1": 0.3, "x2": -0.2, "x3": 15.0, "c": "b"}
    for value in (None, math.nan, 0.0, -1e12, 1e12):
        rows += [{**base, f: value} for f in SPEC.numeric]
    rows += [{**base, "c": level} for level in ("zzz", None, "", "A")]
    rows += [{**base, "x3": -4.0}, {"x1": None, "x2": None, "x3": None, "c": None}]
    rows += [{**base, **e} for e in extra]
    return [{"id": f"S{i:04d}", **r} for i, r in enumerate(rows)]


def boundaries(model: PipelineModel, kind: str, reference: dict | None) -> list[dict]:
    """Rows sitting exactly on the model's cut points (and one ulp above them)."""
    cuts: list[tuple[str, float]] = []
    if kind in ("decision_tree", "gbt"):
        trees, _ = explain.spark_trees(models.tree_stage(model))

        def visit(node: explain.Node) -> None:
            if node.is_leaf:
                return
            if node.threshold is not None and node.feature < len(SPEC.numeric):
                cuts.append((SPEC.numeric[node.feature], node.threshold))
            visit(node.left)
            visit(node.right)

        for tree in trees:
            visit(tree)
    elif kind == "scorecard":
        cuts = [
            (f, b.lower)
            for f in SPEC.numeric
            for b in model.scorecard.bins[f].bins
            if b.lower is not None
        ]
    else:  # the network and logistic: their imputation medians and the occlusion reference itself
        surrogates = model.stages[1].surrogateDF.first().asDict()
        cuts = [(f, surrogates[f]) for f in ("x1", "x2")]
        cuts += [(f, reference[f]) for f in SPEC.numeric]
        return [{f: v} for f, v in cuts] + [dict(reference)]
    assert cuts, "the model has no cut points to test on"
    return [{f: v} for f, v in cuts] + [{f: math.nextafter(v, math.inf)} for f, v in cuts]


@pytest.mark.parametrize("variant", [*models.MODEL_KINDS, "logistic_lasso"])
def test_local_pd_and_reason_codes_equal_the_spark_path_on_every_row(spark, book, variant):
    kind = variant.split("_lasso")[0]
    weight = models.balanced_weight(book.train, "balanced")
    params = dict(FAST_PARAMS[variant])
    fitted, _ = models.fit(kind, book, SPEC, params, seed=3, bad_weight=weight)
    if variant == "logistic_lasso":
        coefficients = fitted.stages[-2].coefficients
        assert isinstance(coefficients, DenseVector) and 0.0 in coefficients.toArray()
    occlusion = kind in models.OCCLUSION_KINDS
    reference = models.reference_values(book.train, SPEC) if occlusion else None
    # A champion loaded from MLflow is a bare PipelineModel (no .scorecard attribute).
    champion = tracking.Champion(
        PipelineModel(stages=list(fitted.stages)), "application_pd", "7", kind, "r", reference, SPEC
    )
    rows = edge_rows(boundaries(fitted, kind, reference))
    frame = spark.createDataFrame(
        [(r["id"], r["x1"], r["x2"], r["x3"], r["c"], None) for r in rows], SCHEMA
    )
    predicted = champion.model.transform(frame)
    spark_rows = models.with_reason_codes(champion, frame, predicted, id_col="id").collect()
    expected = {r.id: (r.pd, list(r.reason_codes)) for r in spark_rows}

    scorer = LocalScorer.from_champion(champion)
    got = {r["id"]: scorer.predict(r) for r in rows}

    card = getattr(fitted, "scorecard", None)  # reads only the features it kept
    assert scorer.inputs == sorted(card.features if card else SPEC.columns)
    assert set(got) == set(expected)
    pd_gaps = {k: abs(got[k][0] - expected[k][0]) for k in got}
    assert max(pd_gaps.values()) < 1e-9, max(pd_gaps.items(), key=lambda kv: kv[1])
    if kind in ("decision_tree", "scorecard"):  # no java.lang.Math.exp involved: bit for bit
        assert [k for k in got if got[k][0] != expected[k][0]] == []
    assert {k: got[k][1] for k in got} == {k: expected[k][1] for k in got}
    assert len({tuple(codes) for _, codes in got.values()}) >= 4  # the codes vary by row


@pytest.mark.parametrize("kind", models.MODEL_KINDS)
def test_a_feature_not_allowed_as_a_reason_is_left_out_before_the_top_three(spark, book, kind):
    # x1 drives the risk most. Excluded, it never appears, on the Spark path or locally,
    # and the next feature takes its place: the codes are the same model's top four with
    # x1 struck out, cut to three (striking it from the top three would leave two).
    private = replace(SPEC, not_reasons=("x1",))
    weight = models.balanced_weight(book.train, "balanced")
    fitted, _ = models.fit(kind, book, private, dict(FAST_PARAMS[kind]), 3, weight)
    reference = (
        models.reference_values(book.train, SPEC) if kind in models.OCCLUSION_KINDS else None
    )
    stages = list(fitted.stages)
    champion = tracking.Champion(PipelineModel(stages), "m", "1", kind, "r", reference, private)
    rows = edge_rows([])
    frame = spark.createDataFrame(
        [(r["id"], r["x1"], r["x2"], r["x3"], r["c"], None) for r in rows], SCHEMA
    )
    predicted = champion.model.transform(frame)
    got = {
        r.id: list(r.reason_codes)
        for r in models.with_reason_codes(champion, frame, predicted, id_col="id").collect()
    }
    if kind == "scorecard":  # the same points, four reasons, every feature allowed
        card = replace(fitted.scorecard, not_reasons=(), reasons=4)
        assert fitted.scorecard.not_reasons == ("x1",)
        four = {r.id: list(r.reason_codes) for r in card.model.transform(frame).collect()}
    else:
        open_champion = replace(champion, spec=SPEC)
        four = {
            r.id: list(r.reason_codes)
            for r in models.with_reason_codes(
                open_champion, frame, predicted, id_col="id", top=4
            ).collect()
        }
    assert got == {k: [c for c in codes if c != "x1"][:3] for k, codes in four.items()}
    assert sum("x1" in codes[:3] for codes in four.values()) >= 10  # it had places to take
    scorer = LocalScorer.from_champion(champion)
    assert {r["id"]: scorer.predict(r)[1] for r in rows} == got


def test_a_stage_without_a_local_evaluator_is_refused(spark):
    def champion(*stages) -> tracking.Champion:
        return tracking.Champion(PipelineModel(stages=list(stages)), "m", "1", "x", "r", None, SPEC)

    bucket = Bucketizer(splits=[-math.inf, 0.0, math.inf], inputCol="x1", outputCol="pd")
    with pytest.raises(NotSupported, match="Bucketizer"):
        LocalScorer.from_champion(champion(bucket))
    with pytest.raises(NotSupported, match="sqrt"):
        LocalScorer.from_champion(
            champion(SQLTransformer(statement="SELECT *, sqrt(x1) AS pd FROM __THIS__"))
        )
    with pytest.raises(NotSupported, match="DECIMAL"):
        LocalScorer.from_champion(
            champion(SQLTransformer(statement="SELECT *, 0.5 AS pd FROM __THIS__"))
        )


def _tie(target: float, settings) -> float:
    """A PD whose raw 300-900 score is exactly ``target`` (a rounding tie)."""
    factor = settings.score_pdo / math.log(2)

    def raw(p: float) -> float:
        return settings.score_base + factor * (
            strict_log((1 - p) / p) - math.log(settings.score_base_odds)
        )

    lo, hi = 1e-6, 1 - 1e-6
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if raw(mid) > target else (lo, mid)
    p = lo
    while raw(p) != target:
        p = math.nextafter(p, 1.0)
    return p


def test_classify_row_equals_spark_classify_on_ties_clips_and_thresholds(spark, settings):
    policy = scoring.CutoffPolicy("v7", approve_below_pd=0.08, reject_from_pd=0.2)
    ties = [_tie(t, settings) for t in (600.5, 650.5, 599.5, 700.5)]
    below = math.nextafter
    edges = [0.02, 0.05, 0.08, 0.10, 0.20]  # bands, approve, quadrant, reject
    pds = [
        *ties,
        *edges,
        *[below(e, 0.0) for e in edges],
        0.0,
        1e-9,
        1e-6,
        below(1e-6, 1.0),
        1 - 1e-6,
        0.9999999,
        1.0,
        math.nan,
        None,  # no PD: no score, as in Spark
        *np.random.default_rng(2).uniform(0, 0.4, 40).tolist(),
    ]
    # 20000 x 0.45 is the impact threshold 9000 (within rounding); also just below, null.
    amounts = [20000.0, below(20000.0, 0.0), 5000.0, 90000.0, None]
    cases = [(f"P{i:03d}", p, amounts[i % len(amounts)]) for i, p in enumerate(pds)]
    frame = spark.createDataFrame(cases, "id string, pd double, requested_amount double")
    columns = ["score", "risk_band", "impact", "quadrant", "strategy", "decision"]
    expected = {
        r.id: {**{c: r[c] for c in columns}, "policy_version": r.policy_version}
        for r in scoring.classify(frame, settings, policy).collect()
    }
    got = {i: classify_row(p, a, settings, policy) for i, p, a in cases}

    assert got == expected
    # HALF_UP, not Python's round-half-even: a raw 600.5 is 601, 650.5 is 651.
    assert [got[f"P{i:03d}"]["score"] for i in range(4)] == [601, 651, 600, 701]
    assert round(600.5) == 600
    assert {v["decision"] for v in got.values()} == {"approve", "review", "reject"}
    assert {v["quadrant"] for v in got.values()} == {"A", "B", "C", "D"}


def test_strict_math_is_javas_strictmath_bit_for_bit(spark):
    rng = np.random.default_rng(9)
    xs = np.concatenate(
        [
            np.exp(rng.uniform(-700, 700, 1500)),
            rng.uniform(0.5, 2.0, 1500),
            rng.uniform(-0.99, 0.5, 1000),
            [1e-310, 5e-324, 1.0, 0.0],
        ]
    )
    es = np.concatenate([rng.uniform(-745, 709, 2000), rng.uniform(-1, 1, 2000), [0.0, 1e-30]])
    values = [(float(x), float(e)) for x, e in zip(np.resize(xs, 4002), es, strict=True)]
    frame = spark.createDataFrame(values, "x double, e double")
    rows = frame.selectExpr("x", "e", "ln(x) AS ln", "log1p(x) AS l1p", "exp(e) AS ex").collect()

    def same(a: float | None, b: float) -> bool:
        return a == b or (a is None and math.isnan(b)) or (a is None and math.isinf(b))

    assert [r.x for r in rows if not same(r.ln, strict_log(r.x))] == []
    assert [r.x for r in rows if r.x > -1 and not same(r.l1p, strict_log1p(r.x))] == []
    assert [r.e for r in rows if r.ex != strict_exp(r.e)] == []
    # Python's own math module is not StrictMath: it differs on some of these.
    assert any(r.ex != math.exp(r.e) for r in rows if r.e < 709)


def test_dot_products_follow_spark_mls_java_blas_bit_for_bit(spark):
    gateway = spark.sparkContext._gateway
    blas = getattr(getattr(gateway.jvm.org.apache.spark.ml.linalg, "BLAS$"), "MODULE$").nativeBLAS()

    def java(values: list[float]):
        array = gateway.new_array(gateway.jvm.double, len(values))
        for i, v in enumerate(values):
            array[i] = v
        return array

    rng = np.random.default_rng(4)
    lanes = spark_blas_lanes()
    for n in (3, 8, 13, 40):  # under, at and over the vector width (8 lanes on AVX-512)
        xs, ys = rng.normal(size=n).tolist(), rng.normal(size=n).tolist()
        assert vector_ddot(xs, ys, lanes) == blas.ddot(n, java(xs), 1, java(ys), 1)
        # The perceptron's layer: C (the bias) += W x, W column-major (2 x n).
        w, b = rng.normal(size=(2, n)), rng.normal(size=2).tolist()
        out = java(b)
        matrix = java(w.flatten("F").tolist())
        blas.dgemm("N", "N", 2, 1, n, 1.0, matrix, 0, 2, java(xs), 0, n, 1.0, out, 0, 2)
        assert affine(w.tolist(), b, xs) == [out[0], out[1]]
