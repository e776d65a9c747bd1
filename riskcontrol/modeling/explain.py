"""Why a model scores an application the way it does: global importance and reason codes.

A lender that declines or prices an application must be able to say which of the
applicant's characteristics pushed the risk up (adverse-action reason codes), and a
risk team must know which features a model leans on. Two families of explanation:

* **Trees** (the probability tree, a GBT): the fitted Spark tree is copied into plain
  Python ``Node`` objects, with each node's training (weighted) count as its ``cover``,
  and explained with exact **path-dependent TreeSHAP** (Lundberg et al. 2018): Shapley
  values of the game whose coalition value averages the tree over the features left out,
  by the covers. Unlike path contributions (Saabas) they do not depend on the order of
  the splits, and they add up: a row's contributions sum to f(x) - E[f]. A probability
  tree is explained in PD space (its leaf values mapped through the pipeline's
  ``ProbabilityOfDefault`` correction, so contributions sum to PD - E[PD]); a GBT in
  margin space (log-odds), where its trees add. Each leaf's game only depends on which
  of its path's features the row agrees with, so its Shapley values are a small table
  computed once (``tree_shap``); scoring compares the rows' feature vectors with the
  splits and gathers from the tables, with numpy, a batch of rows at a time
  (``shap_values``): the same function serves a Spark pandas UDF and one row locally.
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

import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.ml import PipelineModel, Transformer
from pyspark.ml.classification import GBTClassificationModel
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import DecisionTreeRegressionModel, GBTRegressionModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from riskcontrol.modeling import metrics
from riskcontrol.modeling.stages import PLATT_CLIP, ProbabilityOfDefault

# Suffixes the preprocessing appends to a feature's name, innermost first.
SLOT_SUFFIXES = ("__imp", "__log")
ONE_HOT_MARKER = "__ohe"
INDEX_SUFFIX = "__idx"
PD_COL = "pd"
REASON_CODES_COL = "reason_codes"
TREE_MODELS = (DecisionTreeRegressionModel, GBTClassificationModel, GBTRegressionModel)
_ORIGINAL = ""  # permutation_importance's tag of the unshuffled copy
RANK_DECIMALS = 12  # contributions are ranked to this many decimal places (top_features)


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
    writes into ``leafCol`` (see ``number_leaves``). ``cover`` is the count of training
    rows that reached the node, which TreeSHAP needs (Spark's unweighted
    ``impurityStats().rawCount()``; of the sampled rows for a GBT tree); a parent's cover
    is its children's sum.
    """

    id: int
    prediction: float
    feature: int | None = None
    threshold: float | None = None
    left_categories: frozenset[float] | None = None
    left: Node | None = None
    right: Node | None = None
    leaf_index: int | None = None
    cover: float | None = None

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
    ``leafCol`` numbers them. A node's ``cover`` is its ``impurityStats().rawCount()``: the
    training rows that reached it, unweighted. The weighted count (``count()``, the sum
    of ``weightCol``) counts each bad as the class weight's worth of applicants; the
    explanation's background must be the applicants as they are, so that E[PD] is the
    book's mean PD and not that of a population over-weighted with bads.
    """
    ids = itertools.count()

    def convert(java_node) -> Node:
        node_id = next(ids)
        prediction = float(java_node.prediction())
        cover = float(java_node.impurityStats().rawCount())
        if java_node.getClass().getSimpleName() == "LeafNode":
            return Node(node_id, prediction, cover=cover)
        split = java_node.split()
        kind = split.getClass().getSimpleName()
        node = Node(node_id, prediction, feature=int(split.featureIndex()), cover=cover)
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


# A leaf's table has 2**k x k cells for the k distinct features on its path (k <= the
# depth; the project tunes trees to depth 8 at most): 12 is 390 KB a leaf.
MAX_PATH_FEATURES = 12
# Cells of the per-chunk work arrays (rows x path conditions, rows x terms) in shap_values.
_CHUNK_CELLS = 1 << 21


def leaf_game_shapley(ratios: Sequence[float]) -> np.ndarray:
    """Exact Shapley values of one leaf's game, per unit of leaf value: (2**k x k).

    With path-dependent TreeSHAP a leaf adds to a coalition S's value its value times,
    for each player j on its path, b_j if j is in S, else r_j: b_j is 1 when the row
    satisfies every split on j along the path (else 0), r_j = ``ratios[j]`` the product
    of cover(child) / cover(node) over those splits (the share of training rows that go
    the leaf's way). Players not on the path do not change the leaf's share. Row p of the
    table is the pattern b_j = (p >> j) & 1. Player i gets (b_i - r_i) * sum over sizes s
    of s! (k-1-s)! / k! * e_s, where e_s, the coefficient of t**s in prod over j != i of
    (r_j + b_j t), sums the other players' factors over every coalition of size s.
    """
    k = len(ratios)
    if k > MAX_PATH_FEATURES:
        raise ValueError(
            f"a leaf's path splits on {k} features: TreeSHAP tables stop at {MAX_PATH_FEATURES}"
        )
    bits = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(float)
    weights = np.array(
        [math.factorial(s) * math.factorial(k - 1 - s) / math.factorial(k) for s in range(k)]
    )
    table = np.empty((2**k, k))
    for i in range(k):
        coef = np.zeros((2**k, k))
        coef[:, 0] = 1.0
        for j in range(k):
            if j != i:
                coef[:, 1:] = coef[:, 1:] * ratios[j] + coef[:, :-1] * bits[:, j : j + 1]
                coef[:, 0] *= ratios[j]
        table[:, i] = (bits[:, i] - ratios[i]) * (coef * weights).sum(axis=1)
    return table


@dataclass
class TreeShap:
    """Path-dependent TreeSHAP of (weighted) trees, compiled for ``shap_values``.

    The players are the ORIGINAL features (``players``, sorted), not the slots: all the
    slots of one feature (a categorical's one-hot levels) are one player, so a coalition
    knows or hides the whole feature and a categorical is credited once. (Shapley values
    over slots, summed per feature afterwards, would differ where a path splits on two
    levels of one categorical.) ``expected_value`` is E[f]: the leaf values averaged by
    cover, summed over the trees.

    A term is one (leaf, player) pair of a leaf's game, a condition one split on the way
    to the leaf; a leaf's terms are contiguous, and so are a term's conditions.
    """

    players: list[str]
    expected_value: float
    width: int  # slots of the feature vectors
    split_slot: np.ndarray  # (splits,) the slot each internal node reads
    split_threshold: np.ndarray  # (splits,) NaN for a categorical split
    categorical: list[tuple[int, np.ndarray]]  # (split, its left categories)
    condition_split: np.ndarray  # (conditions,) the split of each condition
    condition_left: np.ndarray  # (conditions,) the leaf's path goes left there
    term_first: np.ndarray  # (terms,) each term's first condition
    term_more: list[tuple[np.ndarray, np.ndarray]]  # j = 1, 2..: (terms with > j, condition)
    leaf_first: np.ndarray  # (leaves,) each leaf's first term: bit 0 of its pattern
    leaf_more: list[tuple[np.ndarray, np.ndarray]]  # bit j = 1, 2..: (leaves with > j, term)
    cell_leaf: np.ndarray  # (terms, by player) the term's leaf
    cell_base: np.ndarray  # (terms, by player) where the term's table column starts
    tables: np.ndarray  # per leaf, its (k x 2**k) table scaled by its value, flattened
    player_start: np.ndarray  # where each player with terms starts, terms by player
    player_index: np.ndarray  # that player's column


def tree_shap(
    trees: list[Node],
    tree_weights: list[float],
    slot_names: list[str],
    leaf_value: Callable[[Node], float] | None = None,
) -> TreeShap:
    """Compile trees (with covers) for ``shap_values``: the explained function is
    sum over trees of ``weight * leaf_value(leaf)`` (``leaf_value`` default: the leaf's
    prediction). ``slot_names[slot]`` is the original feature of a slot."""
    if len(trees) != len(tree_weights):
        raise ValueError(f"{len(trees)} trees but {len(tree_weights)} tree weights")
    players = sorted(set(slot_names))
    player_of = [players.index(name) for name in slot_names]
    splits: list[Node] = []
    conditions: list[tuple[int, bool]] = []
    terms: list[tuple[int, int, int, int, int]] = []  # first, count, leaf, cell, player
    leaf_terms: list[tuple[int, int]] = []  # first term, count
    tables: list[np.ndarray] = []
    cells = 0
    expected = 0.0

    def visit(node: Node, path: list[tuple[int, bool, float]], weight: float) -> None:
        nonlocal cells, expected
        if node.is_leaf:
            explained = node.prediction if leaf_value is None else leaf_value(node)
            value = weight * explained
            games: dict[int, tuple[list[tuple[int, bool]], float]] = {}
            for split, left, ratio in path:
                player = player_of[splits[split].feature]
                done, product = games.get(player, ([], 1.0))
                games[player] = ([*done, (split, left)], product * ratio)
            expected += value * math.prod(r for _, _, r in path)
            if not games:  # a tree that is one leaf credits nobody
                return
            order = sorted(games)
            table = value * leaf_game_shapley([games[p][1] for p in order])
            leaf_terms.append((len(terms), len(order)))
            for position, player in enumerate(order):
                path_conditions = games[player][0]
                terms.append(
                    (len(conditions), len(path_conditions), len(leaf_terms) - 1,
                     cells + position * len(table), player)
                )  # fmt: skip
                conditions.extend(path_conditions)
            tables.append(table.T.ravel())
            cells += table.size
            return
        for child in (node.left, node.right):
            if node.cover is None or child.cover is None or not node.cover > 0:
                raise ValueError(
                    f"node {node.id} or its children have no cover: copy the tree with "
                    "tree_from_spark, or set Node.cover"
                )
        splits.append(node)
        index = len(splits) - 1
        visit(node.left, [*path, (index, True, node.left.cover / node.cover)], weight)
        visit(node.right, [*path, (index, False, node.right.cover / node.cover)], weight)

    for tree, weight in zip(trees, tree_weights, strict=True):
        visit(tree, [], float(weight))
    term = np.array(terms, dtype=np.int64).reshape(-1, 5)
    leaf = np.array(leaf_terms, dtype=np.int64).reshape(-1, 2)
    by_player = np.argsort(term[:, 4], kind="stable")
    sorted_players = term[by_player, 4]
    starts = np.flatnonzero(np.r_[True, sorted_players[1:] != sorted_players[:-1]])
    if not len(sorted_players):
        starts = np.zeros(0, dtype=np.int64)
    return TreeShap(
        players=players,
        expected_value=expected,
        width=len(slot_names),
        split_slot=np.array([s.feature for s in splits], dtype=np.int64),
        split_threshold=np.array(
            [np.nan if s.threshold is None else s.threshold for s in splits], dtype=float
        ),
        categorical=[
            (i, np.array(sorted(s.left_categories), dtype=float))
            for i, s in enumerate(splits)
            if s.threshold is None
        ],
        condition_split=np.array([c[0] for c in conditions], dtype=np.int64),
        condition_left=np.array([c[1] for c in conditions], dtype=bool),
        term_first=term[:, 0],
        term_more=[
            (np.flatnonzero(term[:, 1] > j), term[term[:, 1] > j, 0] + j)
            for j in range(1, int(term[:, 1].max(initial=0)))
        ],
        leaf_first=leaf[:, 0],
        leaf_more=[
            (np.flatnonzero(leaf[:, 1] > j), leaf[leaf[:, 1] > j, 0] + j)
            for j in range(1, int(leaf[:, 1].max(initial=0)))
        ],
        cell_leaf=term[by_player, 2],
        cell_base=term[by_player, 3],
        tables=np.concatenate(tables) if tables else np.zeros(0),
        player_start=starts,
        player_index=sorted_players[starts],
    )


def shap_values(explainer: TreeShap, vectors: np.ndarray) -> np.ndarray:
    """(rows x ``explainer.players``) TreeSHAP contributions of each row of ``vectors``
    (rows x slots); a row's contributions sum to f(row) - ``explainer.expected_value``.

    A split sends a row left as Spark does (``value <= threshold``, or ``value`` in the
    left categories; NaN goes right). Each row is computed on its own, in a fixed order,
    so a row gets bit-for-bit the same values alone as in any batch.
    """
    x = np.asarray(vectors, dtype=float)
    if x.ndim != 2 or x.shape[1] != explainer.width:
        raise ValueError(f"expected rows of {explainer.width} slots, got shape {x.shape}")
    out = np.zeros((len(x), len(explainer.players)))
    size = max(len(explainer.cell_leaf), len(explainer.condition_split))
    if size == 0:
        return out
    step = max(1, _CHUNK_CELLS // size)
    for start in range(0, len(x), step):
        out[start : start + step] = _shap_chunk(explainer, x[start : start + step])
    return out


def _shap_chunk(e: TreeShap, x: np.ndarray) -> np.ndarray:
    goes_left = x[:, e.split_slot] <= e.split_threshold  # NaN (either side) goes right
    for split, categories in e.categorical:
        goes_left[:, split] = np.isin(x[:, e.split_slot[split]], categories)
    met = goes_left[:, e.condition_split] == e.condition_left
    agrees = met[:, e.term_first]  # b_j of each term: every condition on j is met
    for terms, condition in e.term_more:
        agrees[:, terms] &= met[:, condition]
    pattern = agrees[:, e.leaf_first].astype(np.int64)  # each leaf's row of its table
    for j, (leaves_, term) in enumerate(e.leaf_more, start=1):
        pattern[:, leaves_] += agrees[:, term].astype(np.int64) << j
    values = e.tables[e.cell_base + pattern[:, e.cell_leaf]]  # terms sorted by player
    out = np.zeros((len(x), len(e.players)))
    out[:, e.player_index] = np.add.reduceat(values, e.player_start, axis=1)
    return out


def probability_of_default(p: float, bad_weight: float = 1.0, platt=None) -> float:
    """``stages.ProbabilityOfDefault`` on one scalar tree output, in Python: clipped to
    [0, 1], odds divided by ``bad_weight``, then Platt ``(a, b)`` if given."""
    p = min(max(p, 0.0), 1.0)
    if bad_weight != 1.0:
        p = p / (p + (1.0 - p) * bad_weight)
    if platt is not None:
        a, b = platt
        q = min(max(p, PLATT_CLIP), 1.0 - PLATT_CLIP)
        p = 1.0 / (1.0 + math.exp(-(a * math.log(q / (1.0 - q)) + b)))
    return p


def explained_leaf_value(
    stages: Sequence[Transformer], stage: Transformer
) -> Callable[[Node], float] | None:
    """What the reason codes of tree ``stage`` explain, as a map of its leaves.

    A probability tree (``DecisionTreeRegressionModel``) fitted with weighted bads
    predicts a weighted bad rate; the ``ProbabilityOfDefault`` stage after it that reads
    its prediction turns that into the PD, and the codes explain the PD: each leaf's
    value goes through the same correction first, or is the stage's smoothed PD of that
    leaf (by its ``leaf_index``) when the stage has them. A GBT (or a tree no such stage
    reads) is explained as it is: a GBT in margin space, where its trees add up.
    """
    if not isinstance(stage, DecisionTreeRegressionModel):
        return None
    source = stage.getPredictionCol()
    stages = list(stages)
    position = next((i for i, s in enumerate(stages) if s is stage), -1)
    for later in stages[position + 1 :]:
        if isinstance(later, ProbabilityOfDefault) and later.getOrDefault(later.inputCol) == source:
            return functools.partial(
                leaf_probability_of_default,
                bad_weight=float(later.getOrDefault(later.badWeight)),
                platt=later.platt,
                leaf_pds=later.leaves[1] if later.leaves is not None else None,
            )
    return None


def leaf_probability_of_default(
    leaf: Node, bad_weight: float = 1.0, platt=None, leaf_pds: Sequence[float] | None = None
) -> float:
    """``stages.ProbabilityOfDefault`` on one leaf of a probability tree: the stage's
    smoothed PD of the leaf when it has them, else its prediction corrected, then Platt."""
    if leaf_pds is None:
        return probability_of_default(leaf.prediction, bad_weight, platt)
    return probability_of_default(float(leaf_pds[leaf.leaf_index]), 1.0, platt)


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


def reason_candidates(slot_names: Sequence[str], not_reasons: Sequence[str] = ()) -> list[str]:
    """The original features a reason code may name, sorted (ties then break by name)."""
    return sorted(set(slot_names) - set(not_reasons))


def top_features(totals: np.ndarray, features: list[str], top: int) -> list[list[str]]:
    """Per row of ``totals`` (rows x ``features``, ``features`` sorted by name), the ``top``
    positive features, largest first; the stable sort breaks ties by name.

    Totals are rounded to ``RANK_DECIMALS`` places first: Shapley sums are not exact in
    floating point, so two contributions equal in arithmetic can differ in the last bit
    and a zero can come out as 1e-17; rounded, those tie (and break by name) or are 0."""
    totals = np.round(totals, RANK_DECIMALS)
    order = np.argsort(-totals, axis=1, kind="stable")[:, :top]
    ranked = np.take_along_axis(totals, order, axis=1)
    names = np.asarray(features, dtype=object)
    return [list(names[o[v > 0]]) for o, v in zip(order, ranked, strict=True)]


def shap_reason_codes(
    explainer: TreeShap, vectors: np.ndarray, features: list[str], top: int
) -> list[list[str]]:
    """Per row of ``vectors``, the ``top`` of ``features`` (sorted by name, a subset of
    ``explainer.players``) with the largest positive TreeSHAP contributions. The Spark
    UDF and the local scorer both rank with this function."""
    columns = [explainer.players.index(f) for f in features]
    return top_features(shap_values(explainer, vectors)[:, columns], features, top)


def tree_reason_codes(
    predictions: DataFrame,
    trees: list[Node],
    tree_weights: list[float],
    slot_names: list[str],
    features_col: str = "features",
    top: int = 3,
    not_reasons: Sequence[str] = (),
    leaf_value: Callable[[Node], float] | None = None,
) -> DataFrame:
    """Add ``reason_codes`` (array<string>) from the trees' TreeSHAP contributions on
    each row's feature vector ``features_col``; features in ``not_reasons`` are never
    ranked (they still play in the game), so the next ones take their places.

    ``leaf_value`` maps a leaf to what is explained (a probability tree's PD:
    ``explained_leaf_value``). The compiled tables (``tree_shap``) ship with a
    pandas UDF, which computes the contributions and ranks them with numpy, a batch at
    a time. (A SQL expression of literal lookups was measured for path contributions:
    fine for one tree, but a GBT's hundreds of lookups outgrow Java's 64 KB method limit
    and run interpreted, ~100x slower.)
    """
    explainer = tree_shap(trees, tree_weights, slot_names, leaf_value)
    features = reason_candidates(slot_names, not_reasons)

    @F.pandas_udf(ArrayType(StringType()))
    def codes(vectors: pd.Series) -> pd.Series:
        if vectors.empty:
            return pd.Series([], dtype=object)
        matrix = np.stack(vectors.to_numpy()).astype(float)
        return pd.Series(shap_reason_codes(explainer, matrix, features, top))

    return predictions.withColumn(REASON_CODES_COL, codes(vector_to_array(F.col(features_col))))


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
    """Score ``df`` with a tree pipeline and add ``reason_codes``: TreeSHAP on the tree
    stage's feature vector ``features_col`` (the assembled, named vector), explaining the
    PD for a probability tree followed by ``ProbabilityOfDefault``."""
    _, stage = tree_stage(pipeline_model)
    scored = pipeline_model.transform(df)
    trees, weights = spark_trees(stage)
    slot_names = slot_features(scored, features_col)
    leaf_value = explained_leaf_value(pipeline_model.stages, stage)
    return tree_reason_codes(
        scored, trees, weights, slot_names, features_col, top, leaf_value=leaf_value
    )


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
