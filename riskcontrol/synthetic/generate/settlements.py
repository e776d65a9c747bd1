"""Payment-processor settlement files: one CSV row per payment the processor collected.

A row is an installment paid in one go, or one of its two parts; a prepayment (one row
for the principal of every installment it settles, memo ``Prepayment <loan>`` /
``提前还款,借据<loan>``); or collections' recovery on a written-off loan (memo
``Collections recovery <loan>`` / ``催收回款,借据<loan>``), which appears nowhere else.

A lender's payment processor sends a monthly file ``settlement_YYYYMM.csv`` of the
payments it collected. Processors are not careful, and they are not all the same one, so
the files vary by month the way real drops do (``DIALECTS``): English snake_case,
English title-case or Chinese headers (the Chinese ones in another column order),
UTF-8, UTF-8 with a byte-order mark or GBK, LF or CRLF line ends, minimal or
quote-everything RFC 4180 quoting (doubled quotes, commas and line breaks inside the
memo), money as strings with currency symbols and thousands separators, and one of
several date formats. A few rows carry the faults the collect step must quarantine:
an unparseable amount, an unparseable date, an empty loan id, or a row cut short.

Which dialect a month uses depends on the month and the seed only; every other choice
is keyed by the payment's global key (its installment's, times 8, plus its kind), so
the files do not depend on the chunk size. Faults are injected on installment rows
only, so prepayments and recoveries can be summed exactly from the files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskcontrol.core.catalog import SETTLEMENT_COLUMNS
from riskcontrol.synthetic.generate.activity import Lines
from riskcontrol.synthetic.generate.dates import DAY, format_timestamps, month_index
from riskcontrol.synthetic.generate.lending import Applications, Loans
from riskcontrol.synthetic.generate.population import Population
from riskcontrol.synthetic.generate.rng import KeyedRandom

# Rates of the injected faults; a row carries at most one.
UNPARSEABLE_AMOUNT_RATE = 0.002
UNPARSEABLE_DATE_RATE = 0.002
MISSING_LOAN_ID_RATE = 0.001
SHORT_ROW_RATE = 0.001
FAULT_KINDS = (
    "settlements_unparseable_amount",
    "settlements_unparseable_date",
    "settlements_missing_loan_id",
    "settlements_short_rows",
)
BAD_AMOUNTS = ("#VALUE!", "待核实", "ERR")
BAD_DATES = ("#N/A", "0000-00-00 00:00:00", "昨天")
SHORT_ROW_FIELDS = 3  # a cut row keeps only its first three fields

CANONICAL = SETTLEMENT_COLUMNS
_TITLE_HEADER = (
    "Settlement ID",
    "Loan No",
    "Paid At",
    "Amount",
    "Currency",
    "Channel",
    "Payer Account",
    "Memo",
)
_CHANNELS_EN = ("alipay", "wechat_pay", "unionpay", "bank_transfer")
_CHANNELS_ZH = ("支付宝", "微信支付", "银联代扣", "银行转账")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CARD_BINS = ("622202", "622848", "621700", "622588", "621483", "601382")


@dataclass(frozen=True)
class Dialect:
    """How one processor writes its file."""

    name: str
    header: tuple[str, ...]  # column titles, in file order
    order: tuple[int, ...]  # index into CANONICAL of each file column
    encoding: str  # Python codec; "utf-8-sig" writes a byte-order mark
    newline: str
    quote_all: bool
    date_style: str
    money_styles: tuple[str, ...]
    currency: str
    chinese: bool


_IDENTITY = tuple(range(len(CANONICAL)))
_ZH_ORDER = (0, 2, 1, 3, 4, 5, 6, 7)  # 结算单号, 交易时间, 借据号, ...
DIALECTS: tuple[Dialect, ...] = (
    Dialect(
        "snake_utf8",
        CANONICAL,
        _IDENTITY,
        "utf-8",
        "\n",
        False,
        "iso",
        ("plain", "thousands"),
        "CNY",
        False,
    ),
    Dialect(
        "title_bom_crlf",
        _TITLE_HEADER,
        _IDENTITY,
        "utf-8-sig",
        "\r\n",
        True,
        "slash",
        ("yen", "rmb"),
        "RMB",
        False,
    ),
    Dialect(
        "chinese_gbk",
        ("结算单号", "交易时间", "借据号", "金额", "币种", "支付渠道", "付款账户", "备注"),
        _ZH_ORDER,
        "gbk",
        "\r\n",
        False,
        "compact",
        ("yuan", "fullwidth_yen"),
        "人民币",
        True,
    ),
    Dialect(
        "title_dmy",
        _TITLE_HEADER,
        _IDENTITY,
        "utf-8",
        "\n",
        False,
        "dmy",
        ("rmb", "thousands", "yen"),
        "CNY",
        False,
    ),
    Dialect(
        "chinese_bom",
        ("结算单号", "交易时间", "借据号", "金额", "币种", "支付渠道", "付款账户", "备注"),
        _ZH_ORDER,
        "utf-8-sig",
        "\r\n",
        True,
        "chinese",
        ("yuan", "thousands", "yen"),
        "人民币",
        True,
    ),
)


def dialect_of(seed: int, month: int) -> Dialect:
    """The dialect of a month's file (a function of the seed and the month only)."""
    return DIALECTS[(month + seed) % len(DIALECTS)]


