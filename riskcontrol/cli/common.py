"""What every `riskctl` command shares: progress lines, settings, the Spark session, a run."""

from __future__ import annotations

import argparse
import datetime as dt

# The tiers are imported inside the commands that use them, not here: `riskctl --help`
# and a command's own start-up then load no Spark, MLflow or Airflow they do not need.
from riskcontrol.core import config
from riskcontrol.core.config import Settings, ensure_local_secrets, get_settings


def say(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", flush=True)


def load_settings(**overrides) -> Settings:
    """The settings from the environment (and ``.env``), with a command's flags on top.

    Flags are passed as values (``overrides``, validated like the environment's), never
    written into ``os.environ``: a later command in the same process (a test, a notebook,
    an Airflow worker) does not inherit them.
    """
    ensure_local_secrets()
    get_settings.cache_clear()
    return config.load_settings(**overrides) if overrides else get_settings()


def start_spark(settings: Settings):
    from riskcontrol.core.spark import get_spark

    say(f"starting Spark ({settings.spark_master})")
    return get_spark(settings)


def new_run(settings: Settings):
    from riskcontrol.core.runs import Run

    return Run(start_spark(settings), settings)


def print_steps(steps) -> None:
    print(
        f"  {'stage':8} {'source':24} {'target':30} {'in':>9} {'out':>9} "
        f"{'unchanged':>9} {'dupl.':>6} {'quarant.':>8} {'rescued':>8}"
    )
    for s in steps:
        print(
            f"  {s.stage:8} {s.source:24} {s.target:30} {s.rows_in:>9,} {s.rows_out:>9,} "
            f"{s.rows_unchanged:>9,} {s.rows_duplicate:>6,} {s.rows_quarantined:>8,} "
            f"{s.rows_rescued:>8,}"
        )


def subparser(parent, name, fn, text, epilog=None) -> argparse.ArgumentParser:
    """A sub-command whose help and description are ``text``, with examples (``epilog``)
    kept as written, that runs ``fn``."""
    p = parent.add_parser(
        name,
        help=text,
        description=text,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(fn=fn)
    return p
