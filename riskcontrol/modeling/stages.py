"""The project's own Spark ML stages, at a class path that must not move.

Spark ML writes the Python class path of a custom stage into every saved pipeline's
metadata (``"class": "riskcontrol.modeling.stages.ProbabilityOfDefault"``) and imports that
path again when the pipeline is loaded: every registered model version in MLflow depends
on it. Moving or renaming a class here breaks loading of those versions. If a move is ever
unavoidable, leave a module at the old path that re-exports the class, as
``riskcontrol/models.py`` does for versions saved before the sub-package layout.
"""

from __future__ import annotations

from pyspark.ml import Transformer
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

PLATT_CLIP = 1e-6


class ProbabilityOfDefault(Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """``pd`` from a classifier's ``probability`` vector (class 1) or a probability tree's
    scalar prediction, with the odds corrected for the weight bads had during fitting.

    A model fitted with bads weighted ``w`` predicts odds ``w`` times too high; dividing
    the odds by ``w`` (``p / (p + (1 - p) w)``) restores the training bad rate (exact for
    logistic models, a first-order correction for trees and networks).
    """

    inputCol = Param(Params._dummy(), "inputCol", "probability vector or scalar column")
    badWeight = Param(
        Params._dummy(), "badWeight", "weight of bads in fitting", TypeConverters.toFloat
    )
    # Platt scaling after the odds correction: pd = 1 / (1 + exp(-(a * logit(p) + b))),
    # p clipped to [PLATT_CLIP, 1 - PLATT_CLIP]; a = 1, b = 0 (the default, and what a
    # version saved before these params loads with) leaves p as it is.
    plattA = Param(Params._dummy(), "plattA", "Platt slope on logit(p)", TypeConverters.toFloat)
    plattB = Param(Params._dummy(), "plattB", "Platt intercept", TypeConverters.toFloat)
    # A probability tree's smoothed leaves: the PD of each leaf, by the number Spark writes
    # into the tree's ``leafCol`` (``leafCol`` here). Set, they replace the odds-corrected
    # prediction (``models.smooth_leaves``: a leaf without a training bad is not PD 0);
    # empty (the default, and what a version saved before these params loads with), the
    # prediction is used as above.
    leafCol = Param(
        Params._dummy(), "leafCol", "the tree's leaf index column", TypeConverters.toString
    )
    leafPd = Param(
        Params._dummy(), "leafPd", "PD of each leaf, by leaf index", TypeConverters.toListFloat
    )

    def __init__(
        self,
        inputCol: str = "probability",
        badWeight: float = 1.0,
        plattA: float = 1.0,
        plattB: float = 0.0,
        leafCol: str = "",
        leafPd: list[float] | None = None,
    ):
        super().__init__()
        self._setDefault(
            inputCol="probability", badWeight=1.0, plattA=1.0, plattB=0.0, leafCol="", leafPd=[]
        )
        self._set(
            inputCol=inputCol,
            badWeight=badWeight,
            plattA=plattA,
            plattB=plattB,
            leafCol=leafCol,
            leafPd=list(leafPd or []),
        )

    @property
    def leaves(self) -> tuple[str, list[float]] | None:
        """(leaf column, PD of each leaf) when the stage reads smoothed leaves, else None."""
        col, pds = self.getOrDefault(self.leafCol), list(self.getOrDefault(self.leafPd))
        return (col, pds) if col and pds else None

    @property
    def platt(self) -> tuple[float, float] | None:
        """(a, b) when the stage rescales its PDs, else None."""
        a, b = self.getOrDefault(self.plattA), self.getOrDefault(self.plattB)
        return None if (a, b) == (1.0, 0.0) else (a, b)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        name = self.getOrDefault(self.inputCol)
        w = self.getOrDefault(self.badWeight)
        raw = (
            vector_to_array(name)[1]
            if not isinstance(dataset.schema[name].dataType, T.DoubleType)
            else F.col(name)
        )
        p = F.least(F.greatest(raw, F.lit(0.0)), F.lit(1.0))
        corrected = (p if w == 1.0 else p / (p + (F.lit(1.0) - p) * F.lit(w))).cast("double")
        if self.leaves is not None:
            col, pds = self.leaves
            table = F.array(*[F.lit(float(v)) for v in pds])
            corrected = F.element_at(table, F.col(col).cast("int") + F.lit(1)).cast("double")
        if self.platt is not None:
            a, b = self.platt
            q = F.least(F.greatest(corrected, F.lit(PLATT_CLIP)), F.lit(1.0 - PLATT_CLIP))
            z = F.lit(a) * F.log(q / (F.lit(1.0) - q)) + F.lit(b)
            corrected = F.lit(1.0) / (F.lit(1.0) + F.exp(-z))
        # ``prediction`` is what MLflow's pyfunc flavor serves: the PD, not a class.
        return dataset.withColumns({"pd": corrected, "prediction": corrected})
