"""Why a model scores an application the way it does: global importance and reason codes.

A lender that declines or prices an application must be able to say which of the
applicant's characteristics pushed the risk up (adverse-action reason codes), and a
risk team must know which features a model leans on. Two families of explanation:

* **Trees** (the probability tree, a GBT): the fitted Spark tree is copied into plain
  Python ``Node`` objects and each leaf gets its **path contributions** (Saabas): every
  split on the way from the root to the leaf credits its feature with the change in the
  node prediction. A leaf's contributions plus the root prediction equal the leaf's
  prediction exactly, so the explanation adds up to the score. The per-(tree, leaf)
  contributions are a small lookup table; scoring millions of rows only reads Spark's
  ``leafCol`` and looks the contributions up with numpy, a batch of rows at a time.
* **Any model** (the neural network): **occlusion** replaces one feature at a time by a
  reference value (a typical good applicant's) and measures how much the probability of
  default falls; every row and its replaced copies are scored in one Spark job.

Global importance is the tree's own impurity importance (``native_importance``) or, for
any model, the AUC lost when a feature is shuffled in a small sample
(``permutation_importance``). Everything is reported per ORIGINAL feature: the slots of
the assembled vector (imputed, log-transformed, one-hot levels) map back to their
feature through the vector's ML attribute metadata (``slot_features``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.ml import PipelineModel, Transformer
from pyspark.ml.classification import GBTClassificationModel
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import DecisionTreeRegressionModel, GBTRegressionModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

from riskcontrol.modeling import metrics

# Suffixes the preprocessing appends to a feature's name, innermost first.
SLOT_SUFFIXES = ("__imp", "__log")
ONE_HOT_MARKER = "__ohe"
INDEX_SUFFIX = "__idx"
PD_COL = "pd"
REASON_CODES_COL = "reason_codes"
TREE_MODELS = (DecisionTreeRegressionModel, GBTClassificationModel, GBTRegressionModel)
_ORIGINAL = ""  # permutation_importance's tag of the unshuffled copy


def original_feature(slot_name: str) -> str:
    """``x__log__imp`` -> ``x``; ``cat__ohe_level`` -> ``cat``; ``cat__idx`` -> ``cat``."""
    name = slot_name.partition(ONE_HOT_MARKER)[0]
    name = name.removesuffix(INDEX_SUFFIX)
    for suffix in SLOT_SUFFIXES:
        name = name.removesuffix(suffix)
    return name


def slot_features(df: DataFrame, features_col: str = "features") -> list[str]:
    """For each slot of the assembled vector ``features_col``, its original feature name.

    Read from the column's ML attribute metadata (what VectorAssembler writes), so every
    one-hot slot of a categorical maps to the categorical's name.
    """
    attrs = df.schema[features_col].metadata.get("ml_attr", {})
    names: dict[int, str] = {}
    for group in attrs.get("attrs", {}).values():
        for attr in group:
            names[attr["idx"]] = attr["name"]
    size = attrs.get("num_attrs", len(names))
    missing = [i for i in range(size) if i not in names]
    if not names or missing:
        raise ValueError(
            f"column {features_col!r} carries no name for slots {missing or 'any'}: pass the "
            "VectorAssembler's output column (a scaler drops the slot names)"
        )
    return [original_feature(names[i]) for i in range(size)]


@dataclass
class Node:
    """One node of a binary decision tree, in plain Python.

    An internal node splits on slot ``feature``: a continuous split sends a row left when
    its value is ``<= threshold``, a categorical split when its value is in
    ``left_categories``. A leaf has ``feature`` None and ``leaf_index``, the number Spark
    writes into ``leafCol`` (see ``number_leaves``).
    """

    id: int
    prediction: float
    feature: int | None = None
    threshold: float | None = None
    left_categories: frozenset[float] | None = None
    left: Node | None = None
    right: Node | None = None
    leaf_index: int | None = None

    @property
    def is_leaf(self) -> bool:
        return self.feature is None

    def child(self, vector: Sequence[float]) -> Node:
        """The child a row with feature vector ``vector`` goes to."""
        value = float(vector[self.feature])
        if self.threshold is not None:
            goes_left = value <= self.threshold
        else:
            goes_left = value in self.left_categories
        return self.left if goes_left else self.right


def leaves(root: Node) -> Iterator[Node]:
    """The leaves depth first, left before right: Spark's ``leafCol`` order."""
    if root.is_leaf:
        yield root
    else:
        yield from leaves(root.left)
        yield from leaves(root.right)


