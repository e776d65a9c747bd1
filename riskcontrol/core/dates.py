"""The dates every tier agrees on: the data's as-of date, its observation time, and days
past due as seen on a given day."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    SILVER_APPLICATIONS,
)
from riskcontrol.core.config import Settings


def as_of_date(spark: SparkSession, settings: Settings) -> dt.date:
    """The observation date: the day after the latest application in silver."""
    latest = (
        lakehouse.read(spark, SILVER_APPLICATIONS, settings)
        .agg(F.max("application_date"))
        .first()[0]
    )
    if latest is None:
        raise RuntimeError("silver.applications is empty: nothing to build features from")
    return latest + dt.timedelta(days=1)


def observation_time(spark: SparkSession, settings: Settings) -> dt.datetime:
    """The data's "now": midnight of ``as_of_date`` (the day after the last application)."""
    return dt.datetime.combine(as_of_date(spark, settings), dt.time())


def pit_dpd(due_date: Column, paid_date: Column, as_of: Column) -> Column:
    """Days past due of an installment as seen on ``as_of`` (0 if not yet due or on time)."""
    settled = F.least(F.coalesce(paid_date, as_of), as_of)
    return F.when(due_date >= as_of, 0).otherwise(
        F.greatest(F.datediff(settled, due_date), F.lit(0))
    )
