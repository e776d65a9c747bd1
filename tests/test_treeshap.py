"""Exact path-dependent TreeSHAP: tables against brute-force Shapley values, covers from
Spark, local accuracy against Spark's predictions, and the Spark UDF's codes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.classification import GBTClassifier
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.ml.regression import DecisionTreeRegressor
from pyspark.sql import functions as F
from test_explain import hand_tree  # the hand tree of test_explain, drawn there

from riskcontrol.modeling import explain
from riskcontrol.modeling.explain import Node
from riskcontrol.modeling.stages import ProbabilityOfDefault


# --- brute force --------------------------------------------------------------------------
def coalition_value(root: Node, x, players: set[str], slot_names, leaf_value=None) -> float:
    """v(S) of path-dependent TreeSHAP, straight from its definition: the sum over leaves
    of the leaf value times, along its path, 1[x goes that way] for a split on a feature
    in S, else cover(child) / cover(node)."""

    def visit(node: Node, share: float) -> float:
        if node.is_leaf:
            value = node.prediction if leaf_value is None else leaf_value(node)
            return share * value
        total = 0.0
        toward = node.child(x)
        for child in (node.left, node.right):
            if slot_names[node.feature] in players:
                factor = 1.0 if child is toward else 0.0
            else:
                factor = child.cover / node.cover
            total += visit(child, share * factor)
        return total

    return visit(root, 1.0)


def brute_force_shapley(trees, weights, slot_names, x, leaf_value=None) -> dict[str, float]:
    """Shapley values over the original features by enumerating every coalition."""
    players = sorted(set(slot_names))
    n = len(players)

    def v(coalition: set[str]) -> float:
        return sum(
            w * coalition_value(t, x, coalition, slot_names, leaf_value)
            for t, w in zip(trees, weights, strict=True)
        )

    out = {}
    for i in players:
        others = [p for p in players if p != i]
        total = 0.0
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                total += weight * (v({*subset, i}) - v(set(subset)))
        out[i] = total
    return out


def expected_value(root: Node, leaf_value=None) -> float:
    """E[f]: the leaf values weighted by their share of the root's cover."""
    return sum(
        (leaf.prediction if leaf_value is None else leaf_value(leaf)) * leaf.cover / root.cover
        for leaf in explain.leaves(root)
    )


# --- hand-built trees ---------------------------------------------------------------------
def two_split_tree() -> Node:
    """0 a <= 0.5 (cover 10)
    |- 1 leaf 0.2 (cover 4)
    `- 2 b <= 0.5 (cover 6)
       |- 3 leaf 0.6 (cover 2)
       `- 4 leaf 0.9 (cover 4)
    """
    return explain.number_leaves(
        Node(
            0, 0.0, feature=0, threshold=0.5, cover=10.0,
            left=Node(1, 0.2, cover=4.0),
            right=Node(
                2, 0.0, feature=1, threshold=0.5, cover=6.0,
                left=Node(3, 0.6, cover=2.0), right=Node(4, 0.9, cover=4.0),
            ),
        )
    )  # fmt: skip


def test_two_split_tree_by_hand():
    # x = (1, 0) goes right, then left: f(x) = 0.6. With S the features known:
    # v({}) = 0.4 * 0.2 + 0.6 * (1/3 * 0.6 + 2/3 * 0.9) = 0.56, v({a}) = 0.8,
    # v({b}) = 0.4 * 0.2 + 0.6 * 0.6 = 0.44, v({a, b}) = 0.6, so
    # phi_a = ((0.8 - 0.56) + (0.6 - 0.44)) / 2 = 0.2 and
    # phi_b = ((0.44 - 0.56) + (0.6 - 0.8)) / 2 = -0.16; 0.56 + 0.2 - 0.16 = 0.6.
    shap = explain.tree_shap([two_split_tree()], [1.0], ["a", "b"])
    assert shap.players == ["a", "b"]
    assert shap.expected_value == pytest.approx(0.56, abs=1e-12)
    got = explain.shap_values(shap, np.array([[1.0, 0.0], [0.0, 7.0], [1.0, 1.0]]))
    assert got[0] == pytest.approx([0.2, -0.16], abs=1e-12)
    # x = (0, 7) lands in the left leaf 0.2; b is off its path but still matters through
    # v({b}) = 0.08 + 0.6 * 0.9 = 0.62: phi_a = ((0.2 - 0.56) + (0.2 - 0.62)) / 2 = -0.39,
    # phi_b = ((0.62 - 0.56) + (0.2 - 0.2)) / 2 = 0.03.
    assert got[1] == pytest.approx([-0.39, 0.03], abs=1e-12)
    # Twice the weight, twice the values (a GBT tree's weight).
    doubled = explain.shap_values(explain.tree_shap([two_split_tree()], [2.0], ["a", "b"]), got[:1])
    assert doubled.shape == (1, 2)
    for row, x in zip(got, [[1.0, 0.0], [0.0, 7.0], [1.0, 1.0]], strict=True):
        f = explain.walk(two_split_tree(), x).prediction
        assert row.sum() == pytest.approx(f - 0.56, abs=1e-12)


