"""Score one application in Python: the champion's fitted Spark pipeline, evaluated locally.

A one-row Spark job spends about a second planning and collecting, which single-application
scoring cannot afford. ``LocalScorer.from_champion`` reads every fitted parameter of the
champion's ``PipelineModel`` once (imputation medians, string indexes, one-hot sizes, the
assembler's order, scaler statistics, the trees and their weights, the perceptron's
weights, the logistic coefficients, the prior correction, the scorecard's SQL); ``predict``
then evaluates one row (a dict) with plain Python and numpy, without any Spark call, and
returns what ``models.with_reason_codes`` and the ``pd`` column give for that row.
``classify_row`` is ``scoring.classify`` for one row.

How exact (checked against Spark on every row of the tests' scoring sets):

* imputation, indexing, one-hot encoding, assembly, scaling, tree walks, the prior
  correction and SQL arithmetic are the same IEEE double operations in the same order as
  Spark's. Spark SQL's ``exp``, ``ln`` and ``log1p`` are Java's ``StrictMath`` (fdlibm),
  ported here (``strict_exp``, ``strict_log``, ``strict_log1p``); Python's ``math``
  differs from them on about 1% (``log``) to 9% (``exp``) of arguments. ``ROUND`` rounds
  half up, comparisons put NaN above every number, ``greatest``/``least`` skip nulls.
  Spark ML's BLAS is netlib's VectorBLAS when no native library is installed (Spark 4 on
  Java 17+): a GBT's margin and the perceptron's layers follow its loops, with an exact
  ``fma``. A probability tree's and a scorecard's ``pd``, a GBT's margin, the
  perceptron's raw outputs and every ``classify_row`` field are equal bit for bit.
* ``java.lang.Math.exp``, a HotSpot intrinsic used by a GBT's probability and the
  perceptron's sigmoid and softmax, differs from ``math.exp`` on about 0.2% of arguments
  by one unit in the last place: a GBT's or network's ``pd`` may then differ from Spark's
  by about 1e-16 (on 200 applications: one network PD, no GBT PD). So may both with a
  native BLAS, which sums in another order.
* reason codes use explain.py's TreeSHAP tables, numpy function and ranking on the
  row's assembled vector (trees: the same codes as Spark's UDF, which calls the same
  function), the scorecard's own SQL, or the same occlusion drops (the network).

A stage, or a setting, this module cannot reproduce raises ``NotSupported`` from
``from_champion``; the caller then scores with Spark.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
from pyspark.ml.classification import (
    GBTClassificationModel,
    LogisticRegressionModel,
    MultilayerPerceptronClassificationModel,
)
from pyspark.ml.feature import (
    ImputerModel,
    OneHotEncoderModel,
    SQLTransformer,
    StandardScalerModel,
    StringIndexerModel,
    VectorAssembler,
)
from pyspark.ml.linalg import SparseVector
from pyspark.ml.regression import DecisionTreeRegressionModel

from riskcontrol.apply.scoring import (
    LAST_BAND,
    QUADRANT_STRATEGY,
    RISK_BANDS,
    CutoffPolicy,
    quadrant_of,
)
from riskcontrol.modeling import explain, models
from riskcontrol.modeling.scale import PD_EPSILON, ScoreScale
from riskcontrol.modeling.stages import PLATT_CLIP, ProbabilityOfDefault

PD_COL = explain.PD_COL
REASON_CODES_COL = explain.REASON_CODES_COL
Values = dict[str, Any]


class NotSupported(Exception):
    """The champion has a stage or a setting the local evaluator cannot reproduce
    exactly: score it with Spark."""


# --- Spark's arithmetic -----------------------------------------------------------------
def _bits(x: float) -> int:
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _from_hex(word: str) -> float:
    return struct.unpack(">d", bytes.fromhex(word))[0]


def _with_high(x: float, high: int) -> float:
    """``x`` with its high 32-bit word replaced (fdlibm's ``__HI(x) = high``)."""
    return struct.unpack("<d", struct.pack("<q", (high << 32) | (_bits(x) & 0xFFFFFFFF)))[0]


_LN2_HI = _from_hex("3FE62E42FEE00000")
_LN2_LO = _from_hex("3DEA39EF35793C76")
_TWO54 = _from_hex("4350000000000000")
_LG1, _LG2, _LG3, _LG4, _LG5, _LG6, _LG7 = (
    _from_hex(w)
    for w in (
        "3FE5555555555593",
        "3FD999999997FA04",
        "3FD2492494229359",
        "3FCC71C51D8E78AF",
        "3FC7466496CB03DE",
        "3FC39A09D078C69F",
        "3FC2F112DF3E5244",
    )
)
_INV_LN2 = _from_hex("3FF71547652B82FE")
_O_THRESHOLD = _from_hex("40862E42FEFA39EF")
_U_THRESHOLD = _from_hex("C0874910D52D3051")
_TWO_M1000 = _from_hex("0170000000000000")
_P1, _P2, _P3, _P4, _P5 = (
    _from_hex(w)
    for w in (
        "3FC555555555553E",
        "BF66C16C16BEBD93",
        "3F11566AAF25DE2C",
        "BEBBBD41C5D26BF1",
        "3E66376972BEA4D0",
    )
)


def strict_log(x: float) -> float:
    """``java.lang.StrictMath.log`` (fdlibm's ``__ieee754_log``): Spark SQL's ``ln``."""
    bits = _bits(x)
    hx, lx = bits >> 32, bits & 0xFFFFFFFF
    k = 0
    if hx < 0x00100000:  # x < 2**-1022: zero, negative or subnormal
        if ((hx & 0x7FFFFFFF) | lx) == 0:
            return -math.inf
        if hx < 0:
            return math.nan
        k -= 54
        x *= _TWO54
        hx = _bits(x) >> 32
    if hx >= 0x7FF00000:
        return x + x
    k += (hx >> 20) - 1023
    hx &= 0x000FFFFF
    i = (hx + 0x95F64) & 0x100000
    x = _with_high(x, hx | (i ^ 0x3FF00000))  # x or x/2 in [sqrt(2)/2, sqrt(2))
    k += i >> 20
    f = x - 1.0
    dk = float(k)
    if (0x000FFFFF & (2 + hx)) < 3:  # |f| < 2**-20
        if f == 0.0:
            return 0.0 if k == 0 else dk * _LN2_HI + dk * _LN2_LO
        r = f * f * (0.5 - 0.33333333333333333 * f)
        return f - r if k == 0 else dk * _LN2_HI - ((r - dk * _LN2_LO) - f)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    if ((hx - 0x6147A) | (0x6B851 - hx)) > 0:
        hfsq = 0.5 * f * f
        if k == 0:
            return f - (hfsq - s * (hfsq + r))
        return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
    if k == 0:
        return f - s * (f - r)
    return dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)