def number_leaves(root: Node) -> Node:
    """Set ``leaf_index`` the way Spark numbers leaves (depth first, left first, from 0)."""
    for index, leaf in enumerate(leaves(root)):
        leaf.leaf_index = index
    return root


def walk(root: Node, vector: Sequence[float]) -> Node:
    """The leaf a row with feature vector ``vector`` lands in."""
    node = root
    while not node.is_leaf:
        node = node.child(vector)
    return node


def tree_from_spark(tree_model) -> Node:
    """Copy a fitted Spark decision tree (e.g. a ``DecisionTreeRegressionModel``, or one
    of ``GBTClassificationModel.trees``) into ``Node`` objects, through py4j.

    Node ids are the pre-order position (root 0); leaves are numbered as Spark's
    ``leafCol`` numbers them.
    """
    ids = itertools.count()

    def convert(java_node) -> Node:
        node_id = next(ids)
        prediction = float(java_node.prediction())
        if java_node.getClass().getSimpleName() == "LeafNode":
            return Node(node_id, prediction)
        split = java_node.split()
        kind = split.getClass().getSimpleName()
        node = Node(node_id, prediction, feature=int(split.featureIndex()))
        if kind == "ContinuousSplit":
            node.threshold = float(split.threshold())
        elif kind == "CategoricalSplit":
            node.left_categories = frozenset(float(c) for c in split.leftCategories())
        else:
            raise ValueError(f"unknown Spark split type {kind}: update tree_from_spark")
        node.left = convert(java_node.leftChild())
        node.right = convert(java_node.rightChild())
        return node

    return number_leaves(convert(tree_model._call_java("rootNode")))


def leaf_contributions(root: Node, weight: float = 1.0) -> dict[int, dict[int, float]]:
    """Saabas path contributions: leaf index -> {slot: contribution}.

    Each split on the path to a leaf contributes ``weight * (child.prediction -
    node.prediction)`` to its slot, so a leaf's contributions sum to ``weight *
    (leaf.prediction - root.prediction)``. For a GBT pass the tree's weight: the
    contributions are then in margin space (the ensemble's raw score, the sum of weighted
    tree predictions; Spark's GBT classifier turns a margin m into P(1) = 1/(1+exp(-2m))),
    not in probability.
    """
    found: dict[int, dict[int, float]] = {}

    def visit(node: Node, path: dict[int, float]) -> None:
        if node.is_leaf:
            found[node.leaf_index] = path
            return
        for child in (node.left, node.right):
            delta = weight * (child.prediction - node.prediction)
            visit(child, {**path, node.feature: path.get(node.feature, 0.0) + delta})

    visit(root, {})
    return found


def by_feature(slot_contributions: dict[int, float], slot_names: list[str]) -> dict[str, float]:
    """Sum slot contributions per original feature (``slot_names[slot]``)."""
    out: dict[str, float] = {}
    for slot, value in slot_contributions.items():
        out[slot_names[slot]] = out.get(slot_names[slot], 0.0) + value
    return out


def path_contributions(
    trees: list[Node], tree_weights: list[float], slot_names: list[str], vector: Sequence[float]
) -> dict[str, float]:
    """One row's contributions per original feature, summed over the (weighted) trees."""
    total: dict[str, float] = {}
    for tree, weight in zip(trees, tree_weights, strict=True):
        leaf = walk(tree, vector).leaf_index
        for name, value in by_feature(leaf_contributions(tree, weight)[leaf], slot_names).items():
            total[name] = total.get(name, 0.0) + value
    return total