def header_line(seed: int, month: int) -> str:
    d = dialect_of(seed, month)
    return _join(list(d.header), d.quote_all) + d.newline


def encoding(seed: int, month: int) -> str:
    return dialect_of(seed, month).encoding


def _quote(field: str, always: bool) -> str:
    """RFC 4180: quote a field holding a comma, quote or line break; double inner quotes."""
    if always or "," in field or '"' in field or "\n" in field or "\r" in field:
        return '"' + field.replace('"', '""') + '"'
    return field


def _join(fields: list[str], quote_all: bool) -> str:
    return ",".join(_quote(f, quote_all) for f in fields)


def _money(amount: float, style: str) -> str:
    if style == "plain":
        return f"{amount:.2f}"
    if style == "thousands":
        return f"{amount:,.2f}"
    if style == "yen":
        return f"¥{amount:,.2f}"
    if style == "fullwidth_yen":
        return f"￥{amount:,.2f}"
    if style == "rmb":
        return "RMB " + f"{amount:.2f}".rstrip("0").rstrip(".")
    if style == "yuan":
        return f"{amount:.2f}元"
    raise ValueError(style)


def _date(iso: str, style: str) -> str:
    """Re-format a 'YYYY-MM-DD HH:MM:SS' string."""
    if style == "iso":
        return iso
    y, mo, d, hh, mi = iso[:4], int(iso[5:7]), int(iso[8:10]), int(iso[11:13]), iso[14:16]
    if style == "slash":
        return f"{y}/{mo}/{d} {hh}:{mi}"
    if style == "compact":
        return iso[:4] + iso[5:7] + iso[8:10]
    if style == "dmy":
        return f"{iso[8:10]}-{_MONTHS[mo - 1]}-{y}"
    if style == "chinese":
        return f"{y}年{mo}月{d}日 {hh}:{mi}"
    raise ValueError(style)


PREPAYMENT_MEMO = ("Prepayment ", "提前还款,借据")  # + the loan id
RECOVERY_MEMO = ("Collections recovery ", "催收回款,借据")  # + the loan id
_PREPAYMENT, _RECOVERY = 5, 6  # memo kinds of the rows that are no installment's


def _memo(kind: int, d: Dialect, k: int, term: int, loan_id: str, ref: int) -> str:
    """Free text as payment operators type it: commas, quotes and line breaks included."""
    if kind == _PREPAYMENT:
        return PREPAYMENT_MEMO[d.chinese] + loan_id
    if kind == _RECOVERY:
        return RECOVERY_MEMO[d.chinese] + loan_id
    if kind == 0:
        return f"第{k}期还款" if d.chinese else f"Installment {k} of {term}"
    if kind == 1:
        if d.chinese:
            return f"还款,借据{loan_id},第{k}/{term}期"
        return f"Repayment {loan_id}, installment {k}"
    if kind == 2:
        return '客户备注:"提前还款"' if d.chinese else 'Auto-debit "OK"'
    if kind == 3:
        if d.chinese:
            return f"批次{ref % 1000:03d}\n流水号{ref}"
        return f"Batch {ref % 1000:03d}\nRef {ref}"
    return ""


