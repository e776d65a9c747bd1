"""Explainability: slot names, tree walks, TreeSHAP reason codes in Spark, occlusion,
importance. (TreeSHAP's values themselves are checked in test_treeshap.py.)"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.ml.regression import DecisionTreeRegressor
from pyspark.sql import functions as F

from riskcontrol.modeling import explain, metrics
from riskcontrol.modeling.explain import Node

SLOTS = ["income", "inquiries", "channel", "channel"]  # slot 2: online, slot 3: store


def hand_tree() -> Node:
    """Four splits; ids in pre-order, leaves numbered 0-5 left to right; (covers).

    0 income <= 5000 (0.125; 20)
    |- 1 inquiries <= 2 (0.25; 12)
    |  |- 2 leaf 0 (0.1875; 5)
    |  `- 3 channel=online in {1} (0.5; 7)
    |     |- 4 leaf 1 (0.75; 3)
    |     `- 5 income <= 2000 (0.375; 4)
    |        |- 6 leaf 2 (0.625; 1)
    |        `- 7 leaf 3 (0.3125; 3)
    `- 8 channel=store <= 0.5 (0.0625; 8)
       |- 9 leaf 4 (0.09375; 6)
       `- 10 leaf 5 (0.03125; 2)
    """
    return explain.number_leaves(
        Node(
            0, 0.125, feature=0, threshold=5000.0, cover=20.0,
            left=Node(
                1, 0.25, feature=1, threshold=2.0, cover=12.0,
                left=Node(2, 0.1875, cover=5.0),
                right=Node(
                    3, 0.5, feature=2, left_categories=frozenset({1.0}), cover=7.0,
                    left=Node(4, 0.75, cover=3.0),
                    right=Node(
                        5, 0.375, feature=0, threshold=2000.0, cover=4.0,
                        left=Node(6, 0.625, cover=1.0), right=Node(7, 0.3125, cover=3.0),
                    ),
                ),
            ),
            right=Node(
                8, 0.0625, feature=3, threshold=0.5, cover=8.0,
                left=Node(9, 0.09375, cover=6.0), right=Node(10, 0.03125, cover=2.0),
            ),
        )
    )  # fmt: skip


# One row per leaf, in leaf order.
HAND_ROWS = [
    [100.0, 0.0, 1.0, 0.0],
    [3000.0, 5.0, 1.0, 0.0],
    [1500.0, 4.0, 0.0, 1.0],
    [4000.0, 4.0, 0.0, 1.0],
    [9000.0, 1.0, 1.0, 0.0],
    [9000.0, 1.0, 0.0, 1.0],
]


def test_original_feature_strips_preprocessing_suffixes():
    assert [
        explain.original_feature(s)
        for s in ["age__imp", "monthly_income__log__imp", "channel__ohe_app", "channel__idx"]
    ] == ["age", "monthly_income", "channel", "channel"]
    assert explain.original_feature("purpose__ohe___unknown") == "purpose"


def test_slot_features_from_a_fitted_preprocessing_pipeline(spark):
    df = spark.createDataFrame(
        [(1.0, 2.0, "app", "x"), (None, 3.0, "web", "y"), (4.0, None, "app", "x")],
        "amount double, income double, channel string, grade string",
    )
    prep = Pipeline(
        stages=[
            SQLTransformer(statement="SELECT *, log1p(income) AS income__log FROM __THIS__"),
            Imputer(
                inputCols=["amount", "income__log"], outputCols=["amount__imp", "income__log__imp"]
            ),
            StringIndexer(
                inputCols=["channel", "grade"],
                outputCols=["channel__idx", "grade__idx"],
                handleInvalid="keep",
            ),
            OneHotEncoder(
                inputCols=["channel__idx"], outputCols=["channel__ohe"], handleInvalid="keep"
            ),
            VectorAssembler(
                inputCols=["amount__imp", "income__log__imp", "channel__ohe", "grade__idx"],
                outputCol="features",
            ),
        ]
    ).fit(df)
    # channel: app, web and the unknown-level slot; grade stays one indexed slot.
    assert explain.slot_features(prep.transform(df)) == [
        "amount",
        "income",
        "channel",
        "channel",
        "channel",
        "grade",
    ]


def test_slot_features_refuses_a_vector_without_slot_names(spark):
    df = spark.createDataFrame([(Vectors.dense([1.0, 2.0]),)], ["features"])
    with pytest.raises(ValueError, match="no name for slots"):
        explain.slot_features(df)


def test_hand_tree_walks_and_reason_code_ranking():
    root = hand_tree()
    assert [leaf.id for leaf in explain.leaves(root)] == [2, 4, 6, 7, 9, 10]
    assert [explain.walk(root, x).leaf_index for x in HAND_ROWS] == list(range(6))
    # Positive contributions only, largest first, ties broken by name.
    a = {"income": 0.125, "inquiries": 0.25, "channel": 0.25}
    b = {"income": 0.375, "inquiries": 0.25, "channel": -0.125}
    assert explain.reason_codes(a) == ["channel", "inquiries", "income"]
    assert explain.reason_codes(a, top=2) == ["channel", "inquiries"]
    assert explain.reason_codes(b) == ["income", "inquiries"]
    totals = np.array([[0.25, 0.125, 0.25], [-0.125, 0.375, 0.25], [0.0, -1.0, 0.0]])
    assert explain.top_features(totals, ["channel", "income", "inquiries"], 3) == [
        ["channel", "inquiries", "income"],
        ["income", "inquiries"],
        [],
    ]


def test_tree_reason_codes_in_spark_equal_the_numpy_ranking(spark):
    root = hand_tree()
    one = spark.createDataFrame(
        [(i, Vectors.dense(x)) for i, x in enumerate(HAND_ROWS)], ["id", "features"]
    )
    shap = explain.tree_shap([root], [1.0], SLOTS)
    names = ["channel", "income", "inquiries"]
    expected = explain.shap_reason_codes(shap, np.array(HAND_ROWS), names, 3)
    got = {
        r["id"]: r["reason_codes"]
        for r in explain.tree_reason_codes(one, [root], [1.0], SLOTS).collect()
    }
    assert got == dict(enumerate(expected))
    assert len({tuple(c) for c in expected}) >= 4

    # Two trees as a GBT, weighted 1 and -0.5.
    two = explain.tree_shap([root, root], [1.0, -0.5], SLOTS)
    got = explain.tree_reason_codes(one, [root, root], [1.0, -0.5], SLOTS).collect()
    assert {r["id"]: r["reason_codes"] for r in got} == dict(
        enumerate(explain.shap_reason_codes(two, np.array(HAND_ROWS), names, 3))
    )
    # A feature not allowed as a reason is left out; the others keep their order.
    got = explain.tree_reason_codes(one, [root], [1.0], SLOTS, not_reasons=("income",))
    assert {r["id"]: r["reason_codes"] for r in got.collect()} == {
        i: [c for c in codes if c != "income"] for i, codes in enumerate(expected)
    }


def generated(spark, n: int = 200):
    rng = np.random.default_rng(7)
    x1 = rng.uniform(0, 10, n)
    x2 = rng.uniform(0, 1, n)
    cat = rng.choice(["a", "b", "c"], n)
    p = 0.1 + 0.5 * (x1 > 6) * (cat != "a") + 0.3 * (x2 > 0.8)
    label = (rng.uniform(0, 1, n) < p).astype(float)
    rows = [
        (i, None if i % 17 == 0 else float(x1[i]), float(x2[i]), str(cat[i]), float(label[i]))
        for i in range(n)
    ]
    return spark.createDataFrame(rows, "id int, x1 double, x2 double, cat string, label double")


def test_spark_trees_walk_like_spark_and_explain_every_row(spark):
    df = generated(spark)
    prep = Pipeline(
        stages=[
            SQLTransformer(statement="SELECT *, log1p(x2) AS x2__log FROM __THIS__"),
            Imputer(inputCols=["x1", "x2__log"], outputCols=["x1__imp", "x2__log__imp"]),
            StringIndexer(inputCol="cat", outputCol="cat__idx", handleInvalid="keep"),
            OneHotEncoder(inputCol="cat__idx", outputCol="cat__ohe", handleInvalid="keep"),
            VectorAssembler(
                inputCols=["x1__imp", "x2__log__imp", "cat__ohe"], outputCol="features"
            ),
        ]
    ).fit(df)
    prepared = prep.transform(df).cache()
    slot_names = explain.slot_features(prepared)
    assert slot_names == ["x1", "x2", "cat", "cat", "cat", "cat"]
    dt = DecisionTreeRegressor(
        labelCol="label", predictionCol="pd", leafCol="leaf", maxDepth=4, minInstancesPerNode=5
    ).fit(prepared)
    gbt = GBTClassifier(labelCol="label", leafCol="leaves", maxDepth=2, maxIter=3, seed=1).fit(
        prepared
    )
    rows = (
        gbt.transform(dt.transform(prepared))
        .select(
            "id",
            "features",
            "pd",
            "leaf",
            "leaves",
            vector_to_array("rawPrediction")[1].alias("margin"),
        )
        .collect()
    )
    tree = explain.tree_from_spark(dt)
    assert any(n.left_categories for n in _nodes(tree)), "the data must yield a one-hot split"
    gbt_trees, gbt_weights = explain.spark_trees(gbt)
    assert gbt_weights == [1.0, 0.1, 0.1]
    for row in rows:
        leaf = explain.walk(tree, row["features"])
        assert (leaf.leaf_index, leaf.prediction) == (row["leaf"], row["pd"])
        gbt_leaves = [explain.walk(t, row["features"]) for t in gbt_trees]
        assert [float(leaf.leaf_index) for leaf in gbt_leaves] == list(row["leaves"])
        margin = sum(w * leaf.prediction for w, leaf in zip(gbt_weights, gbt_leaves, strict=True))
        assert margin == pytest.approx(row["margin"], abs=1e-12)
    vectors = np.array([row["features"].toArray() for row in rows])
    tree_shap = explain.tree_shap([tree], [1.0], slot_names)
    gbt_shap = explain.tree_shap(gbt_trees, gbt_weights, slot_names)
    # Local accuracy: the contributions add up to the prediction (the GBT's margin).
    for shap, col in ((tree_shap, "pd"), (gbt_shap, "margin")):
        totals = explain.shap_values(shap, vectors).sum(axis=1) + shap.expected_value
        assert np.abs(totals - np.array([row[col] for row in rows])).max() < 1e-12

    # Reason codes in Spark equal numpy's on the collected vectors, tree and GBT alike;
    # the stage needs no leafCol.
    no_leaf = PipelineModel(stages=[*prep.stages, dt.copy({dt.leafCol: ""})])
    dt_codes = explain.score_with_reason_codes(no_leaf, df)
    assert dt_codes.columns == [*no_leaf.transform(df).columns, "reason_codes"]
    gbt_codes = explain.tree_reason_codes(
        gbt.transform(prepared), gbt_trees, gbt_weights, slot_names
    )
    joined = dt_codes.select("id", F.col("reason_codes").alias("dt")).join(
        gbt_codes.select("id", F.col("reason_codes").alias("gbt")), "id"
    )
    got = {r["id"]: (r["dt"], r["gbt"]) for r in joined.collect()}
    names = explain.reason_candidates(slot_names)
    expected = {
        row["id"]: (dt_row, gbt_row)
        for row, dt_row, gbt_row in zip(
            rows,
            explain.shap_reason_codes(tree_shap, vectors, names, 3),
            explain.shap_reason_codes(gbt_shap, vectors, names, 3),
            strict=True,
        )
    }
    assert got == expected
    importance = explain.native_importance(PipelineModel(stages=[*prep.stages, dt]), slot_names)
    per_slot = dt.featureImportances.toArray()
    assert importance == pytest.approx(
        {"x1": per_slot[0], "x2": per_slot[1], "cat": per_slot[2:].sum()}
    )
    prepared.unpersist()


def _nodes(root: Node):
    yield root
    if not root.is_leaf:
        yield from _nodes(root.left)
        yield from _nodes(root.right)


def hand_model() -> PipelineModel:
    """pd = 0.1 x1 + 0.3 x2 + (cat = 'bad' ? 0.2 : 0); ignores x3."""
    return PipelineModel(
        stages=[
            SQLTransformer(
                statement="SELECT *, 0.1D * x1 + 0.3D * x2 "
                "+ CASE WHEN cat = 'bad' THEN 0.2D ELSE 0D END AS pd FROM __THIS__"
            )
        ]
    )


def test_occlusion_reason_codes_of_a_hand_made_model(spark):
    rows = spark.createDataFrame(
        [("a", 5, 1.0, "bad"), ("b", 0, 2.0, "good"), ("c", 2, 0.5, "bad")],
        "application_id string, x1 int, x2 double, cat string",
    )
    reference = {"x1": 1, "x2": 0.0, "cat": "good"}
    got = {
        r["application_id"]: (round(r["pd"], 12), r["reason_codes"])
        for r in explain.occlusion_reason_codes(
            hand_model(), rows, ["x1", "x2"], ["cat"], reference
        ).collect()
    }
    assert got == {
        # drops: x1 0.1 * (5 - 1) = 0.4, x2 0.3, cat 0.2
        "a": (1.0, ["x1", "x2", "cat"]),
        # x1 = 0 -> 1 raises pd (drop -0.1); cat is already the reference (0)
        "b": (0.6, ["x2"]),
        # x1 0.1, x2 0.15, cat 0.2
        "c": (0.55, ["cat", "x2", "x1"]),
    }


def test_reference_values_are_the_goods_median_and_mode(spark):
    df = spark.createDataFrame(
        [(1.0, "app", 0), (2.0, "app", 0), (3.0, "web", 0), (10.0, "web", 0), (99.0, "x", 1)]
        + [(None, "x", 1), (5.0, "x", 1)],
        "amount double, channel string, label int",
    )
    # goods' amounts 1, 2, 3, 10: the lower middle value; channel app/web tie -> app.
    assert explain.reference_values(df, ["amount"], ["channel"]) == {
        "amount": 2.0,
        "channel": "app",
    }


def test_permutation_importance_of_an_ignored_feature_is_zero(spark):
    rng = np.random.default_rng(3)
    n = 60
    sample = pd.DataFrame(
        {
            "x1": rng.uniform(0, 5, n),
            "x2": rng.uniform(0, 1, n),
            "x3": rng.uniform(0, 1, n),
            "cat": rng.choice(["good", "bad"], n),
        }
    )
    score = 0.1 * sample["x1"] + 0.3 * sample["x2"] + 0.2 * (sample["cat"] == "bad")
    sample["label"] = (score + rng.normal(0, 0.1, n) > score.median()).astype(int)
    got = explain.permutation_importance(
        hand_model(), sample, ["x1", "x2", "x3", "cat"], seed=0, spark=spark
    )
    assert list(got) == sorted(got, key=lambda f: (-got[f], f))
    assert got["x3"] == 0.0
    # The copies are permuted by default_rng(seed) in feature order: x1 is the first draw.
    shuffled = np.random.default_rng(0).permutation(sample["x1"].to_numpy())
    base = metrics.auc(score.to_numpy(), sample["label"].to_numpy())
    permuted = metrics.auc((score + 0.1 * (shuffled - sample["x1"])).to_numpy(), sample["label"])
    assert got["x1"] == pytest.approx(base - permuted, abs=1e-12)