SLOTS = ["income", "inquiries", "channel", "channel"]  # slot 2: online, slot 3: store
HAND_ROWS = [
    [3000.0, 5.0, 1.0, 0.0],  # online, many inquiries -> leaf 4
    [1500.0, 4.0, 0.0, 1.0],  # store, low income -> node 5 -> leaf 6
    [4000.0, 4.0, 0.0, 1.0],  # -> leaf 7
    [9000.0, 1.0, 0.0, 1.0],  # -> leaf 10
    [9000.0, 1.0, 1.0, 0.0],  # -> leaf 9
    [100.0, 0.0, 1.0, 0.0],  # -> leaf 2
    [math.nan, 5.0, math.nan, math.nan],  # NaN goes right: -> leaf 10
    [2000.0, 2.0, 0.0, 0.5],  # on the thresholds -> leaf 2
]


def random_tree(rng, depth: int, slots: int, categorical_slots: set[int]) -> Node:
    """A random full tree with covers that add up (feature reuse allowed)."""
    ids = itertools.count()

    def grow(level: int, cover: float) -> Node:
        if level == depth or (level > 0 and rng.uniform() < 0.2):
            return Node(next(ids), float(rng.uniform(-1, 1)), cover=cover)
        feature = int(rng.integers(slots))
        node = Node(next(ids), 0.0, feature=feature, cover=cover)
        if feature in categorical_slots:
            node.left_categories = frozenset({float(rng.integers(3))})
        else:
            node.threshold = float(rng.uniform(-1, 1))
        share = float(rng.uniform(0.1, 0.9))
        node.left = grow(level + 1, cover * share)
        node.right = grow(level + 1, cover - cover * share)
        return node

    return explain.number_leaves(grow(0, float(rng.uniform(50, 100))))


def random_rows(rng, n: int, slots: int, categorical_slots: set[int]) -> np.ndarray:
    x = rng.uniform(-1.2, 1.2, (n, slots))
    for s in categorical_slots:
        x[:, s] = rng.integers(3, size=n)
    x[rng.uniform(size=x.shape) < 0.05] = math.nan
    return x


def test_hand_tree_equals_brute_force_and_adds_up():
    root = hand_tree()
    shap = explain.tree_shap([root], [1.0], SLOTS)
    got = explain.shap_values(shap, np.array(HAND_ROWS))
    assert shap.expected_value == pytest.approx(expected_value(root), abs=1e-15)
    for row, x in zip(got, HAND_ROWS, strict=True):
        expected = brute_force_shapley([root], [1.0], SLOTS, x)
        assert dict(zip(shap.players, row, strict=True)) == pytest.approx(expected, abs=1e-12)
        f = explain.walk(root, x).prediction
        assert row.sum() == pytest.approx(f - shap.expected_value, abs=1e-12)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_random_trees_and_ensembles_equal_brute_force(depth):
    rng = np.random.default_rng(depth)
    slot_names = ["a", "b", "c", "c", "d"]  # slots 2, 3: two one-hot levels of c
    categorical = {2, 3}
    for _ in range(5):
        trees = [random_tree(rng, depth, len(slot_names), categorical) for _ in range(3)]
        weights = [1.0, 0.5, -0.25]
        # Depth 2 explains the leaf values mapped as a PD stage with bad weight 3 would.
        leaf_value = (
            (lambda n: n.prediction / (n.prediction + (1 - n.prediction) * 3.0))
            if depth == 2
            else None
        )
        explained = leaf_value or (lambda n: n.prediction)
        shap = explain.tree_shap(trees, weights, slot_names, leaf_value)
        rows = random_rows(rng, 12, len(slot_names), categorical)
        got = explain.shap_values(shap, rows)
        pairs = list(zip(trees, weights, strict=True))
        expected_f = sum(w * expected_value(t, leaf_value) for t, w in pairs)
        assert shap.expected_value == pytest.approx(expected_f, abs=1e-12)
        for row, x in zip(got, rows, strict=True):
            expected = brute_force_shapley(trees, weights, slot_names, x, leaf_value)
            assert dict(zip(shap.players, row, strict=True)) == pytest.approx(expected, abs=1e-12)
            f = sum(w * explained(explain.walk(t, x)) for t, w in pairs)
            assert row.sum() == pytest.approx(f - shap.expected_value, abs=1e-12)