def reason_codes(contributions: dict[str, float], top: int = 3) -> list[str]:
    """The ``top`` features that pushed the risk up most (positive only), largest first,
    ties broken by name."""
    ranked = sorted((-value, name) for name, value in contributions.items() if value > 0)
    return [name for _, name in ranked[:top]]


def top_codes(contributions: dict[str, Column], top: int) -> Column:
    """SQL twin of ``reason_codes``: array<string> of the ``top`` positive columns."""
    candidates = [
        F.when(value > 0, F.struct((-value).alias("neg"), F.lit(name).alias("feature")))
        for name, value in contributions.items()
    ]
    if not candidates:
        return F.array().cast(ArrayType(StringType()))
    ranked = F.sort_array(F.array_compact(F.array(*candidates)))
    return F.slice(ranked, 1, top).getField("feature")


def contribution_table(
    tree: Node, weight: float, slot_names: list[str], features: list[str]
) -> np.ndarray:
    """The tree's path contributions as a (leaves x ``features``) matrix, slots summed per
    original feature; features not in ``features`` are left out."""
    table = np.zeros((sum(1 for _ in leaves(tree)), len(features)))
    column = {name: j for j, name in enumerate(features)}
    for leaf, slots in leaf_contributions(tree, weight).items():
        for name, value in by_feature(slots, slot_names).items():
            if name in column:
                table[leaf, column[name]] = value
    return table


def reason_candidates(slot_names: Sequence[str], not_reasons: Sequence[str] = ()) -> list[str]:
    """The original features a reason code may name, sorted (ties then break by name)."""
    return sorted(set(slot_names) - set(not_reasons))


def top_features(totals: np.ndarray, features: list[str], top: int) -> list[list[str]]:
    """Per row of ``totals`` (rows x ``features``, ``features`` sorted by name), the ``top``
    positive features, largest first; the stable sort breaks ties by name."""
    order = np.argsort(-totals, axis=1, kind="stable")[:, :top]
    ranked = np.take_along_axis(totals, order, axis=1)
    names = np.asarray(features, dtype=object)
    return [list(names[o[v > 0]]) for o, v in zip(order, ranked, strict=True)]


def tree_reason_codes(
    predictions: DataFrame,
    trees: list[Node],
    tree_weights: list[float],
    slot_names: list[str],
    leaf_col: str,
    top: int = 3,
    not_reasons: Sequence[str] = (),
) -> DataFrame:
    """Add ``reason_codes`` (array<string>) from the trees' path contributions; features
    in ``not_reasons`` are never ranked, so the next ones take their places.

    ``predictions`` carries Spark's ``leaf_col``: a double for one tree, a vector of leaf
    indices (one per tree) for an ensemble. Each tree's contributions per (leaf, original
    feature) form a small matrix shipped with a pandas UDF, which sums the rows' leaves'
    contributions over the trees and ranks them with numpy, a batch at a time. (A SQL
    expression of literal lookups was measured too: fine for one tree, but a GBT's
    hundreds of lookups outgrow Java's 64 KB method limit and run interpreted, ~100x
    slower.)
    """
    if len(trees) != len(tree_weights):
        raise ValueError(f"{len(trees)} trees but {len(tree_weights)} tree weights")
    if isinstance(predictions.schema[leaf_col].dataType, DoubleType):
        if len(trees) != 1:
            raise ValueError(f"{leaf_col!r} is one leaf (a double) but {len(trees)} trees given")
        leaf_array = F.array(F.col(leaf_col))
    else:
        leaf_array = vector_to_array(F.col(leaf_col))
    features = reason_candidates(slot_names, not_reasons)
    tables = [
        contribution_table(tree, weight, slot_names, features)
        for tree, weight in zip(trees, tree_weights, strict=True)
    ]

    @F.pandas_udf(ArrayType(StringType()))
    def codes(leaf_rows: pd.Series) -> pd.Series:
        leaf_matrix = np.stack(leaf_rows.to_numpy()).astype(int)
        totals = sum(table[leaf_matrix[:, t]] for t, table in enumerate(tables))
        return pd.Series(top_features(totals, features, top))

    return predictions.withColumn(REASON_CODES_COL, codes(leaf_array))


