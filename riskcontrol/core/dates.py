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
    """The observation date: ``RISK_AS_OF`` (an Airflow run's logical date) when set,
    else the day after the latest application in silver."""
    first, latest = (
        lakehouse.read(spark, SILVER_APPLICATIONS, settings)
        .agg(F.min("application_date"), F.max("application_date"))
        .first()
    )
    if latest is None:
        raise RuntimeError("silver.applications is empty: nothing to build features from")
    if settings.as_of is None:
        return latest + dt.timedelta(days=1)
    if settings.as_of <= first:
        raise RuntimeError(
            f"RISK_AS_OF is {settings.as_of}, but the first application in silver is of "
            f"{first}: nothing happened before that day. Run a later day, or leave "
            "RISK_AS_OF empty to run as of the data's last day."
        )
    return settings.as_of


def observation_time(spark: SparkSession, settings: Settings) -> dt.datetime:
    """The data's "now": midnight of ``as_of_date``."""
    return dt.datetime.combine(as_of_date(spark, settings), dt.time())


def pit_dpd(due_date: Column, paid_date: Column, as_of: Column) -> Column:
    """Days past due of an installment as seen on ``as_of`` (0 if not yet due or on time)."""
    settled = F.least(F.coalesce(paid_date, as_of), as_of)
    return F.when(due_date >= as_of, 0).otherwise(
        F.greatest(F.datediff(settled, due_date), F.lit(0))
    )