def test_one_row_alone_equals_the_same_row_in_a_batch_bit_for_bit():
    rng = np.random.default_rng(3)
    slot_names = ["a", "b", "c", "c", "d"]
    trees = [random_tree(rng, 4, 5, {2, 3}) for _ in range(40)]
    shap = explain.tree_shap(trees, [0.1] * 40, slot_names)
    rows = random_rows(rng, 300, 5, {2, 3})
    batch = explain.shap_values(shap, rows)
    alone = np.vstack([explain.shap_values(shap, rows[i : i + 1]) for i in range(len(rows))])
    assert np.array_equal(batch, alone)
    features = ["a", "b", "d"]
    assert explain.shap_reason_codes(shap, rows, features, 2) == [
        explain.shap_reason_codes(shap, rows[i : i + 1], features, 2)[0] for i in range(len(rows))
    ]


def test_a_one_leaf_tree_credits_nobody_and_a_missing_cover_is_refused():
    shap = explain.tree_shap([explain.number_leaves(Node(0, 0.3, cover=5.0))], [2.0], ["a"])
    assert shap.expected_value == pytest.approx(0.6)
    assert explain.shap_values(shap, np.array([[1.0], [2.0]])).tolist() == [[0.0], [0.0]]
    no_cover = explain.number_leaves(
        Node(0, 0.0, feature=0, threshold=0.0, left=Node(1, 0.1), right=Node(2, 0.2))
    )
    with pytest.raises(ValueError, match="no cover"):
        explain.tree_shap([no_cover], [1.0], ["a"])
    with pytest.raises(ValueError, match="slots"):
        explain.shap_values(shap, np.zeros((1, 2)))


def test_probability_of_default_is_the_pd_stages_formula():
    assert explain.probability_of_default(0.5, 3.0) == pytest.approx(0.25)
    assert explain.probability_of_default(1.5) == 1.0
    a, b = 0.8, -0.3
    q = 0.2 / (0.2 + 0.8 * 2.0)
    platt = 1 / (1 + math.exp(-(a * math.log(q / (1 - q)) + b)))
    assert explain.probability_of_default(0.2, 2.0, (a, b)) == pytest.approx(platt, abs=1e-15)


# --- with Spark ---------------------------------------------------------------------------
def small_frame(spark, n: int = 240):
    rng = np.random.default_rng(17)
    x = rng.uniform(0, 1, (n, 3))
    online = rng.integers(2, size=n)
    p = 0.1 + 0.5 * (x[:, 0] > 0.6) + 0.2 * online * (x[:, 1] > 0.3)
    label = (rng.uniform(size=n) < p).astype(float)
    rows = [
        (
            i,
            Vectors.dense([*x[i], float(online[i]), 1.0 - online[i]]),
            float(label[i]),
            3.0 if label[i] else 1.0,
        )
        for i in range(n)
    ]
    return spark.createDataFrame(rows, ["id", "features", "label", "w"])


def _nodes(root: Node):
    yield root
    if not root.is_leaf:
        yield from _nodes(root.left)
        yield from _nodes(root.right)


def assert_covers_add_up(root: Node, total: float) -> None:
    assert root.cover == pytest.approx(total, rel=1e-12)
    for node in _nodes(root):
        assert node.cover > 0
        if not node.is_leaf:
            assert node.cover == pytest.approx(node.left.cover + node.right.cover, rel=1e-12)


SPARK_SLOTS = ["x1", "x2", "x3", "channel", "channel"]