def tree_stage(pipeline_model: PipelineModel) -> tuple[int, Transformer]:
    """The position and the stage of the pipeline's (last) tree model."""
    for index in reversed(range(len(pipeline_model.stages))):
        if isinstance(pipeline_model.stages[index], TREE_MODELS):
            return index, pipeline_model.stages[index]
    kinds = ", ".join(t.__name__ for t in TREE_MODELS)
    raise ValueError(
        f"the pipeline has no {kinds} stage: explain other models with "
        "occlusion_reason_codes and permutation_importance"
    )


def spark_trees(stage: Transformer) -> tuple[list[Node], list[float]]:
    """A tree model's trees as ``Node`` objects and their weights (1.0 for one tree)."""
    if isinstance(stage, DecisionTreeRegressionModel):
        return [tree_from_spark(stage)], [1.0]
    return [tree_from_spark(t) for t in stage.trees], list(stage.treeWeights)


def score_with_reason_codes(
    pipeline_model: PipelineModel, df: DataFrame, top: int = 3, features_col: str = "features"
) -> DataFrame:
    """Score ``df`` with a tree pipeline and add ``reason_codes``. The tree stage's own
    ``leafCol`` is used when set; otherwise a copy of the stage writes a temporary one."""
    index, stage = tree_stage(pipeline_model)
    leaf_col = stage.getLeafCol()
    scored_by = pipeline_model
    if not leaf_col:
        leaf_col = "__leaf"
        stages = list(pipeline_model.stages)
        stages[index] = stage.copy({stage.leafCol: leaf_col})
        scored_by = PipelineModel(stages=stages)
    scored = scored_by.transform(df)
    trees, weights = spark_trees(stage)
    slot_names = slot_features(scored, features_col)
    explained = tree_reason_codes(scored, trees, weights, slot_names, leaf_col, top)
    return explained if stage.getLeafCol() else explained.drop(leaf_col)


def native_importance(pipeline_model: PipelineModel, slot_names: list[str]) -> dict[str, float]:
    """The tree stage's impurity importance summed per original feature, normalised to
    sum 1 (all 0.0 for a tree without splits), largest first."""
    _, stage = tree_stage(pipeline_model)
    per_slot = stage.featureImportances.toArray()
    if len(per_slot) != len(slot_names):
        raise ValueError(f"the model has {len(per_slot)} slots, {len(slot_names)} names given")
    totals: dict[str, float] = dict.fromkeys(slot_names, 0.0)
    for name, value in zip(slot_names, per_slot, strict=True):
        totals[name] += float(value)
    grand = sum(totals.values())
    scaled = {name: value / grand if grand > 0 else 0.0 for name, value in totals.items()}
    return dict(sorted(scaled.items(), key=lambda kv: (-kv[1], kv[0])))


def reference_values(
    df: DataFrame, numeric: list[str], categorical: list[str], label: str = "label"
) -> dict[str, object]:
    """A typical good applicant, for occlusion: among rows with ``label`` 0, each
    numeric's median (``percentile_approx``: exact up to 10,000 rows, the lower middle
    value for an even count) and each categorical's most common level (ties: the
    smallest). One Spark job."""
    goods = df.where(F.col(label) == 0)
    row = goods.agg(
        *[F.percentile_approx(c, 0.5).alias(c) for c in numeric],
        *[F.mode(c, deterministic=True).alias(c) for c in categorical],
    ).first()
    return {c: row[c] for c in [*numeric, *categorical]}


