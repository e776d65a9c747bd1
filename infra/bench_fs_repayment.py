"""Benchmark: the repayment features (``gold.fs_repayment``) of a lakehouse, linear
against the first, quadratic definition; prints figures.

    RISK_HOME=/path/with/a/run python infra/bench_fs_repayment.py [--fractions 0.25,0.5,1]
                                                                   [--reference]

Reads ``silver.loans`` and ``silver.repayments`` of the configured lakehouse (run
``riskctl run`` first), keeps a fraction of its customers (by a hash of the id), and
computes the features to Spark's ``noop`` sink: wall time, output rows, rows per second.
With ``--reference`` the first definition (every snapshot day of a customer joined with
every installment of that customer, ``tests/fsref.py``) runs too, with the size of its
grid. Writes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

from riskcontrol.analyze import feature_store
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import SILVER_LOANS, SILVER_REPAYMENTS
from riskcontrol.core.config import get_settings
from riskcontrol.core.spark import get_spark

CREATED = dt.datetime(2030, 1, 1)


def timed(df) -> tuple[float, int]:
    start = time.perf_counter()
    df.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - start
    return seconds, df.count()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fractions", default="0.25,0.5,1", help="shares of the customers")
    parser.add_argument("--reference", action="store_true", help="time the first definition")
    args = parser.parse_args()
    settings = get_settings()
    spark = get_spark(settings)
    loans = lakehouse.read(spark, SILVER_LOANS, settings).cache()
    lines = lakehouse.read(spark, SILVER_REPAYMENTS, settings).cache()
    print(f"lakehouse {settings.lakehouse_root}: {loans.count():,} loans, {lines.count():,} lines")
    if args.reference:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from fsref import fs_repayment_reference
    print(f"{'share':>6} {'customers':>10} {'lines':>10} {'impl':>10} {'seconds':>8} "
          f"{'rows':>10} {'rows/s':>9}")  # fmt: skip
    for share in (float(x) for x in args.fractions.split(",")):
        keep = F.abs(F.hash("customer_id")) % 1000 < int(share * 1000)
        part = loans.where(keep)
        part_lines = lines.join(part.select("loan_id"), "loan_id", "left_semi")
        customers = part.select("customer_id").distinct().count()
        n_lines = part_lines.count()
        impls = [("linear", feature_store.fs_repayment)]
        if args.reference:
            impls.append(("reference", fs_repayment_reference))
        for name, fn in impls:
            seconds, rows = timed(fn(part, part_lines, CREATED))
            print(f"{share:>6.2f} {customers:>10,} {n_lines:>10,} {name:>10} {seconds:>8.1f} "
                  f"{rows:>10,} {rows / seconds:>9,.0f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
