"""Collect tier, CSV file drops: payment-processor settlement files -> ``bronze.settlements``.

Processors send ``settlement_YYYYMM.csv`` files under ``$RISK_DATA_DIR/landing/settlements``
that differ from month to month: English or Chinese headers (``settlement_id`` /
``Settlement ID`` / ``结算单号``, in any column order), UTF-8 with or without a byte-order
mark or GBK, RFC 4180 quoting with doubled quotes and line breaks inside the memo, money
as ``¥1,234.50`` / ``"1,234.50"`` / ``RMB 1234.5`` / ``1234.50元`` and dates as
``2024-03-05 10:21:33`` / ``2024/3/5 10:21`` / ``05-Mar-2024`` / ``20240305`` /
``2024年3月5日 10:21``.

``collect_settlements(run)`` detects each file's encoding (BOM, then UTF-8, else GBK),
maps its header to the canonical names, reads it with Spark's CSV reader, parses
``amount`` and ``paid_at`` while keeping the raw strings (``amount_raw``,
``paid_at_raw``), quarantines rows that do not parse (rule and reason, never dropped)
and MERGEs the rest insert-only on (settlement_id, _content_hash): a re-run lands nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from riskcontrol.core.catalog import BRONZE_SETTLEMENTS, SETTLEMENT_COLUMNS
from riskcontrol.core.landing import (
    Rule,
    checked_rows,
    land_rows,
    tag_failures,
    with_provenance,
)
from riskcontrol.core.readers import CORRUPT, read_csv, sniff_csv
from riskcontrol.core.runs import Run, StepCounts
from riskcontrol.core.values import parse_money, parse_timestamp

STAGE = "collect"
SOURCE = "files:settlements"
FOLDER = "settlements"

# Header titles seen in processors' files, compared without case, blanks or punctuation.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "settlement_id": ("settlementid", "settlementno", "结算单号", "交易流水号", "流水号"),
    "loan_id": ("loanid", "loanno", "借据号", "借款编号", "贷款编号"),
    "paid_at": ("paidat", "paidtime", "paymenttime", "交易时间", "支付时间", "还款时间"),
    "amount": ("amount", "paidamount", "金额", "交易金额", "还款金额"),
    "currency": ("currency", "币种"),
    "channel": ("channel", "paymentchannel", "支付渠道", "渠道"),
    "payer_account": ("payeraccount", "payer", "付款账户", "付款账号"),
    "memo": ("memo", "remark", "note", "备注", "附言"),
}
_ALIAS = {alias: canon for canon, aliases in HEADER_ALIASES.items() for alias in aliases}
# Every date format the processors use; a value parses with the first that fits it whole.
PAID_AT_FORMATS = (
    "yyyy-MM-dd HH:mm:ss",
    "yyyy/M/d H:mm",
    "yyyy/M/d H:mm:ss",
    "dd-MMM-yyyy",
    "yyyyMMdd",
    "yyyy'年'M'月'd'日' H:mm",
)


def _alias_key(title: str) -> str:
    return re.sub(r"[\W_]+", "", title.replace("\ufeff", "")).lower()


def settlement_columns(header: Sequence[str]) -> list[str]:
    """Canonical column names of a settlement file's header titles, in file order.

    Raises ``ValueError`` naming the titles no alias matches, or a missing column.
    """
    names = [_ALIAS.get(_alias_key(h)) for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n is None]
    missing = [c for c in SETTLEMENT_COLUMNS if c not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise ValueError(
            f"settlement header {list(header)} does not map: unknown titles {unknown}, "
            f"missing columns {missing}; known titles: "
            + "; ".join(f"{c} <- {', '.join(a)}" for c, a in HEADER_ALIASES.items())
        )
    return names  # type: ignore[return-value]


def parse_settlements(df: DataFrame) -> DataFrame:
    """Raw string columns -> typed ``paid_at`` (timestamp) and ``amount`` (double), with
    the strings kept as ``paid_at_raw`` and ``amount_raw``."""
    return df.withColumns(
        {
            "paid_at_raw": F.col("paid_at"),
            "amount_raw": F.col("amount"),
            "paid_at": parse_timestamp(F.btrim(F.col("paid_at")), PAID_AT_FORMATS),
            "amount": parse_money(F.col("amount")),
        }
    )


def settlement_checks() -> list[Rule]:
    """The rules a settlement row must pass, in order (a row is quarantined once, under
    the first it breaks); reasons quote the offending value."""

    def blank(c: str):
        return F.coalesce(F.btrim(F.col(c)), F.lit("")) == ""

    return [
        Rule(
            "malformed_row",
            F.col(CORRUPT).isNull(),
            F.format_string("record does not split into the header's 8 fields: %s", F.col(CORRUPT)),
        ),
        Rule("missing_settlement_id", ~blank("settlement_id"), F.lit("settlement_id is empty")),
        Rule("missing_loan_id", ~blank("loan_id"), F.lit("loan_id is empty")),
        Rule(
            "unparseable_amount",
            F.col("amount").isNotNull(),
            F.format_string("amount '%s' is not a money amount", F.col("amount_raw")),
        ),
        Rule(
            "unparseable_date",
            F.col("paid_at").isNotNull(),
            F.format_string(
                "paid_at '%s' matches none of the formats %s",
                F.col("paid_at_raw"),
                F.lit(" | ".join(PAID_AT_FORMATS)),
            ),
        ),
    ]


def collect_settlements(run: Run, folder: Path | None = None) -> StepCounts:
    """Land every ``*.csv`` under ``landing/settlements`` (or ``folder``) in
    ``bronze.settlements``; one reconciled manifest row (source ``files:settlements``)."""
    folder = Path(folder or run.settings.landing_dir / FOLDER)
    files = sorted(folder.glob("*.csv")) if folder.exists() else []
    if not files:
        raise FileNotFoundError(
            f"no settlement files under {folder}: run `riskctl generate` or drop files there"
        )
    sniffed = [sniff_csv(p) for p in files]
    for f in sniffed:
        settlement_columns(f.header)  # fail before reading anything if a header is unknown
    raw = read_csv(run.spark, sniffed, names=settlement_columns).select(
        *SETTLEMENT_COLUMNS, CORRUPT, "_source_uri"
    )
    # The hash of the row as received, whatever the order of the file's columns.
    df = with_provenance(
        raw,
        run.run_id,
        "files.settlements",
        F.col("_source_uri"),
        hashed=list(SETTLEMENT_COLUMNS),
    )
    record = [c if c not in ("amount", "paid_at") else f"{c}_raw" for c in SETTLEMENT_COLUMNS]
    record += ["_source", "_source_uri", "_content_hash"]
    tagged = tag_failures(parse_settlements(df), settlement_checks())
    checked = checked_rows(tagged, BRONZE_SETTLEMENTS.columns, record).cache()
    try:
        counts, _ = land_rows(
            run,
            checked,
            BRONZE_SETTLEMENTS,
            stage=STAGE,
            source=SOURCE,
            merge_keys=("settlement_id", "_content_hash"),
        )
    finally:
        checked.unpersist()
    return counts