def occlusion_reason_codes(
    model: Transformer,
    rows: DataFrame,
    numeric: list[str],
    categorical: list[str],
    reference: dict[str, object],
    top: int = 3,
    id_col: str = "application_id",
) -> DataFrame:
    """Reason codes for any model by occlusion: ``id_col``, ``pd``, ``reason_codes``.

    Each row is scored as is and once per feature with that feature replaced by its
    ``reference`` value (``reference_values``); a feature's contribution is the drop in
    ``pd`` its replacement causes, and the reason codes are the largest positive drops.
    The copies (rows x (features + 1)) are scored in one job and regrouped by ``id_col``,
    which must be unique. ``model.transform`` must add ``pd``.
    """
    features = [*numeric, *categorical]
    missing = [f for f in features if f not in reference]
    if missing:
        raise ValueError(f"no reference value for {missing}: compute them with reference_values")
    tag = "__occluded"
    copies = rows.withColumn(
        tag, F.explode(F.array(F.lit(None).cast("string"), *[F.lit(f) for f in features]))
    )
    occluded = copies.withColumns(
        {
            f: F.when(F.col(tag) == f, F.lit(reference[f]).cast(rows.schema[f].dataType)).otherwise(
                F.col(f)
            )
            for f in features
        }
    )
    scored = model.transform(occluded)
    if PD_COL not in scored.columns:
        raise ValueError(f"the model adds no {PD_COL!r} column: append a stage that computes it")
    per_row = scored.groupBy(id_col).agg(
        F.max(F.when(F.col(tag).isNull(), F.col(PD_COL))).alias(PD_COL),
        *[
            F.max(F.when(F.col(tag) == f, F.col(PD_COL))).alias(f"{tag}{i}")
            for i, f in enumerate(features)
        ],
    )
    drops = {f: F.col(PD_COL) - F.col(f"{tag}{i}") for i, f in enumerate(features)}
    return per_row.select(id_col, PD_COL, top_codes(drops, top).alias(REASON_CODES_COL))


def permutation_importance(
    model: Transformer,
    sample_pdf: pd.DataFrame,
    features: list[str],
    label: str = "label",
    seed: int = 0,
    spark: SparkSession | None = None,
    schema: StructType | str | None = None,
) -> dict[str, float]:
    """AUC lost when each feature is shuffled in a small pandas sample, largest first.

    The copies (the sample, then one per feature with that column permuted by
    ``numpy.random.default_rng(seed)``, in ``features`` order) are scored in ONE Spark
    transform; AUCs come from ``pd`` with ``riskcontrol.modeling.metrics.auc``. Keep the sample to
    a few thousand rows: rows x (features + 1) scores come back to the driver. ``schema``
    is the sample's Spark schema (default: inferred from pandas).
    """
    spark = spark or SparkSession.active()
    rng = np.random.default_rng(seed)
    tag = "__permuted"
    copies = [sample_pdf.assign(**{tag: _ORIGINAL})]
    for feature in features:
        shuffled = sample_pdf.copy()
        shuffled[feature] = rng.permutation(shuffled[feature].to_numpy())
        copies.append(shuffled.assign(**{tag: feature}))
    union = pd.concat(copies, ignore_index=True)
    if schema is not None:
        fields = (StructType.fromDDL(schema) if isinstance(schema, str) else schema).fields
        schema = StructType([*fields, StructField(tag, StringType())])
    scored = (
        model.transform(spark.createDataFrame(union, schema=schema))
        .select(tag, label, PD_COL)
        .toPandas()
    )
    aucs = {
        key: metrics.auc(group[PD_COL].to_numpy(), group[label].to_numpy().astype(int))
        for key, group in scored.groupby(tag)
    }
    drops = {f: aucs[_ORIGINAL] - aucs[f] for f in features}
    return dict(sorted(drops.items(), key=lambda kv: (-kv[1], kv[0])))