def test_spark_trees_carry_covers_and_shap_adds_up_to_their_predictions(spark):
    df = small_frame(spark).cache()
    rows_total = df.count()
    dt = DecisionTreeRegressor(
        labelCol="label", weightCol="w", predictionCol="tree_pd", maxDepth=3
    ).fit(df)
    pd_stage = ProbabilityOfDefault("tree_pd", 3.0, plattA=0.9, plattB=-0.2)
    gbt = GBTClassifier(
        labelCol="label", weightCol="w", predictionCol="gbt_class", maxDepth=2, maxIter=4, seed=2
    ).fit(df)
    tree = explain.tree_from_spark(dt)
    # The rows as they are, not their weighted count: bads weigh 3 in fitting only.
    assert rows_total != df.agg(F.sum("w")).first()[0]
    assert_covers_add_up(tree, rows_total)
    gbt_trees, gbt_weights = explain.spark_trees(gbt)
    for t in gbt_trees:
        assert_covers_add_up(t, rows_total)

    pipeline = PipelineModel(stages=[dt, pd_stage])
    leaf_value = explain.explained_leaf_value(pipeline.stages, dt)
    assert leaf_value is not None
    assert explain.explained_leaf_value(PipelineModel(stages=[dt]).stages, dt) is None
    assert explain.explained_leaf_value([gbt], gbt) is None
    rows = (
        gbt.transform(pipeline.transform(df))
        .select("id", "features", "pd", vector_to_array("rawPrediction")[1].alias("margin"))
        .orderBy("id")
        .collect()
    )
    x = np.array([r["features"].toArray() for r in rows])
    pd_shap = explain.tree_shap([tree], [1.0], SPARK_SLOTS, leaf_value)
    gbt_shap = explain.tree_shap(gbt_trees, gbt_weights, SPARK_SLOTS)
    pd_values, margin_values = explain.shap_values(pd_shap, x), explain.shap_values(gbt_shap, x)
    # Local accuracy: PD - E[PD] for the tree, margin - E[margin] for the GBT.
    pds = np.array([r["pd"] for r in rows])
    margins = np.array([r["margin"] for r in rows])
    assert np.abs(pd_values.sum(axis=1) + pd_shap.expected_value - pds).max() < 1e-12
    assert np.abs(margin_values.sum(axis=1) + gbt_shap.expected_value - margins).max() < 1e-12
    # E[PD] is the cover-weighted mean of the leaves' PDs: the training rows' mean PD.
    assert pd_shap.expected_value == pytest.approx(expected_value(tree, leaf_value), abs=1e-15)
    assert pd_shap.expected_value == pytest.approx(pds.mean(), abs=1e-12)
    for i in range(0, len(rows), 40):  # and the values are Shapley's, by brute force
        expected = brute_force_shapley([tree], [1.0], SPARK_SLOTS, x[i], leaf_value)
        assert dict(zip(pd_shap.players, pd_values[i], strict=True)) == pytest.approx(
            expected, abs=1e-12
        )

    # The Spark UDF ranks what shap_values gives, for both; channel is never ranked.
    codes = {
        r["id"]: list(r["reason_codes"])
        for r in explain.tree_reason_codes(
            pipeline.transform(df),
            [tree],
            [1.0],
            SPARK_SLOTS,
            top=2,
            not_reasons=("channel",),
            leaf_value=leaf_value,
        ).collect()
    }
    features = ["x1", "x2", "x3"]
    assert codes == {
        r["id"]: c
        for r, c in zip(rows, explain.shap_reason_codes(pd_shap, x, features, 2), strict=True)
    }
    gbt_codes = {
        r["id"]: list(r["reason_codes"])
        for r in explain.tree_reason_codes(
            df, gbt_trees, gbt_weights, SPARK_SLOTS, "features"
        ).collect()
    }
    assert gbt_codes == {
        r["id"]: c
        for r, c in zip(
            rows,
            explain.shap_reason_codes(gbt_shap, x, ["channel", *features], 3),
            strict=True,
        )
    }
    assert len({tuple(c) for c in gbt_codes.values()}) >= 3
    df.unpersist()


def test_ranking_ignores_float_noise():
    """A contribution of 1e-17 is no reason, and two equal in arithmetic but not in the
    last bit tie and break by name."""
    totals = np.array([[1e-17, 0.1 + 0.2, 0.3, -0.2], [0.0, 0.5, 0.5 + 1e-15, 0.25]])
    assert explain.top_features(totals, ["a", "b", "c", "d"], 3) == [["b", "c"], ["b", "c", "d"]]


