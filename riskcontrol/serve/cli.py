"""`riskctl serve`, `riskctl keys`, `riskctl lists` and `riskctl decisions`.

Only argparse is imported here: `riskctl --help` loads no web framework, Spark or MLflow.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

KEYS_EPILOG = """\
examples:
  riskctl keys add --name app-channel --scope decide --days 90 --out app.key
  riskctl keys add --name analyst --scope read
  riskctl keys list
  riskctl keys revoke 0123456789abcdef

A key is shown once (or written to a new 0600 file with --out); only its SHA-256 is kept.
Scopes: decide (POST /v1/decisions), read (GET /v1/decisions/ID).
"""
SERVE_EPILOG = """\
examples:
  riskctl serve                                   # http://127.0.0.1:8000, loopback only
  riskctl serve --host 0.0.0.0 --port 8443 --tls-cert server.pem --tls-key server.key
  riskctl serve ... --client-ca channels-ca.pem   # mutual TLS: client certificates required
  riskctl serve --shadow                          # score the challenger on every request
  riskctl serve --challenger-share 0.1            # 10% of applications decided by it
  curl -s http://127.0.0.1:8000/v1/decisions -H "Authorization: Bearer $(cat app.key)" \\
       -H 'content-type: application/json' -d @application.json

The rules file (default: RISK_HOME/service/rules.yaml, written from an example on the
first start) lists the products, knock-outs and referrals. The model, policy, rules and
lists reload when they change (checked every --reload-every seconds, or on SIGHUP).
"""
LISTS_EPILOG = """\
examples:
  riskctl lists add blocklist customers.txt        # one customer id a line
  printf '%s\\n' DEV-123 | riskctl lists add fraud_devices -
  riskctl lists show

Lists hold keyed pseudonyms only: the identifiers you give are never written anywhere.
"""
DECISIONS_EPILOG = """\
examples:
  riskctl decisions land        # new journal rows -> gold.decision_log (Delta)
  riskctl decisions compare     # champion against challenger on the decisions made
  riskctl decisions compare --outcomes   # and bad rates per arm from matured loans (Spark)
  riskctl decisions compare --json       # every figure as JSON

compare: per policy arm, decisions and approval rate, and with --outcomes the bad rate
of approved applications whose loans matured (gold.application_features), with 95%
Wilson intervals and the challenger-minus-champion difference (Newcombe). Until outcomes
are known: the two models' PD distributions on the same requests (quantiles, PSI on the
champion's deciles against sampling noise, KS). No identifier is printed.
"""


def _settings():
    from riskcontrol.cli.common import load_settings

    return load_settings()


# --- keys ------------------------------------------------------------------------------
def _store():
    from riskcontrol.serve.keys import KeyStore, default_path

    return KeyStore(default_path(_settings().home))


def cmd_keys_add(args) -> int:
    from riskcontrol.serve.keys import parse_scopes

    scopes = parse_scopes(args.scope or [])
    store = _store()
    if args.out is None:
        token, key = store.create(args.name, scopes, args.days)
        _print_new_key(key)
        print(f"key: {token}")
        print("this is the only time the key is shown: it cannot be shown again, store it now")
        return 0
    out = Path(args.out)
    # The file first (new, 0600), then the key: no key is made when the file cannot be.
    try:
        fd = os.open(out, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise ValueError(
            f"{out} exists: --out writes a new file only (the key is secret)"
        ) from None
    except OSError as exc:
        raise ValueError(f"cannot create {out}: {exc.strerror}") from None
    key = None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            token, key = store.create(args.name, scopes, args.days)
            f.write(token + "\n")
    except BaseException:
        out.unlink(missing_ok=True)
        if key is not None:  # written nowhere: nobody may hold it
            store.revoke(key.key_id)
        raise
    _audit("key.add", key)
    _print_new_key(key)
    print(f"key: written to {out} (mode 0600); it is not shown and not stored anywhere else")
    return 0


def _audit(action: str, key) -> None:
    """A key change in the workbench's audit log (its id, name and scopes; never the key)."""
    from riskcontrol.workbench.cli import audit_from_cli

    audit_from_cli(action, key.key_id, {"name": key.name, "scopes": list(key.scopes)})