def settlement_lines(
    seed: int,
    pop: Population,
    apps: Applications,
    loans: Loans,
    loan_ids: list[str],
    first_settlement: int,
) -> tuple[Lines, dict[str, int]]:
    """One settlement row per payment before ``as_of``, ids from ``first_settlement``, in
    loan then time order.

    Returns the rows (each ending in its file's line break) with their month, and the
    exact number of rows carrying each fault of ``FAULT_KINDS``.
    """
    rng = KeyedRandom(seed, "settlement")
    loan_key_all = apps.key[loans.app]
    inst_key = loan_key_all[loans.inst_loan] * 32 + loans.inst_no
    part = np.flatnonzero(loans.part_ts >= 0)
    final = np.flatnonzero((loans.settled_by == 0) | (loans.settled_by == 1))
    pre = np.flatnonzero(loans.prepay_ts >= 0)
    rec = loans.recovery_loan
    loan = np.concatenate([loans.inst_loan[part], loans.inst_loan[final], pre, rec])
    k = np.concatenate([loans.inst_no[part], loans.inst_no[final], np.zeros(len(pre) + len(rec))])
    k = k.astype(np.int64)
    paid_ts = np.concatenate(
        [loans.part_ts[part], loans.paid_ts[final], loans.prepay_ts[pre], loans.recovery_ts]
    )
    amount = np.concatenate(
        [
            loans.part_amount[part],
            loans.final_amount[final],
            loans.prepay_amount[pre],
            loans.recovery_amount,
        ]
    )
    key = np.concatenate(
        [
            inst_key[part] * 8 + 1,
            inst_key[final] * 8,
            loan_key_all[pre] * 256 + 2,
            loans.recovery_key,
        ]
    )
    special = np.concatenate(
        [
            np.zeros(len(part) + len(final), dtype=np.int64),
            np.full(len(pre), _PREPAYMENT),
            np.full(len(rec), _RECOVERY),
        ]
    )
    order = np.lexsort((key, paid_ts, loan))
    loan, k, paid_ts, amount, key, special = (
        a[order] for a in (loan, k, paid_ts, amount, key, special)
    )
    loan_key = loan_key_all[loan]
    month = month_index(paid_ts // DAY)
    times = format_timestamps(paid_ts)
    term = loans.term[loan]

    lrng = KeyedRandom(seed, "settlement_payer")
    channel = lrng.choice(loan_key, [0.45, 0.25, 0.2, 0.1], "channel")
    card_bin = lrng.integers(loan_key, 0, len(_CARD_BINS), "card_bin")
    card_tail = lrng.integers(loan_key, 0, 10_000, "card_tail")
    customer = apps.customer[loans.app[loan]]
    memo_kind = np.where(special > 0, special, rng.choice(key, [0.5, 0.2, 0.1, 0.1, 0.1], "memo"))
    ref = rng.integers(key, 10**11, 10**12, "ref")
    style_u = rng.uniform(key, "money_style")
    u = rng.uniform(key, "fault")
    cuts = np.cumsum(
        [UNPARSEABLE_AMOUNT_RATE, UNPARSEABLE_DATE_RATE, MISSING_LOAN_ID_RATE, SHORT_ROW_RATE]
    )
    fault = np.where(special > 0, 4, np.searchsorted(cuts, u, side="right"))  # 4: none
    bad_value = rng.integers(key, 0, 3, "bad_value")

    dialects = {m: dialect_of(seed, m) for m in set(month.tolist())}
    text = []
    for i, (m, ts, a, ch, b, t, c, mk, r, su, f, bv, kk, tm, lo) in enumerate(
        zip(
            month.tolist(),
            times,
            amount.tolist(),
            channel.tolist(),
            card_bin.tolist(),
            card_tail.tolist(),
            customer.tolist(),
            memo_kind.tolist(),
            ref.tolist(),
            style_u.tolist(),
            fault.tolist(),
            bad_value.tolist(),
            k.tolist(),
            term.tolist(),
            loan.tolist(),
            strict=True,
        )
    ):
        d = dialects[m]
        loan_id = loan_ids[lo]
        if ch == 0 or ch == 1:  # wallets show the masked phone number
            mobile = pop.mobile[c]
            account = f"{mobile[:3]}****{mobile[-4:]}"
        else:
            account = f"{_CARD_BINS[b]}******{t:04d}"
        row = [
            f"{ts[:4]}{ts[5:7]}{ts[8:10]}{first_settlement + i + 1:010d}",
            "" if f == 2 else loan_id,
            BAD_DATES[bv] if f == 1 else _date(ts, d.date_style),
            BAD_AMOUNTS[bv] if f == 0 else _money(a, d.money_styles[int(su * len(d.money_styles))]),
            d.currency,
            (_CHANNELS_ZH if d.chinese else _CHANNELS_EN)[ch],
            account,
            _memo(mk, d, kk, tm, loan_id, r),
        ]
        fields = [row[j] for j in d.order]
        if f == 3:
            fields = fields[:SHORT_ROW_FIELDS]
        text.append(_join(fields, d.quote_all) + d.newline)
    counts = np.bincount(fault, minlength=5)
    faults = {kind: int(counts[j]) for j, kind in enumerate(FAULT_KINDS)}
    return Lines(month=month, text=text, faults=sum(faults.values())), faults