def strict_exp(x: float) -> float:
    """``java.lang.StrictMath.exp`` (fdlibm's ``__ieee754_exp``): Spark SQL's ``exp``."""
    bits = _bits(x)
    hx = (bits >> 32) & 0x7FFFFFFF
    negative = int(bits < 0)
    if hx >= 0x40862E42:  # |x| >= 709.78...
        if hx >= 0x7FF00000:
            if math.isnan(x):
                return x + x
            return 0.0 if negative else x
        if x > _O_THRESHOLD:
            return math.inf
        if x < _U_THRESHOLD:
            return 0.0
    if hx > 0x3FD62E42:  # |x| > 0.5 ln2: reduce to x - k ln2
        if hx < 0x3FF0A2B2:  # and |x| < 1.5 ln2
            sign = -1.0 if negative else 1.0
            hi, lo, k = x - sign * _LN2_HI, sign * _LN2_LO, 1 - 2 * negative
        else:
            k = int(_INV_LN2 * x + (-0.5 if negative else 0.5))
            t = float(k)
            hi, lo = x - t * _LN2_HI, t * _LN2_LO
        x = hi - lo
    elif hx < 0x3E300000:  # |x| < 2**-28
        return 1.0 + x
    else:
        k = 0
    t = x * x
    c = x - t * (_P1 + t * (_P2 + t * (_P3 + t * (_P4 + t * _P5))))
    if k == 0:
        return 1.0 - ((x * c) / (c - 2.0) - x)
    y = 1.0 - ((lo - (x * c) / (2.0 - c)) - hi)
    if k >= -1021:
        return _with_high(y, (_bits(y) >> 32) + (k << 20))
    return _with_high(y, (_bits(y) >> 32) + ((k + 1000) << 20)) * _TWO_M1000


def strict_log1p(x: float) -> float:
    """``java.lang.StrictMath.log1p`` (fdlibm's ``log1p``): Spark SQL's ``log1p``."""
    hx = _bits(x) >> 32
    ax = hx & 0x7FFFFFFF
    k, f, hu, c = 1, 0.0, 0, 0.0
    if hx < 0x3FDA827A:  # x < 0.41422
        if ax >= 0x3FF00000:  # x <= -1
            return -math.inf if x == -1.0 else math.nan
        if ax < 0x3E200000:  # |x| < 2**-29
            return x if ax < 0x3C900000 else x - x * x * 0.5
        if hx > 0 or hx <= -0x402D413D:  # -0.2929 < x < 0.41422 (0xbfd2bec3 as an int)
            k, f, hu = 0, x, 1
    if hx >= 0x7FF00000:
        return x + x
    if k != 0:
        if hx < 0x43400000:
            u = 1.0 + x
            hu = _bits(u) >> 32
            k = (hu >> 20) - 1023
            c = (1.0 - (u - x) if k > 0 else x - (u - 1.0)) / u  # correction term
        else:
            u = x
            hu = _bits(u) >> 32
            k = (hu >> 20) - 1023
            c = 0.0
        hu &= 0x000FFFFF
        if hu < 0x6A09E:
            u = _with_high(u, hu | 0x3FF00000)  # normalize u
        else:
            k += 1
            u = _with_high(u, hu | 0x3FE00000)  # normalize u/2
            hu = (0x00100000 - hu) >> 2
        f = u - 1.0
    hfsq = 0.5 * f * f
    if hu == 0:  # |f| < 2**-20
        if f == 0.0:
            if k == 0:
                return 0.0
            c += k * _LN2_LO
            return k * _LN2_HI + c
        r = hfsq * (1.0 - 0.66666666666666666 * f)
        return f - r if k == 0 else k * _LN2_HI - ((r - (k * _LN2_LO + c)) - f)
    s = f / (2.0 + f)
    z = s * s
    r = z * (_LG1 + z * (_LG2 + z * (_LG3 + z * (_LG4 + z * (_LG5 + z * (_LG6 + z * _LG7))))))
    if k == 0:
        return f - (hfsq - s * (hfsq + r))
    return k * _LN2_HI - ((hfsq - (s * (hfsq + r) + (k * _LN2_LO + c))) - f)