def _print_new_key(key) -> None:
    expires = f"{key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else "never"
    print(f"key id:  {key.key_id}")
    print(f"name:    {key.name}")
    print(f"scopes:  {','.join(key.scopes)}")
    print(f"expires: {expires}")


def cmd_keys_list(args) -> int:
    keys = _store().list()
    if not keys:
        print("no API keys: create one with `riskctl keys add --name NAME --scope decide`")
        return 0
    print(f"  {'id':16} {'name':20} {'scopes':13} {'created':16} {'expires':16} state")
    for k in keys:
        exp = k.expires_at.strftime("%Y-%m-%d %H:%M") if k.expires_at else "never"
        print(
            f"  {k.key_id:16} {k.name[:20]:20} {','.join(k.scopes):13} "
            f"{k.created_at:%Y-%m-%d %H:%M} {exp:16} {k.state()}"
        )
    return 0


def cmd_keys_revoke(args) -> int:
    key = _store().revoke(args.key_id)
    _audit("key.revoke", key)
    print(f"revoked {key.key_id} ({key.name}) at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
    return 0


# --- serve -----------------------------------------------------------------------------
def cmd_serve(args) -> int:
    from riskcontrol.cli.common import say
    from riskcontrol.serve import runtime
    from riskcontrol.serve.engine import Routing
    from riskcontrol.serve.rules import rules_path

    settings = _settings()
    routing = Routing(args.challenger_share, args.shadow, args.split_salt)
    tls = runtime.tls_options(args.tls_cert, args.tls_key, args.client_ca)
    rules = Path(args.rules) if args.rules else rules_path(settings)
    runtime.serve(settings, args.host, args.port, rules, routing, tls, args.reload_every, say)
    return 0


# --- lists -----------------------------------------------------------------------------
def cmd_lists_add(args) -> int:
    import sys

    from riskcontrol.serve import lists

    settings = _settings()
    if args.source == "-":
        values = sys.stdin.read().splitlines()
    else:
        path = Path(args.source)
        if not path.is_file():
            raise ValueError(f"{path}: no such file (give a file of identifiers, one a line, or -)")
        values = path.read_text(encoding="utf-8").splitlines()
    added, known = lists.add(lists.folder(settings.home), args.list, values, settings.pii_secret())
    print(f"{args.list}: {added} added, {known} already listed (stored as pseudonyms only)")
    return 0


def cmd_lists_show(args) -> int:
    from riskcontrol.serve import lists

    loaded = lists.Lists.load(lists.folder(_settings().home))
    for kind, n in loaded.sizes().items():
        print(f"  {kind:14} {n:>8,}  {lists.KINDS[kind]}")
    return 0


# --- decisions -------------------------------------------------------------------------
def _journal(settings):
    from riskcontrol.serve.journal import DecisionJournal, default_path

    path = default_path(settings.home)
    if not path.exists():
        raise ValueError(f"no decision journal at {path}: `riskctl serve` has made no decision")
    return DecisionJournal(path)


def cmd_decisions_land(args) -> int:
    from riskcontrol.cli.common import say, start_spark
    from riskcontrol.serve import lander

    settings = _settings()
    journal = _journal(settings)
    result = lander.land(start_spark(settings), settings, journal)
    say(
        f"gold.decision_log: {result.landed:,} decisions landed; {result.table_rows:,} in the "
        f"table, {result.journal_rows:,} in the journal (last seq {result.last_seq})"
    )
    say(
        f"gold.decision_reviews: {result.reviews_landed:,} reviews landed; "
        f"{result.review_rows:,} in the table"
    )
    return 0


def cmd_decisions_compare(args) -> int:
    import json

    from riskcontrol.serve import compare

    settings = _settings()
    journal = _journal(settings)
    records, seq = [], 0
    while batch := journal.since(seq, limit=10_000):
        # the entry's key is the application's pseudonym, as the outcome map is keyed
        records.extend({**e.record, "application_key": e.key} for e in batch)
        seq = batch[-1].seq
    outcomes = _outcomes(settings, quiet=args.json) if args.outcomes else None
    result = compare.compare(records, outcomes)
    print(json.dumps(result.summary(), indent=2) if args.json else compare.render(result))
    return 0


def _outcomes(settings, quiet: bool = False) -> dict[str, int]:
    """Application pseudonym -> 1 bad / 0 good, for the matured loans of
    gold.application_features (Spark; only the key and the flag leave it). ``quiet``:
    Spark's start line goes to standard error (standard output is the JSON)."""
    import contextlib
    import sys

    from pyspark.sql import functions as F

    from riskcontrol.cli.common import start_spark
    from riskcontrol.core import lakehouse, pii
    from riskcontrol.core.catalog import GOLD_APPLICATION_FEATURES

    with contextlib.redirect_stdout(sys.stderr) if quiet else contextlib.nullcontext():
        spark = start_spark(settings)
    if not lakehouse.exists(spark, GOLD_APPLICATION_FEATURES, settings):
        raise ValueError(
            f"{GOLD_APPLICATION_FEATURES.full_name} does not exist: outcomes come from it, "
            "run `riskctl run` (or collect and analyze) first"
        )
    rows = (
        lakehouse.read(spark, GOLD_APPLICATION_FEATURES, settings)
        .where(F.col("label_status").isin("good", "bad"))
        .select(
            pii.pseudonym("application_id", settings).alias("key"),
            (F.col("label_status") == "bad").cast("int").alias("bad"),
        )
        .collect()
    )
    return {r["key"]: r["bad"] for r in rows}


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a share is between 0 and 1, got {value}")
    return value


def register(sub) -> None:
    """Add serve, keys, lists and decisions to riskctl's subcommands."""
    from riskcontrol.cli.common import subparser as parser

    p = parser(
        sub, "serve", cmd_serve, "serve real-time credit decisions over HTTP(S)", SERVE_EPILOG
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--tls-cert", type=Path, default=None, help="server certificate (PEM)")
    p.add_argument("--tls-key", type=Path, default=None, help="its private key (PEM)")
    p.add_argument(
        "--client-ca",
        type=Path,
        default=None,
        help="mutual TLS: require client certificates signed by this CA (PEM)",
    )
    p.add_argument(
        "--rules", type=Path, default=None, help="rules file (RISK_HOME/service/rules.yaml)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--challenger-share",
        type=_share,
        default=0.0,
        help="share of applications the challenger decides, by a hash of the id (0)",
    )
    group.add_argument(
        "--shadow",
        action="store_true",
        help="score the challenger on every request, log it, never act on it",
    )
    p.add_argument("--split-salt", default="riskcontrol-split-v1", help="salt of the split hash")
    p.add_argument(
        "--reload-every",
        type=float,
        default=10.0,
        help="seconds between checks for a new champion, policy, rules or lists (10)",
    )

    keys = parser(sub, "keys", None, "API keys of the systems that call the service", KEYS_EPILOG)
    ksub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    p = parser(ksub, "add", cmd_keys_add, "create a key (shown once)")
    p.add_argument("--name", required=True, help="who uses it, e.g. the channel system")
    p.add_argument(
        "--scope",
        action="append",
        required=True,
        help="decide and/or read; repeat or comma-separate",
    )
    p.add_argument("--days", type=int, default=None, help="expire after this many days")
    p.add_argument("--out", default=None, help="write the key to this new file (0600)")
    parser(ksub, "list", cmd_keys_list, "every key: id, name, scopes, expiry, state")
    p = parser(ksub, "revoke", cmd_keys_revoke, "revoke a key (effective on the next request)")
    p.add_argument("key_id", help="the key's id (see `riskctl keys list`)")

    lists = parser(
        sub, "lists", None, "the blocklist and fraud lists the rules check", LISTS_EPILOG
    )
    lsub = lists.add_subparsers(dest="lists_command", required=True, metavar="ACTION")
    p = parser(lsub, "add", cmd_lists_add, "add identifiers to a list (as pseudonyms)")
    p.add_argument("list", choices=["blocklist", "fraud_devices", "fraud_phones"])
    p.add_argument("source", help="a file of identifiers, one a line, or - for standard input")
    parser(lsub, "show", cmd_lists_show, "how many entries each list holds")

    dec = parser(sub, "decisions", None, "the service's decision log", DECISIONS_EPILOG)
    dsub = dec.add_subparsers(dest="decisions_command", required=True, metavar="ACTION")
    parser(dsub, "land", cmd_decisions_land, "append new journal rows to gold.decision_log")
    p = parser(dsub, "compare", cmd_decisions_compare, "champion against challenger")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument(
        "--outcomes",
        action="store_true",
        help="read matured outcomes from gold.application_features (starts Spark)",
    )