def test_smoothed_leaves_are_m_estimates_and_shap_explains_them(spark):
    """``models.smooth_leaves``: each leaf's PD is (bads + m p0) / (rows + m), the counts
    those of the rows in it (counted here from the leaf column, not from the tree), m the
    grid's most likely on the validation rows; Spark's PD, the reason codes' leaf values
    and TreeSHAP's local accuracy all follow the smoothed leaves."""
    from riskcontrol.modeling import models

    df = small_frame(spark).cache()
    dt = DecisionTreeRegressor(
        labelCol="label",
        weightCol="w",
        predictionCol="tree_pd",
        leafCol="leaf",
        maxDepth=4,
        minInstancesPerNode=5,
    ).fit(df)
    pipeline = PipelineModel(stages=[dt, ProbabilityOfDefault("tree_pd", 3.0)])
    before = pipeline.transform(df).select("leaf", "label", "pd").toPandas()
    per_leaf = before.groupby(before["leaf"].astype(int))["label"].agg(["count", "sum"])
    counts = models.leaf_counts(dt)
    assert [rows for rows, _ in counts] == per_leaf["count"].tolist()
    assert [flagged / 3.0 for _, flagged in counts] == pytest.approx(per_leaf["sum"].tolist())
    done = models.smooth_leaves(pipeline, df)  # the training rows as validation: any rows do
    m, prior = done["prior_rows"], done["prior_pd"]
    assert m in models.LEAF_PRIOR_ROWS
    assert prior == pytest.approx(before["label"].mean(), abs=1e-12)
    want = (per_leaf["sum"] + m * prior) / (per_leaf["count"] + m)
    stage = pipeline.stages[-1]
    assert stage.leaves[0] == "leaf"
    assert stage.leaves[1] == pytest.approx(want.tolist(), abs=1e-12)

    def loglik(prior_rows: float) -> float:
        p = ((per_leaf["sum"] + prior_rows * prior) / (per_leaf["count"] + prior_rows))[
            before["leaf"].astype(int)
        ].to_numpy()
        y = before["label"].to_numpy()
        return float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))

    assert loglik(m) == pytest.approx(max(loglik(k) for k in models.LEAF_PRIOR_ROWS), abs=1e-9)
    assert done["validation_loglik"] == pytest.approx(loglik(m), abs=1e-9)
    after = pipeline.transform(df).select("id", "features", "leaf", "pd").orderBy("id").collect()
    assert [r["pd"] for r in after] == pytest.approx(
        [want[int(r["leaf"])] for r in after], abs=1e-12
    )
    assert min(r["pd"] for r in after) > 0
    # The reasons explain the smoothed PD: local accuracy on every row.
    tree = explain.tree_from_spark(dt)
    leaf_value = explain.explained_leaf_value(pipeline.stages, dt)
    shap = explain.tree_shap([tree], [1.0], SPARK_SLOTS, leaf_value)
    x = np.array([r["features"].toArray() for r in after])
    got = explain.shap_values(shap, x).sum(axis=1) + shap.expected_value
    assert np.abs(got - np.array([r["pd"] for r in after])).max() < 1e-12
    df.unpersist()


def test_a_pd_stage_saved_before_smoothing_loads_without_leaves(spark, tmp_path):
    """A registered version saved before ``leafCol``/``leafPd`` existed has neither in its
    metadata: it loads with the defaults and scores as before."""
    import json

    path = tmp_path / "pd"
    ProbabilityOfDefault("tree_pd", 2.0).save(str(path))
    (meta,) = (path / "metadata").glob("part-*")
    doc = json.loads(meta.read_text())
    for key in ("leafCol", "leafPd"):
        doc["paramMap"].pop(key, None)
        doc["defaultParamMap"].pop(key)
    meta.write_text(json.dumps(doc))
    for crc in (path / "metadata").glob(".*.crc"):
        crc.unlink()  # the checksum of the file as written
    loaded = ProbabilityOfDefault.load(str(path))
    assert loaded.leaves is None
    assert loaded.getOrDefault(loaded.badWeight) == 2.0
    frame = spark.createDataFrame([(0.5,)], "tree_pd double")
    assert loaded.transform(frame).first()["pd"] == pytest.approx(0.5 / (0.5 + 0.5 * 2.0))
    smoothed = ProbabilityOfDefault("tree_pd", 2.0, leafCol="leaf", leafPd=[0.01, 0.2])
    assert smoothed.leaves == ("leaf", [0.01, 0.2])