def fma(x: float, y: float, z: float) -> float:
    """``java.lang.Math.fma``: ``x * y + z`` rounded once (exact integer arithmetic, then
    one correctly rounded division; the denominators are powers of two)."""
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
        return x * y + z
    (a, b), (c, d), (e, f) = x.as_integer_ratio(), y.as_integer_ratio(), z.as_integer_ratio()
    den = b * d
    if f > den:
        return (a * c * (f // den) + e) / f
    return (a * c + e * (den // f)) / den


def java_exp(x: float) -> float:
    """``Math.exp`` with Java's overflow rule (infinity, not an error)."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def affine(w: list[list[float]], b: list[float], x: list[float]) -> list[float]:
    """``W x + b`` as Spark's perceptron computes it on Java BLAS: each row's dot product
    accumulated with fused multiply-adds from 0, then the bias added."""
    out = []
    for row, bias in zip(w, b, strict=True):
        total = 0.0
        for weight, value in zip(row, x, strict=True):
            total = fma(weight, value, total)
        out.append(bias + total)
    return out


def vector_ddot(xs: list[float], ys: list[float], lanes: int) -> float:
    """``dot(xs, ys)`` as netlib's VectorBLAS computes it: ``lanes`` running sums of fused
    multiply-adds over whole vectors, added lane by lane, then the rest one product at a
    time (``lanes`` 0: all of it one product at a time)."""
    whole = len(xs) - len(xs) % lanes if lanes else 0
    sums = [0.0] * lanes
    for start in range(0, whole, lanes):
        for lane in range(lanes):
            sums[lane] = fma(xs[start + lane], ys[start + lane], sums[lane])
    total = sums[0] if lanes else 0.0
    for lane in range(1, lanes):
        total += sums[lane]
    for i in range(whole, len(xs)):
        total += xs[i] * ys[i]
    return total


def spark_blas_lanes() -> int:
    """Lanes of the Java BLAS Spark ML computes with (its ``nativeBLAS``, which falls back
    to netlib's VectorBLAS on Java 17+ without a native library); 0 for any other BLAS,
    whose summation order this module does not reproduce."""
    from pyspark import SparkContext

    jvm = SparkContext._jvm
    spark_blas = getattr(getattr(jvm.org.apache.spark.ml.linalg, "BLAS$"), "MODULE$")
    if spark_blas.nativeBLAS().getClass().getSimpleName() != "VectorBLAS":
        return 0
    return int(jvm.jdk.incubator.vector.DoubleVector.SPECIES_MAX.length())


def _order(value: Any) -> tuple[bool, Any]:
    """Sort key of a non-null value as Spark orders it: NaN above every number."""
    return (True, 0.0) if isinstance(value, float) and value != value else (False, value)


def greatest(*values: Any) -> Any:
    """Spark's ``greatest``: nulls skipped, NaN the largest; null when all are null."""
    present = [v for v in values if v is not None]
    return max(present, key=_order) if present else None


def least(*values: Any) -> Any:
    """Spark's ``least``: nulls skipped, NaN the largest; null when all are null."""
    present = [v for v in values if v is not None]
    return min(present, key=_order) if present else None


def round_half_up(x: float) -> float:
    """Spark's ``round(x)`` of a double: to the integer, halves away from zero (HALF_UP)."""
    if not math.isfinite(x):
        return x
    return float(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP)) + 0.0


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: _order(a) < _order(b),
    "<=": lambda a, b: _order(a) <= _order(b),
    ">": lambda a, b: _order(a) > _order(b),
    ">=": lambda a, b: _order(a) >= _order(b),
    "=": lambda a, b: _order(a) == _order(b),
    "<>": lambda a, b: _order(a) != _order(b),
    "!=": lambda a, b: _order(a) != _order(b),
}


def _compare(op: str, a: Any, b: Any) -> bool | None:
    """A SQL comparison: null when either side is null."""
    return None if a is None or b is None else _COMPARE[op](a, b)


# --- the SQL of SQLTransformer stages ---------------------------------------------------
# An expression is parsed into nested tuples, then compiled into a closure over the row's
# values. Only the constructs riskcontrol's transformers write are supported; anything
# else raises NotSupported when (and only when) a needed column uses it.
Ast = tuple
Compiled = Callable[[Values], Any]

_TOKEN = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[dD]?)"
    r"|(?P<string>'(?:[^'\\]|\\.|'')*')"
    r"|(?P<quoted>`(?:[^`]|``)+`)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>->|>=|<=|<>|!=|[-+*/(),.<>=]))"
)
_SELECT = re.compile(r"\s*SELECT\s+\*\s*,(?P<items>.*)\bFROM\s+__THIS__\s*", re.I | re.S)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m:
            raise NotSupported(f"cannot read the SQL at {text[pos : pos + 30]!r}")
        out.append((m.lastgroup, m.group(m.lastgroup)))
        pos = m.end()
    return out


def _string_literal(token: str) -> str:
    """The value of a quoted literal: ``''`` and ``\\'`` are a quote, ``\\\\`` a backslash."""

    def unescape(m: re.Match) -> str:
        if m.group(0) == "''":
            return "'"
        if m.group(0)[1] in "\\'":
            return m.group(0)[1]
        raise NotSupported(f"escape {m.group(0)} in the string literal {token}")

    return re.sub(r"''|\\.", unescape, token[1:-1])


class _Parser:
    """Recursive descent over Spark SQL's expression grammar (the subset used here)."""

    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        kind, text = self.peek()
        if kind == "word" and text.upper() in words:
            self.pos += 1
            return True
        return False

    def op(self, *ops: str) -> str | None:
        kind, text = self.peek()
        if kind == "op" and text in ops:
            self.pos += 1
            return text
        return None

    def expect_op(self, op: str) -> None:
        if not self.op(op):
            raise NotSupported(f"expected {op!r} at token {self.pos}: {self.peek()[1]!r}")

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise NotSupported(f"expected {word} at token {self.pos}: {self.peek()[1]!r}")

    def identifier(self) -> str:
        kind, text = self.take()
        if kind == "word":
            return text
        if kind == "quoted":
            return text[1:-1].replace("``", "`")
        raise NotSupported(f"expected a name, got {text!r}")

    def select_items(self) -> list[tuple[str, Ast]]:
        """``expr AS name, ...``: the list after ``SELECT *,``."""
        items = []
        while True:
            expr = self.expression()
            self.expect_keyword("AS")
            items.append((self.identifier(), expr))
            if not self.op(","):
                break
        if self.peek()[0] != "end":
            raise NotSupported(f"unexpected {self.peek()[1]!r} after the select list")
        return items

    def expression(self) -> Ast:
        node = self.conjunction()
        while self.keyword("OR"):
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> Ast:
        node = self.negation()
        while self.keyword("AND"):
            node = ("and", node, self.negation())
        return node

    def negation(self) -> Ast:
        return ("not", self.negation()) if self.keyword("NOT") else self.predicate()

    def predicate(self) -> Ast:
        left = self.additive()
        if op := self.op("<", "<=", ">", ">=", "=", "<>", "!="):
            return ("cmp", op, left, self.additive())
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            self.expect_keyword("NULL")
            return ("isnull", left, negated)
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect_op("(")
            items = [self.expression()]
            while self.op(","):
                items.append(self.expression())
            self.expect_op(")")
            return ("in", left, items, negated)
        if negated:
            raise NotSupported("NOT after an operand is only supported before IN")
        return left

    def additive(self) -> Ast:
        node = self.multiplicative()
        while op := self.op("+", "-"):
            node = ("arith", op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Ast:
        node = self.unary()
        while op := self.op("*", "/"):
            node = ("arith", op, node, self.unary())
        return node

    def unary(self) -> Ast:
        return ("neg", self.unary()) if self.op("-") else self.primary()

    def primary(self) -> Ast:
        kind, text = self.peek()
        if kind == "number":
            self.pos += 1
            return _number(text)
        if kind == "string":
            self.pos += 1
            return ("lit", _string_literal(text))
        if self.op("("):
            node = self.expression()
            self.expect_op(")")
            return node
        if self.keyword("NULL"):
            return ("lit", None)
        if self.keyword("TRUE", "FALSE"):
            return ("lit", text.upper() == "TRUE")
        if self.keyword("CASE"):
            return self.case()
        if self.keyword("CAST"):
            self.expect_op("(")
            node = self.expression()
            self.expect_keyword("AS")
            target = self.identifier().lower()
            self.expect_op(")")
            return ("call", f"cast as {target}", [node])
        if kind == "word" and self.peek(1) == ("op", "("):
            self.pos += 2
            args = [] if self.op(")") else self.arguments()
            return ("call", text.lower(), args)
        node: Ast = ("col", self.identifier())
        while self.op("."):
            node = ("field", node, self.identifier())
        return node

    def arguments(self) -> list[Ast]:
        args = []
        while True:
            if self.peek()[0] == "word" and self.peek(1) == ("op", "->"):
                param = self.identifier()
                self.pos += 1
                args.append(("lambda", param, self.expression()))
            else:
                args.append(self.expression())
            if self.op(")"):
                return args
            self.expect_op(",")

    def case(self) -> Ast:
        branches = []
        while self.keyword("WHEN"):
            condition = self.expression()
            self.expect_keyword("THEN")
            branches.append((condition, self.expression()))
        if not branches:
            raise NotSupported("only CASE WHEN ... (searched CASE) is supported")
        default = self.expression() if self.keyword("ELSE") else ("lit", None)
        self.expect_keyword("END")
        return ("case", branches, default)


def _number(text: str) -> Ast:
    """``1.5E0`` and ``0D`` are doubles, ``3`` an int; ``1.5`` is a DECIMAL in Spark SQL,
    whose arithmetic this module does not reproduce."""
    if text[-1] in "dD":
        return ("lit", float(text[:-1]))
    if "e" in text.lower():
        return ("lit", float(text))
    if "." in text:
        return ("unsupported", f"DECIMAL literal {text}")
    return ("lit", int(text))


def parse_select(statement: str) -> list[tuple[str, Ast]]:
    """The (name, expression) items of ``SELECT *, expr AS name, ... FROM __THIS__``."""
    m = _SELECT.fullmatch(statement)
    if not m:
        raise NotSupported(
            f"SQLTransformer statement not of the form SELECT *, ... FROM "
            f"__THIS__: {statement[:80]!r}"
        )
    return _Parser(m.group("items")).select_items()


def columns_of(node: Ast, bound: frozenset[str] = frozenset()) -> set[str]:
    """The columns an expression reads (lambda parameters excluded)."""
    kind = node[0]
    if kind == "col":
        return set() if node[1] in bound else {node[1]}
    if kind == "lambda":
        return columns_of(node[2], bound | {node[1]})
    children = {
        "field": lambda: [node[1]],
        "neg": lambda: [node[1]],
        "not": lambda: [node[1]],
        "isnull": lambda: [node[1]],
        "arith": lambda: [node[2], node[3]],
        "cmp": lambda: [node[2], node[3]],
        "and": lambda: [node[1], node[2]],
        "or": lambda: [node[1], node[2]],
        "in": lambda: [node[1], *node[2]],
        "case": lambda: [part for branch in node[1] for part in branch] + [node[2]],
        "call": lambda: node[2],
    }.get(kind, list)()
    return set().union(*(columns_of(child, bound) for child in children))


def _arith(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise ZeroDivisionError("division by zero (Spark's ANSI mode fails the same way)")
    return a / b


def _sort_key(value: Any) -> tuple:
    """Spark's ascending order: nulls first, structs field by field, NaN largest."""
    if value is None:
        return (0,)
    if isinstance(value, dict):
        return (1, tuple(_sort_key(v) for v in value.values()))
    return (1, _order(value))


def _lambda(node: Ast) -> Callable[[Values, Any], Any]:
    if node[0] != "lambda":
        raise NotSupported(f"expected a lambda (x -> ...), got {node[0]}")
    param, body = node[1], compile_expression(node[2])

    def call(env: Values, element: Any) -> Any:
        return body({**env, param: element})

    return call


def _call(name: str, args: list[Ast]) -> Compiled:
    """The functions riskcontrol's SQL uses, with Spark's null rules."""
    if name in ("filter", "transform") and len(args) == 2:
        array, fn, keep = compile_expression(args[0]), _lambda(args[1]), name == "filter"

        def higher_order(env: Values) -> Any:
            items = array(env)
            if items is None:
                return None
            if keep:
                return [x for x in items if fn(env, x) is True]
            return [fn(env, x) for x in items]

        return higher_order
    if name == "named_struct":
        names = [a[1] for a in args[0::2]]
        if any(a[0] != "lit" or not isinstance(a[1], str) for a in args[0::2]):
            raise NotSupported("named_struct needs literal field names")
        values = [compile_expression(a) for a in args[1::2]]
        return lambda env: dict(zip(names, (v(env) for v in values), strict=True))
    if name == "sort_array" and (len(args) == 1 or args[1] == ("lit", True)):
        array = compile_expression(args[0])
        return lambda env: None if (xs := array(env)) is None else sorted(xs, key=_sort_key)
    compiled = [compile_expression(a) for a in args]
    if name == "array":
        return lambda env: [c(env) for c in compiled]
    if name == "slice" and len(compiled) == 3:
        array, start, length = compiled

        def slice_(env: Values) -> Any:
            xs, s, n = array(env), start(env), length(env)
            if xs is None or s is None or n is None:
                return None
            if s == 0 or n < 0:
                raise ValueError(f"slice start {s} / length {n}: Spark fails the same way")
            first = s - 1 if s > 0 else len(xs) + s
            return xs[first : first + n] if first >= 0 else []

        return slice_
    if name in ("greatest", "least"):
        fn = greatest if name == "greatest" else least
        return lambda env: fn(*(c(env) for c in compiled))
    if name == "exp" and len(compiled) == 1:
        (arg,) = compiled
        return lambda env: None if (x := arg(env)) is None else strict_exp(float(x))
    if name == "log1p" and len(compiled) == 1:
        (arg,) = compiled
        return lambda env: None if (x := arg(env)) is None or x <= -1.0 else strict_log1p(x)
    raise NotSupported(f"SQL function {name}() with {len(args)} arguments")


def compile_expression(node: Ast) -> Compiled:
    """A closure computing ``node`` from a dict of column values, as Spark SQL would."""
    kind = node[0]
    if kind == "lit":
        value = node[1]
        return lambda env: value
    if kind == "col":
        name = node[1]
        return lambda env: env[name]
    if kind == "field":
        struct_, key = compile_expression(node[1]), node[2]
        return lambda env: None if (s := struct_(env)) is None else s[key]
    if kind == "neg":
        arg = compile_expression(node[1])
        return lambda env: None if (x := arg(env)) is None else -x
    if kind in ("arith", "cmp"):
        op, a, b = node[1], compile_expression(node[2]), compile_expression(node[3])
        fn = _arith if kind == "arith" else _compare

        def binary(env: Values) -> Any:
            x, y = a(env), b(env)
            if x is None or y is None:
                return None
            return fn(op, x, y)

        return binary
    if kind in ("and", "or"):
        a, b = compile_expression(node[1]), compile_expression(node[2])
        decisive = kind == "or"  # the value that decides alone: True for OR, False for AND

        def logical(env: Values) -> bool | None:
            x = a(env)
            if x is decisive:
                return decisive
            y = b(env)
            if y is decisive:
                return decisive
            return None if x is None or y is None else not decisive

        return logical
    if kind == "not":
        arg = compile_expression(node[1])
        return lambda env: None if (x := arg(env)) is None else not x
    if kind == "isnull":
        arg, negated = compile_expression(node[1]), node[2]
        return lambda env: (arg(env) is None) != negated
    if kind == "in":
        arg, items, negated = compile_expression(node[1]), node[2], node[3]
        options = [compile_expression(i) for i in items]

        def member(env: Values) -> bool | None:
            x = arg(env)
            if x is None:
                return None
            values = [o(env) for o in options]
            if any(v is not None and _order(v) == _order(x) for v in values):
                return not negated
            return None if None in values else negated

        return member
    if kind == "case":
        branches = [(compile_expression(c), compile_expression(v)) for c, v in node[1]]
        default = compile_expression(node[2])

        def case(env: Values) -> Any:
            for condition, value in branches:
                if condition(env) is True:
                    return value(env)
            return default(env)

        return case
    if kind == "call":
        return _call(node[1], node[2])
    raise NotSupported(node[1] if kind == "unsupported" else f"SQL construct {kind}")


# --- the pipeline's stages --------------------------------------------------------------
@dataclass
class Step:
    """One local computation: reads ``reads`` from the row's values, writes ``writes``.
    ``skipped`` names columns the Spark stage adds that this step does not compute."""

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    run: Callable[[Values], None]
    skipped: tuple[str, ...] = ()
    prepare: Callable[[], None] | None = None  # called once if the step is kept


def _io(stage) -> tuple[list[str], list[str]]:
    """A multi- or single-column stage's input and output columns."""
    if stage.hasParam("inputCols") and stage.isSet(stage.inputCols):
        return list(stage.getInputCols()), list(stage.getOutputCols())
    return [stage.getInputCol()], [stage.getOutputCol()]


def _require(condition: bool, what: str) -> None:
    if not condition:
        raise NotSupported(what)


class _Compiler:
    """Turns fitted stages into Steps, tracking what explaining needs: the index labels
    behind each one-hot column and the slot names of each assembled vector (as Spark's
    ML attributes name them)."""

    def __init__(self):
        self.steps: list[Step] = []
        self.labels: dict[str, list[str]] = {}
        self.slots: dict[str, list[str] | None] = {}
        self.trees_of: dict[int, tuple[list[explain.Node], list[float]]] = {}

    def add(self, stage) -> None:
        kind = type(stage)
        if kind is SQLTransformer:
            self.sql(stage)
        elif kind is ImputerModel:
            self.imputer(stage)
        elif kind is StringIndexerModel:
            self.indexer(stage)
        elif kind is OneHotEncoderModel:
            self.one_hot(stage)
        elif kind is VectorAssembler:
            self.assembler(stage)
        elif kind is StandardScalerModel:
            self.scaler(stage)
        elif kind in (DecisionTreeRegressionModel, GBTClassificationModel):
            self.trees(stage)
        elif kind is MultilayerPerceptronClassificationModel:
            self.perceptron(stage)
        elif kind is LogisticRegressionModel:
            self.logistic(stage)
        elif kind is ProbabilityOfDefault:
            self.probability_of_default(stage)
        else:
            raise NotSupported(f"stage {kind.__name__} has no local evaluator")

    def sql(self, stage: SQLTransformer) -> None:
        for name, node in parse_select(stage.getStatement()):
            self.steps.append(_LazySql(name, node).step())

    def imputer(self, stage: ImputerModel) -> None:
        inputs, outputs = _io(stage)
        row = stage.surrogateDF.collect()[0]
        surrogates = [float(row[c]) for c in inputs]
        missing = float(stage.getMissingValue())

        def is_missing(x: float) -> bool:
            return x != x if missing != missing else x == missing

        pairs = list(zip(inputs, outputs, surrogates, strict=True))

        def run(values: Values) -> None:
            for source, target, surrogate in pairs:
                x = values[source]
                x = None if x is None else float(x)
                values[target] = surrogate if x is None or is_missing(x) else x

        self.steps.append(Step(tuple(inputs), tuple(outputs), run))

    def indexer(self, stage: StringIndexerModel) -> None:
        _require(stage.getHandleInvalid() == "keep", "StringIndexer handleInvalid != keep")
        inputs, outputs = _io(stage)
        labels = [list(ls) for ls in stage.labelsArray]
        lookups = [{label: float(i) for i, label in enumerate(ls)} for ls in labels]
        for out, ls in zip(outputs, labels, strict=True):
            self.labels[out] = ls
        triples = list(zip(inputs, outputs, lookups, strict=True))

        def run(values: Values) -> None:
            for source, target, lookup in triples:
                x = values[source]
                if x is not None and not isinstance(x, str):
                    raise TypeError(f"{source!r} is categorical: pass a string, not {x!r}")
                # Nulls and unseen levels take the extra index (handleInvalid keep).
                values[target] = lookup.get(x, float(len(lookup)))

        self.steps.append(Step(tuple(inputs), tuple(outputs), run))

    def one_hot(self, stage: OneHotEncoderModel) -> None:
        _require(
            stage.getHandleInvalid() == "keep" and stage.getDropLast(),
            "OneHotEncoder other than handleInvalid=keep with dropLast",
        )
        inputs, outputs = _io(stage)
        sizes = list(stage.categorySizes)
        for source, target, size in zip(inputs, outputs, sizes, strict=True):
            labels = self.labels.get(source)
            _require(
                labels is not None and size == len(labels) + 1,
                f"one-hot input {source!r} is not a StringIndexer output with {size - 1} labels",
            )
            # keep + dropLast: one slot per label plus the invalid one (Spark's __unknown).
            self.slots[target] = [f"{target}_{v}" for v in [*labels, "__unknown"]]
        triples = list(zip(inputs, outputs, sizes, strict=True))

        def run(values: Values) -> None:
            for source, target, size in triples:
                index = values[source]
                vector = [0.0] * size
                if 0 <= index < size:
                    vector[int(index)] = 1.0
                values[target] = vector

        self.steps.append(Step(tuple(inputs), tuple(outputs), run))

    def assembler(self, stage: VectorAssembler) -> None:
        _require(stage.getHandleInvalid() == "keep", "VectorAssembler handleInvalid != keep")
        inputs, output = list(stage.getInputCols()), stage.getOutputCol()
        vectors = {c for c in inputs if c in self.slots}
        names: list[str] = []
        for c in inputs:
            slot_names = self.slots.get(c, [c]) if c in vectors else [c]
            _require(slot_names is not None, f"assembler input {c!r} has no slot names")
            names += slot_names
        self.slots[output] = names

        def run(values: Values) -> None:
            assembled: list[float] = []
            for c in inputs:
                x = values[c]
                if c in vectors:
                    assembled.extend(float(v) for v in x)  # a list or a scaler's array
                else:
                    assembled.append(math.nan if x is None else float(x))
            values[output] = assembled

        self.steps.append(Step(tuple(inputs), (output,), run))

    def scaler(self, stage: StandardScalerModel) -> None:
        source, target = stage.getInputCol(), stage.getOutputCol()
        with_mean, with_std = stage.getWithMean(), stage.getWithStd()
        shift = stage.mean.toArray()
        # Spark multiplies by 1/std (0 for a constant slot) rather than dividing.
        scale = np.array([1.0 / s if s != 0 else 0.0 for s in stage.std.toArray()])
        # Spark's scaler drops the ML attributes (slot names); the slots keep their order,
        # so an assembler after it (logistic regression's) still knows what each one is.
        self.slots[target] = self.slots.get(source)

        def run(values: Values) -> None:
            x = np.asarray(values[source], dtype=float)
            if with_mean:
                x = x - shift
            values[target] = x * scale if with_std else x

        self.steps.append(Step((source,), (target,), run))

    def trees(self, stage) -> None:
        trees, weights = explain.spark_trees(stage)
        self.trees_of[id(stage)] = (trees, weights)
        source = stage.getFeaturesCol()
        leaf_col = stage.getLeafCol()
        single = isinstance(stage, DecisionTreeRegressionModel)
        if single:
            target = stage.getPredictionCol()
            skipped = [stage.getVarianceCol()] if stage.isSet(stage.varianceCol) else []
        else:
            target = stage.getProbabilityCol()
            skipped = [stage.getRawPredictionCol(), stage.getPredictionCol()]
        lanes = 0 if single else spark_blas_lanes()

        def run(values: Values) -> None:
            vector = values[source]
            reached = [explain.walk(tree, vector) for tree in trees]
            if leaf_col:
                values[leaf_col] = [leaf.leaf_index for leaf in reached]
            if single:
                values[target] = reached[0].prediction
                return
            # Spark: margin = BLAS ddot(tree predictions, tree weights); probability(0) =
            # 1 / (1 + exp(-2 * (-margin))), probability(1) = 1 - probability(0).
            margin = vector_ddot([leaf.prediction for leaf in reached], weights, lanes)
            p0 = 1.0 / (1.0 + java_exp(-2.0 * -margin))
            values[target] = [p0, 1.0 - p0]

        self.steps.append(
            Step(
                (source,),
                tuple(c for c in (target, leaf_col) if c),
                run,
                tuple(c for c in skipped if c),
            )
        )

    def perceptron(self, stage: MultilayerPerceptronClassificationModel) -> None:
        layers = list(stage.getLayers())
        weights = stage.weights.toArray()
        params, offset = [], 0
        for n_in, n_out in zip(layers, layers[1:], strict=False):
            # Spark's AffineLayerModel: W (n_out x n_in, column-major), then the bias.
            w = weights[offset : offset + n_in * n_out].reshape((n_out, n_in), order="F")
            b = weights[offset + n_in * n_out : offset + n_in * n_out + n_out]
            params.append((w.tolist(), b.tolist()))
            offset += n_in * n_out + n_out
        _require(offset == len(weights), "perceptron weights do not match its layers")
        source, target = stage.getFeaturesCol(), stage.getProbabilityCol()

        def run(values: Values) -> None:
            x = [float(v) for v in values[source]]
            for w, b in params[:-1]:  # sigmoid hidden layers
                x = [1.0 / (1.0 + java_exp(-z)) for z in affine(w, b, x)]
            raw = affine(*params[-1], x)
            top = max(raw)  # softmax, as Spark computes it
            exps = [java_exp(r - top) for r in raw]
            total = 0.0
            for e in exps:
                total += e
            values[target] = [e / total for e in exps]

        self.steps.append(
            Step((source,), (target,), run, (stage.getRawPredictionCol(), stage.getPredictionCol()))
        )

    def logistic(self, stage: LogisticRegressionModel) -> None:
        _require(stage.numClasses == 2, "logistic regression with more than two classes")
        coefficients = stage.coefficients
        intercept = float(stage.intercept)
        source, target = stage.getFeaturesCol(), stage.getProbabilityCol()
        # Spark keeps binomial coefficients dense (zeros included); a sparse vector would
        # sum in another order, so it is left to Spark.
        _require(not isinstance(coefficients, SparseVector), "sparse logistic coefficients")
        dense, lanes = coefficients.toArray().tolist(), spark_blas_lanes()

        def run(values: Values) -> None:
            # Spark: margin = dot(features, coefficients) + intercept, rawPrediction
            # (-margin, margin), probability 1 / (1 + exp(-raw)) element by element.
            margin = vector_ddot([float(v) for v in values[source]], dense, lanes) + intercept
            values[target] = [1.0 / (1.0 + java_exp(margin)), 1.0 / (1.0 + java_exp(-margin))]

        self.steps.append(
            Step((source,), (target,), run, (stage.getRawPredictionCol(), stage.getPredictionCol()))
        )

    def probability_of_default(self, stage: ProbabilityOfDefault) -> None:
        source = stage.getOrDefault(stage.inputCol)
        w = float(stage.getOrDefault(stage.badWeight))
        platt = stage.platt
        leaves = stage.leaves  # (leaf column, PD of each leaf) of a smoothed tree

        def run(values: Values) -> None:
            raw = values[source]
            if isinstance(raw, list):
                raw = raw[1]
            p = least(greatest(raw, 0.0), 1.0)
            p = p if w == 1.0 else p / (p + (1.0 - p) * w)
            if leaves is not None:
                leaf = values[leaves[0]]
                leaf = leaf[0] if isinstance(leaf, list) else leaf
                p = None if leaf is None else leaves[1][int(leaf)]
            if platt is not None and p is not None:
                a, b = platt
                q = least(greatest(p, PLATT_CLIP), 1.0 - PLATT_CLIP)
                p = 1.0 / (1.0 + strict_exp(-(a * strict_log(q / (1.0 - q)) + b)))
            values[PD_COL] = values["prediction"] = p

        inputs = (source,) if leaves is None else (source, leaves[0])
        self.steps.append(Step(inputs, (PD_COL, "prediction"), run))


class _LazySql:
    """One ``expr AS name`` item of a SQLTransformer: compiled only if its column is
    needed, so a column nobody reads may use SQL this module does not evaluate."""

    def __init__(self, name: str, node: Ast):
        self.name, self.node = name, node
        self.compiled: Compiled | None = None

    def step(self) -> Step:
        return Step(
            tuple(sorted(columns_of(self.node))), (self.name,), self.run, prepare=self.prepare
        )

    def prepare(self) -> None:
        self.compiled = compile_expression(self.node)

    def run(self, values: Values) -> None:
        values[self.name] = self.compiled(values)


def _prune(steps: list[Step], needed: set[str]) -> tuple[list[Step], list[str]]:
    """The steps ``needed`` columns depend on, in order, and the raw columns they read."""
    kept: list[Step] = []
    wanted = set(needed)
    for step in reversed(steps):
        if wanted & set(step.writes):
            kept.append(step)
            wanted -= set(step.writes)
            wanted |= set(step.reads)
        skipped = wanted & set(step.skipped)
        if skipped:
            raise NotSupported(f"columns {sorted(skipped)} are not computed locally")
    kept.reverse()
    for step in kept:
        if step.prepare is not None:
            step.prepare()
    return kept, sorted(wanted)


# --- the scorer -------------------------------------------------------------------------
class LocalScorer:
    """The champion's pipeline, its ``pd`` and reason codes, for one row at a time."""

    def __init__(self, steps: list[Step], inputs: list[str]):
        self.steps = steps
        self.inputs = inputs  # the raw columns a row must carry
        self.explainer: Callable[[dict[str, Any], Values], list[str]] = _own_codes

    @classmethod
    def from_champion(cls, champion, top: int = 3) -> LocalScorer:
        """Read the champion's fitted parameters once (the only Spark calls).

        Reason codes follow ``models.with_reason_codes``: the model's own
        ``reason_codes`` column (the scorecard), else the TreeSHAP contributions of its
        last tree stage, else occlusion against ``champion.reference``. Raises NotSupported for
        any stage or setting without an exact local equivalent.
        """
        compiler = _Compiler()
        for stage in champion.model.stages:
            compiler.add(stage)
        writes = {c for step in compiler.steps for c in step.writes}
        _require(PD_COL in writes, f"the pipeline writes no {PD_COL!r} column")
        tree = models.tree_stage(champion.model)
        if REASON_CODES_COL in writes:
            needed = {PD_COL, REASON_CODES_COL}
        elif tree is not None:
            needed = {PD_COL, tree.getFeaturesCol()}
        else:
            needed = {PD_COL}
        scorer = cls(*_prune(compiler.steps, needed))
        if REASON_CODES_COL in writes:
            scorer.explainer = _own_codes
        elif tree is not None:
            scorer.explainer = _tree_explainer(
                tree, compiler, top, champion.spec.not_reasons, list(champion.model.stages)
            )
        else:
            scorer.explainer = _occlusion_explainer(scorer, champion, top)
        return scorer

    def run(self, row: dict[str, Any]) -> Values:
        """Every column the kept steps compute for ``row`` (its raw inputs included)."""
        missing = [c for c in self.inputs if c not in row]
        if missing:
            raise ValueError(f"the row lacks {missing}; the model reads {self.inputs}")
        values = {c: row[c] for c in self.inputs}
        for step in self.steps:
            step.run(values)
        return values

    def predict(self, row: dict[str, Any]) -> tuple[float, list[str]]:
        """(pd, reason_codes) of one raw feature row, as the Spark path computes them."""
        values = self.run(row)
        return values[PD_COL], self.explainer(row, values)


def _own_codes(row: dict[str, Any], values: Values) -> list[str]:
    return list(values[REASON_CODES_COL])


def _tree_explainer(
    stage, compiler: _Compiler, top: int, not_reasons: tuple[str, ...], stages: list
):
    """TreeSHAP codes of ``stage`` on the row's feature vector, exactly as
    explain.tree_reason_codes computes them (the same tables, the same numpy function)."""
    source = stage.getFeaturesCol()
    slot_names = compiler.slots.get(source)
    _require(slot_names is not None, f"{source!r} is not an assembled, named vector")
    slot_names = [explain.original_feature(n) for n in slot_names]
    _require(len(slot_names) == stage.numFeatures, "slot names do not match the tree's width")
    trees, weights = compiler.trees_of[id(stage)]
    explainer = explain.tree_shap(
        trees, weights, slot_names, explain.explained_leaf_value(stages, stage)
    )
    features = explain.reason_candidates(slot_names, not_reasons)

    def codes(row: dict[str, Any], values: Values) -> list[str]:
        vector = np.asarray([values[source]], dtype=float)
        return explain.shap_reason_codes(explainer, vector, features, top)[0]

    return codes


def _occlusion_explainer(scorer: LocalScorer, champion, top: int):
    """Occlusion against ``champion.reference``, exactly as explain.occlusion_reason_codes."""
    spec = champion.spec
    reference = champion.reference
    features = spec.reason_features
    _require(
        reference is not None and all(f in reference for f in features),
        "no reference values for occlusion reason codes",
    )
    replaced = {
        f: None if reference[f] is None else (float if f in spec.numeric else str)(reference[f])
        for f in features
    }

    def codes(row: dict[str, Any], values: Values) -> list[str]:
        pd = values[PD_COL]
        drops = {f: pd - scorer.run({**row, f: replaced[f]})[PD_COL] for f in features}
        return explain.reason_codes(drops, top)

    return codes


def classify_row(
    pd: float | None,
    requested_amount: float | None,
    settings,
    policy: CutoffPolicy | None = None,
) -> dict[str, Any]:
    """``scoring.classify`` for one row: score, risk_band, impact, quadrant, strategy,
    decision and policy_version, computed as Spark computes them (HALF_UP rounding,
    StrictMath log, the PD clipped to [1e-6, 1 - 1e-6] for the score, null rules)."""
    policy = policy or CutoffPolicy.from_settings(settings)
    impact = None if requested_amount is None else requested_amount * settings.lgd
    quadrant = quadrant_of(
        bool(_compare(">=", pd, settings.quadrant_pd_threshold)),
        bool(_compare(">=", impact, settings.quadrant_impact_threshold)),
    )
    band = next((name for name, upper in RISK_BANDS if _compare("<", pd, upper)), LAST_BAND)
    if _compare("<", pd, policy.approve_below_pd):
        decision = "approve"
    elif _compare(">=", pd, policy.reject_from_pd):
        decision = "reject"
    else:
        decision = "review"
    return {
        "score": _score(pd, ScoreScale.from_settings(settings)),
        "risk_band": band,
        "impact": impact,
        "quadrant": quadrant,
        "strategy": QUADRANT_STRATEGY[quadrant],
        "decision": decision,
        "policy_version": policy.version,
    }


def _score(pd: float | None, scale: ScoreScale) -> int | None:
    """``ScoreScale.column`` for one value (a missing PD has no score, as in Spark)."""
    if pd is None:
        return None
    p = least(greatest(pd, PD_EPSILON), 1 - PD_EPSILON)
    raw = scale.base + scale.factor * (strict_log((1 - p) / p) - math.log(scale.base_odds))
    return int(least(greatest(round_half_up(raw), scale.low), scale.high))
