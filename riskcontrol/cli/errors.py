"""Errors from Spark, the JVM and the system as one line that says what to do.

A failing command prints ``riskctl <command>: error: <one line>`` and exits 2, never a
Java stack trace. ``RISK_DEBUG=1`` keeps the full traceback for a bug report.
"""

from __future__ import annotations

import re

_DISK_FULL = "the disk is full: free space under RISK_HOME ({home}) or point RISK_HOME elsewhere"

# (pattern in the error text, what to tell the user); the first match wins.
_JVM_HINTS = (
    (
        re.compile(r"OutOfMemoryError|Java heap space|GC overhead limit"),
        "Spark ran out of memory: raise RISK_SPARK_DRIVER_MEMORY (now {memory}), or split "
        "the input into smaller files",
    ),
    (re.compile(r"No space left on device"), _DISK_FULL),
    (
        re.compile(r"Answer from Java side is empty|Error while receiving|Connection refused"),
        "the Spark JVM stopped (killed, or out of memory): see the lines above, raise "
        "RISK_SPARK_DRIVER_MEMORY (now {memory}) and run again; finished steps are not redone",
    ),
)


# Spark quotes a value with single quotes ('0x12'), a type or a setting with double
# quotes ("INT", "spark.sql.ansi.enabled"); Java quotes a value with double quotes
# (For input string: "12x"). Long digit runs are values too (ID or phone numbers).
_SINGLE_QUOTED = re.compile(r"'[^'\n]*'")
_DOUBLE_QUOTED = re.compile(r'"([^"\n]*)"')
_NAME = re.compile(r"[A-Z][A-Z0-9_]*(\(.*\))?|[a-z][a-zA-Z0-9_]*(\.[a-zA-Z0-9_]+)+")
_DIGITS = re.compile(r"\d{6,}")
VALUE_MASK = "<value>"


def mask_values(line: str) -> str:
    """``line`` with the data values an error message quotes replaced by ``<value>``:
    a failed cast or parse names the value, and a value may be personal data."""
    line = _SINGLE_QUOTED.sub(f"'{VALUE_MASK}'", line)
    line = _DOUBLE_QUOTED.sub(
        lambda m: m.group(0) if _NAME.fullmatch(m.group(1)) else f'"{VALUE_MASK}"', line
    )
    return _DIGITS.sub(VALUE_MASK, line)


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        line = line.strip()
        if line and not line.startswith(("at ", "JVM stacktrace", "Traceback")):
            return line
    return text.strip()


def explain(exc: BaseException, settings=None) -> str | None:
    """One line for an error from Spark, Py4J or the system; None for other errors."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    memory = getattr(settings, "spark_driver_memory", "?")
    home = getattr(settings, "home", "?")
    text = str(exc)
    if isinstance(exc, Py4JError | PySparkException | MemoryError):
        for pattern, hint in _JVM_HINTS:
            if pattern.search(text) or pattern.search(type(exc).__name__):
                return hint.format(memory=memory, home=home)
        if isinstance(exc, PySparkException):
            cls = exc.getCondition() or type(exc).__name__
            line = _first_line(exc.getMessage() or text)
            line = re.sub(r"^\[[A-Z_.]+\]\s*", "", line)
            return f"Spark: {mask_values(line)} [{cls}]"
        return f"Spark: {mask_values(_first_line(text))}"
    if isinstance(exc, OSError):
        if "No space left on device" in text:
            return _DISK_FULL.format(home=home)
        return text or type(exc).__name__
    return None
