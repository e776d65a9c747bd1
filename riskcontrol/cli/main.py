"""`riskctl`: every stage of the pipeline as one command line.

Run `riskctl --help` for the commands and `riskctl COMMAND --help` for each one.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# The tiers are imported inside the commands that use them, not here: `riskctl --help`
# and a command's own start-up then load no Spark, MLflow or Airflow they do not need.
from riskcontrol.cli.apply import add_apply_parsers
from riskcontrol.cli.common import load_settings, new_run, print_steps, say, start_spark
from riskcontrol.core.config import PROJECT_ROOT, Settings, ensure_local_secrets, get_settings
from riskcontrol.core.redact import redact
from riskcontrol.orchestration import TIERS

EPILOG = """\
typical use:
  riskctl run                      generate a book and run collect -> analyze -> apply
  riskctl alerts list              open early-warning alerts; `riskctl report` the risk report
  riskctl tables                   what a run produced: every table, rows, Delta version
  riskctl mlflow-ui                browse the models at http://127.0.0.1:5000
  riskctl airflow standalone       Airflow with the collect/analyze/apply DAGs

configuration: environment variables RISK_* or a .env file (see README "Configuration")
"""


def cmd_init(args: argparse.Namespace) -> int:
    written = ensure_local_secrets()
    s = get_settings()
    print(f"project:     {PROJECT_ROOT}")
    print(f"lakehouse:   {s.lakehouse_root}")
    print(f"data:        {s.data_dir}")
    print(f"mlflow:      {redact(s.mlflow_tracking_uri)}")
    print(f"airflow:     {s.airflow_home}")
    print(
        f".env:        {'local keys written' if written else 'keys already configured'}"
        " (RISK_PII_KEY pseudonyms, RISK_BRONZE_KEY bronze encryption)"
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from riskcontrol.synthetic.generate import generate

    settings = load_settings()
    start = dt.date.fromisoformat(args.start)
    say(f"generating {args.customers:,} customers (seed {args.seed}) into {settings.data_dir}")
    summary = generate(
        settings.data_dir,
        customers=args.customers,
        seed=args.seed,
        start=start,
        months=args.months,
        progress=say,
        deterioration_share=args.deterioration_share,
    )
    say(f"generated: {summary}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from riskcontrol.collect.pipeline import run_collect

    run = new_run(load_settings())
    steps = run_collect(
        run,
        say,
        sources=tuple(args.source.split(",")) if args.source else None,
        since=args.since,
        until=args.until,
        full=args.full,
        site_epoch=args.site_epoch,
    )
    print_steps(steps)
    return 0


def cmd_crawl(args: argparse.Namespace) -> int:
    from riskcontrol.collect import crawl

    settings = load_settings()
    crawl_id = args.crawl_id or f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-crawl"
    spiders = tuple(args.spiders.split(","))
    say(f"crawling {', '.join(spiders)} -> {settings.crawl_landing_dir / crawl_id}")
    stats = crawl.run_crawl(settings, crawl_id, spiders, epoch=args.site_epoch)
    say(f"crawl {crawl_id}: {crawl.describe_stats(stats)}")
    if args.land:
        from riskcontrol.core.runs import Run

        run = Run(start_spark(settings), settings, run_id=crawl_id)
        print_steps(crawl.land_crawl(run, settings.crawl_landing_dir / crawl_id))
    return 0


def cmd_load_db(args: argparse.Namespace) -> int:
    from riskcontrol.collect.lendingdb import copy_lending_db
    from riskcontrol.core.redact import has_password

    if has_password(args.jdbc_url):
        # Too late for this command line (other users' `ps` showed it): never use it.
        raise ValueError(
            f"--jdbc-url {redact(args.jdbc_url)} holds a password, which every user of this "
            f"machine can read in the process list; give the URL without it and the "
            f"password in the environment: {args.password_env or 'RISK_LOAD_DB_PASSWORD'}="
            "... riskctl load-db --jdbc-url URL --user USER"
        )
    settings = load_settings()
    password = os.environ.get(args.password_env) if args.password_env else None
    copied = copy_lending_db(
        start_spark(settings), settings, args.jdbc_url, args.user, password, progress=say
    )
    say(
        f"copied {sum(copied.values()):,} rows; extract with "
        f"RISK_LENDING_JDBC_URL={redact(args.jdbc_url)}"
    )
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from riskcontrol.analyze.pipeline import run_analyze

    run = new_run(load_settings())
    print_steps(run_analyze(run, say))
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    from riskcontrol.analyze import feature_store
    from riskcontrol.analyze.pipeline import run_features
    from riskcontrol.core.dates import as_of_date

    settings = load_settings()
    spark = start_spark(settings)
    if args.action == "build":
        run_features(new_run(settings), say)
        return 0
    if not args.customer:
        print("riskctl features lookup: error: --customer is required", file=sys.stderr)
        return 2
    store = feature_store.feature_store(settings)
    as_of = dt.date.fromisoformat(args.as_of) if args.as_of else None
    if as_of is None and lakehouse_ready(spark, settings):
        as_of = as_of_date(spark, settings)
    values = feature_store.online_features(store, args.customer, as_of=as_of)
    print(json.dumps(values, indent=2, default=str, ensure_ascii=False))
    return 0


def lakehouse_ready(spark, settings: Settings) -> bool:
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import SILVER_APPLICATIONS

    return lakehouse.exists(spark, SILVER_APPLICATIONS, settings)


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    from riskcontrol.privacy import keys

    settings = load_settings()
    if not settings.retired_secrets():
        say(
            "note: RISK_BRONZE_RETIRED_KEYS is empty: values under an earlier key cannot be "
            "read. Put the old RISK_BRONZE_KEY there before rotating."
        )
    spark = start_spark(settings)
    done = keys.rotate_all(spark, settings, dry_run=args.dry_run, progress=say)
    if not done:
        say("rotate-keys: every encrypted value is under the active key; nothing to do")
    elif not args.dry_run:
        say(
            f"rotate-keys: {len(done)} table(s) re-encrypted and vacuumed; the retired keys "
            "can now be removed from RISK_BRONZE_RETIRED_KEYS"
        )
    return 0


def cmd_privacy_scan(args: argparse.Namespace) -> int:
    from riskcontrol.privacy import scan

    settings = load_settings()
    known = scan.known_people(settings)

    def say(msg: str) -> None:  # progress on stderr: stdout is the report (or the JSON)
        print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)

    say(
        f"privacy-scan: looking for {len(known.keys)} key encodings and the identifiers of "
        f"{known.people:,} known people under {settings.home}"
    )
    if not known.people:
        say(
            "privacy-scan: no customers in the lending database "
            f"({redact(settings.lending_jdbc_url)}): only keys and rebuildable IDs are "
            "searched for; "
            "run `riskctl generate` or point RISK_LENDING_JDBC_URL at a SQLite lending database"
        )
    result = scan.scan(settings, known, [Path(p) for p in args.exclude], say)
    if args.json:
        print(
            json.dumps(
                {
                    "files_scanned": result.files_scanned,
                    "findings": [dataclasses.asdict(f) for f in result.findings],
                    "skipped": result.skipped,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        print(scan.report(result))
    return 1 if result.findings else 0


def cmd_erase(args: argparse.Namespace) -> int:
    from riskcontrol.privacy.erase import erase_customer
    from riskcontrol.serve.journal import DecisionJournal
    from riskcontrol.serve.journal import default_path as journal_path

    settings = load_settings()
    stores = {}
    journal = journal_path(settings.home)
    if journal.exists():
        stores["service.decision_journal"] = DecisionJournal(journal)
    from riskcontrol.workbench.store import WorkbenchStore
    from riskcontrol.workbench.store import default_path as workbench_path

    if workbench_path(settings.home).exists():
        stores["workbench.assignments"] = WorkbenchStore(workbench_path(settings.home))
    try:
        result = erase_customer(
            start_spark(settings),
            settings,
            args.customer,
            args.requested_by,
            args.reason,
            say,
            stores=stores,
        )
    except LookupError as exc:
        print(f"riskctl erase: error: {exc}", file=sys.stderr)
        return 2
    for name, n in sorted(result.rows_deleted.items()):
        print(f"  {name:32} {n:>8} row(s) deleted, history removed")
    print(f"audit row {result.erasure_id} written to ops.erasures")
    return 0


def _print_models(result) -> None:
    print(
        f"  {'kind':15} {'version':>7} {'OOT AUC':>8} {'KS':>7} {'Gini':>7} {'Brier':>7} "
        f"{'PSI':>6} {'train AUC':>9} {'fit s':>6}"
    )
    for tm in result.trained:
        m = tm.metrics
        print(
            f"  {tm.kind:15} {'v' + str(tm.version):>7} {m['oot_auc']:8.4f} {m['oot_ks']:7.4f} "
            f"{m['oot_gini']:7.4f} {m['oot_brier']:7.4f} {m['psi_train_oot']:6.3f} "
            f"{m['train_auc']:9.4f} {tm.train_seconds:6.1f}"
        )
    d = result.decision
    verdict = "promoted to champion" if d.promote else "not promoted (stays challenger)"
    print(f"  v{d.challenger_version}: {verdict}: {d.reason}")


def _train_overrides(args: argparse.Namespace) -> dict[str, object]:
    """Settings from `riskctl train` flags (``--kinds``, ``--trials``, ``--sampler``)."""
    overrides: dict[str, object] = {}
    if getattr(args, "kinds", None):
        overrides["model_kinds"] = args.kinds
    if getattr(args, "trials", None) is not None:
        overrides["tune_trials"] = args.trials
    if getattr(args, "sampler", None):
        overrides["tune_sampler"] = args.sampler
    if getattr(args, "tune_seconds", None) is not None:
        overrides["tune_seconds"] = args.tune_seconds
    for flag in ("folds", "repeats"):
        if getattr(args, flag, None) is not None:
            overrides[f"cv_{flag}"] = getattr(args, flag)
    return overrides


def cmd_train(args: argparse.Namespace) -> int:
    from riskcontrol.modeling.training import run_train

    run = new_run(load_settings(**_train_overrides(args)))
    _print_models(run_train(run, say, seed=args.seed))
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from riskcontrol.modeling import tracking
    from riskcontrol.modeling.training import training_split

    margin = {} if args.margin is None else {"promotion_margin": args.margin}
    settings = load_settings(**margin)
    split = training_split(start_spark(settings), settings).cache()
    d = tracking.promote(
        settings,
        split,
        challenger=args.version,
        force=args.force,
        progress=say,
    )
    champion = f"v{d.champion_version} ({d.champion_auc:.4f})" if d.champion_version else "none"
    print(f"challenger v{d.challenger_version} out-of-time AUC {d.challenger_auc:.4f}")
    print(f"champion   {champion}")
    if d.p_value is not None:
        print(f"gain       DeLong p {d.p_value:.4f} (significant below {d.alpha:g})")
    if d.calibration_p is not None:
        print(
            f"calibration Hosmer-Lemeshow p {d.calibration_p:.4f} "
            f"(fails below {d.calibration_alpha:g})"
        )
    print(f"decision   {'PROMOTED' if d.promote else 'NOT promoted'}: {d.reason}")
    return 0


def cmd_evaluate_dataset(args: argparse.Namespace) -> int:
    from riskcontrol.lenderfile import evaluate

    if args.outcome_months and not args.time_col:  # before Spark starts
        raise ValueError("--outcome-months needs --time-col: the date the outcome runs from")
    settings = load_settings(**_train_overrides(args))
    spark = start_spark(settings)
    bad = [v.strip() for v in args.bad.split(",") if v.strip()]
    drop = [c.strip() for c in (args.drop or "").split(",") if c.strip()]
    report = evaluate.evaluate_dataset(
        spark,
        settings,
        args.path,
        args.target,
        bad,
        drop,
        args.time_col,
        args.seed,
        say,
        pii_columns=args.pii,
        not_pii=args.not_pii,
        allow_pii_features=args.allow_pii_feature,
        cv=args.cv,
        outcome_months=args.outcome_months,
    )
    out = evaluate.write_report(
        report, args.report or settings.reports_dir / f"evaluate-{Path(args.path).stem}.json"
    )
    q = ", ".join(f"{k} {v:,}" for k, v in report["quarantined_by_reason"].items()) or "none"
    print(
        f"\n{args.path}: {report['rows_read']:,} rows read = {report['rows_used']:,} used + "
        f"{report['rows_quarantined']:,} quarantined ({q}); bad rate {report['bad_rate']:.2%}"
    )
    maturity = report["maturity"]
    if maturity["rows_immature"]:
        print(
            f"of those used, {maturity['rows_immature']:,} dated after "
            f"{maturity['mature_through']} are too recent for their outcome "
            f"(--outcome-months {maturity['outcome_months']}) and not modelled"
        )
    print(f"split: {report['split']}")
    cv = report["cross_validation"]
    cv_head = f" {'CV AUC mean ± sd':>17}" if cv else ""
    print(f"  {'model':15} {'test AUC':>8}{cv_head} {'KS':>7} {'Gini':>7} {'fit s':>7}  MLflow run")
    for kind, m in report["models"].items():
        cv_cell = f" {m['cv_auc_mean']:9.4f} ± {m['cv_auc_sd']:.4f}" if cv else ""
        print(
            f"  {kind:15} {m['test_auc']:8.4f}{cv_cell} {m['test_ks']:7.4f} "
            f"{m['test_gini']:7.4f} {m['train_seconds']:7.1f}  {m['mlflow_run_id']}"
        )
    if cv:
        print(
            f"cross-validation ({cv['repeats']} x {cv['folds']} folds): best {cv['best']}; "
            "a gap within noise means the file cannot tell the two apart"
        )
        for kind, gap in cv["vs_best"].items():
            verdict = "within noise" if gap["within_noise"] else "worse beyond noise"
            print(
                f"  {kind:15} {gap['auc_gap']:+.4f} AUC behind (p = {gap['p_value']:.3f}): "
                f"{verdict}"
            )
    print(f"report: {out}   (MLflow experiment {evaluate.EXPERIMENT!r}: riskctl mlflow-ui)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from riskcontrol.modeling import tracking

    settings = load_settings()
    rows = tracking.list_versions(settings)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    if not rows:
        print(f"no versions of {settings.registered_model!r} yet: run `riskctl train`")
        return 0

    def num(v, fmt=".4f"):
        return "-" if v is None else format(v, fmt)

    print(
        f"registered model {settings.registered_model!r} ({redact(settings.mlflow_tracking_uri)})"
    )
    print(
        f"  {'ver':>4} {'kind':15} {'aliases':20} {'OOT AUC':>8} {'KS':>7} {'Gini':>7} "
        f"{'valid AUC':>9} {'PSI':>6} {'fit s':>6}  created"
    )
    for r in rows:
        created = dt.datetime.fromtimestamp(r["created"] / 1000).strftime("%Y-%m-%d %H:%M")
        print(
            f"  {r['version']:>4} {r['kind']:15} {','.join(r['aliases']) or '-':20} "
            f"{num(r['oot_auc']):>8} {num(r['oot_ks']):>7} {num(r['oot_gini']):>7} "
            f"{num(r['valid_auc']):>9} {num(r['psi_train_oot'], '.3f'):>6} "
            f"{num(r['train_seconds'], '.1f'):>6}  {created}"
        )
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from riskcontrol.apply.pipeline import run_score

    run = new_run(load_settings())
    print_steps([run_score(run, say)])
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from riskcontrol.analyze.pipeline import run_analyze
    from riskcontrol.apply import pipeline as apply_tier
    from riskcontrol.collect.pipeline import run_collect
    from riskcontrol.modeling.training import run_train

    settings = load_settings()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if not args.skip_generate:
        cmd_generate(args)
        timings["generate"] = time.perf_counter() - t0
    run = new_run(settings)
    steps = []
    for name, fn in (
        ("collect", run_collect),
        ("analyze", run_analyze),
    ):
        t = time.perf_counter()
        steps += fn(run, say)
        timings[name] = time.perf_counter() - t
    t = time.perf_counter()
    trained = run_train(run, say, seed=args.seed)
    timings["train"] = time.perf_counter() - t
    t = time.perf_counter()
    steps += apply_tier.run_apply(run, say)
    timings["apply"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    print(
        f"\nrun {run.run_id}: every step reconciles "
        "(in = out + unchanged + duplicate + quarantined)"
    )
    print_steps(steps)
    print(f"\nmodels (registered as {settings.registered_model!r}):")
    _print_models(trained)
    _print_scored(run)
    print("\ntimings: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    print(
        "\nwhere to look:\n"
        f"  tables      riskctl tables   (Delta under {settings.lakehouse_root})\n"
        f"  models      riskctl mlflow-ui   (store {redact(settings.mlflow_tracking_uri)})\n"
        "  scores      gold.scored_applications, gold.loan_book_risk; cut-off in "
        "gold.cutoff_policy\n"
        "  warnings    gold.warning_indicators; `riskctl alerts list`\n"
        f"  report      {settings.reports_dir}/risk_report_*.html\n"
        "  rejects     ops.quarantine; counts in ops.manifest"
    )
    return 0


def _print_scored(run) -> None:
    from pyspark.sql import functions as F

    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import GOLD_SCORED_APPLICATIONS

    scored = lakehouse.read(run.spark, GOLD_SCORED_APPLICATIONS, run.settings)
    rows = (
        scored.groupBy("quadrant", "decision")
        .agg(F.count("*").alias("n"))
        .orderBy("quadrant", "decision")
        .collect()
    )
    print("\ngold.scored_applications by quadrant and decision:")
    for r in rows:
        print(f"  {r['quadrant']}  {r['decision']:8} {r['n']:>8,}")


def cmd_tables(args: argparse.Namespace) -> int:
    from riskcontrol.core import lakehouse

    settings = load_settings()
    spark = start_spark(settings)
    print(f"{'table':28} {'rows':>12} {'version':>8}  description")
    for st in lakehouse.status(spark, settings):
        rows = f"{st.rows:,}" if st.rows is not None else "-"
        ver = str(st.version) if st.version is not None else "-"
        print(f"{st.full_name:28} {rows:>12} {ver:>8}  {st.description}")
    print(f"\nlakehouse: {settings.lakehouse_root}  ('-': not created yet; run `riskctl run`)")
    return 0


def cmd_mlflow_ui(args: argparse.Namespace) -> int:
    settings = load_settings()
    argv, env = mlflow_ui_command(settings, args.host, args.port)
    os.execve(argv[0], argv, env)
    return 0


def cmd_notebook(args: argparse.Namespace) -> int:
    settings = load_settings()
    argv, env = notebook_command(settings, args.host, args.port)
    say(f"JupyterLab on http://{args.host}:{args.port}/lab over {argv[-1].split('=', 1)[1]}")
    os.execve(argv[0], argv, env)
    return 0


def notebook_command(settings: Settings, host: str, port: int) -> tuple[list[str], dict]:
    """``jupyter lab`` over ``notebooks/`` with this interpreter's environment as the
    ``python3`` kernel; the kernels inherit ``RISK_HOME``, so a notebook's
    ``load_settings()`` reads the same lakehouse and MLflow store as ``riskctl``."""
    argv = [
        os.path.join(os.path.dirname(sys.executable), "jupyter"),
        "lab",
        "--no-browser",
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        *(["--allow-root"] if os.geteuid() == 0 else []),  # containers and CI run as root
        f"--ServerApp.root_dir={PROJECT_ROOT / 'notebooks'}",
    ]
    return argv, {**os.environ, "RISK_HOME": str(settings.home)}


def mlflow_ui_command(settings: Settings, host: str, port: int) -> tuple[list[str], dict]:
    """The ``mlflow ui`` command line and environment: the store URIs (which may carry a
    password) go in the environment, where other users' ``ps`` does not show them."""
    argv = [
        os.path.join(os.path.dirname(sys.executable), "mlflow"),
        "ui",
        "--host",
        host,
        "--port",
        str(port),
    ]
    env = {
        **os.environ,
        "MLFLOW_BACKEND_STORE_URI": settings.mlflow_tracking_uri,
        "MLFLOW_DEFAULT_ARTIFACT_ROOT": settings.mlflow_artifact_root,
    }
    return argv, env


def submit_command(
    settings: Settings, tier: str, run_id: str | None, tasks: Sequence[str] = ()
) -> tuple[list[str], dict]:
    """The spark-submit command line and environment that run ``jobs/<tier>.py`` (only
    ``tasks`` of it, when given); see :func:`riskcontrol.orchestration.submit.submit_spec`."""
    from riskcontrol.orchestration.submit import submit_spec

    spec = submit_spec(settings, tier, run_id, tasks)
    return spec.argv(), {**os.environ, **spec.env}


def cmd_submit(args: argparse.Namespace) -> int:
    tasks = tuple(t.strip() for t in (args.tasks or "").split(",") if t.strip())
    unknown = [t for t in tasks if t not in TIERS[args.tier]]
    if unknown:
        print(
            f"riskctl submit: error: {', '.join(unknown)}: not a task of the {args.tier} job; "
            f"its tasks are {', '.join(TIERS[args.tier])}",
            file=sys.stderr,
        )
        return 2
    argv, env = submit_command(load_settings(), args.tier, args.run_id, tasks)
    print(redact(" ".join(argv)), flush=True)
    os.execve(argv[0], argv, env)
    return 0


def airflow_env(settings: Settings) -> dict[str, str]:
    """Environment that points Airflow at this project's DAGs and home; its metadata
    database is the SQLite file there unless AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is already
    set (a platform's PostgreSQL, infra/deploy/README.md)."""
    home = settings.airflow_home
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")
        or f"sqlite:///{home / 'airflow.db'}",
        # The API server (and UI) of `airflow standalone` on loopback unless told otherwise.
        "AIRFLOW__API__HOST": os.environ.get("AIRFLOW__API__HOST", "127.0.0.1"),
    }


def cmd_airflow(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **airflow_env(settings)}
    argv = [os.path.join(os.path.dirname(sys.executable), "airflow"), *args.airflow_args]
    os.execve(argv[0], argv, env)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskctl",
        description="Big-data risk control pipeline: collect -> analyze -> apply.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(fn=fn)
        return p

    add("init", cmd_init, "create a local .env with a pseudonymization key; show where things go")

    def gen_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--customers", type=int, default=20_000, help="customers to generate (20000)"
        )
        p.add_argument(
            "--seed", type=int, default=42, help="random seed; same seed, same data (42)"
        )
        p.add_argument("--start", default="2024-01-01", help="first application month (2024-01-01)")
        p.add_argument("--months", type=int, default=27, help="months of applications (27)")
        p.add_argument(
            "--deterioration-share",
            type=float,
            default=0.35,
            help="share of the partner_a loans running on the deterioration's first day "
            "that stop paying from then on, for the early-warning indicators to catch; 0 "
            "generates a calm book (0.35)",
        )

    gen_args(add("generate", cmd_generate, "generate a synthetic lending book into RISK_DATA_DIR"))
    p = add(
        "collect",
        cmd_collect,
        "collect tier: lending DB (JDBC, incremental), file drops and the public web -> bronze",
    )
    p.add_argument(
        "--source",
        default=None,
        help="comma-separated subset of lending_db,files,web (default: all)",
    )
    p.add_argument(
        "--since",
        default=None,
        help="lending_db: extract rows with watermark > SINCE (default: the last run's)",
    )
    p.add_argument(
        "--until", default=None, help="lending_db: ... and <= UNTIL (default: the source's max)"
    )
    p.add_argument(
        "--full", action="store_true", help="lending_db: ignore watermarks, re-read everything"
    )
    p.add_argument(
        "--site-epoch",
        type=int,
        default=1,
        help="web: which update of the generated loopback site to serve (1)",
    )
    p = add(
        "crawl",
        cmd_crawl,
        "crawl the public sources (crawlers/sources.yaml) and land the crawl in bronze",
    )
    p.add_argument("--spiders", default="court,penalties,news", help="court,penalties,news")
    p.add_argument("--crawl-id", default=None, help="folder name under data/landing/crawl")
    p.add_argument("--site-epoch", type=int, default=1, help="update of the loopback site (1)")
    p.add_argument(
        "--no-land", dest="land", action="store_false", help="only crawl; leave the files"
    )
    p = add(
        "load-db",
        cmd_load_db,
        "copy the generated lending book into another database (e.g. PostgreSQL) over JDBC",
    )
    p.add_argument("--jdbc-url", required=True, help="jdbc:postgresql://host:5432/lending")
    p.add_argument("--user", default=None, help="database user")
    p.add_argument(
        "--password-env",
        default="RISK_LOAD_DB_PASSWORD",
        help="environment variable holding the password (RISK_LOAD_DB_PASSWORD)",
    )
    from riskcontrol.lenderfile.land import add_ingest_parser
    from riskcontrol.synthetic.site import add_site_parser

    add_site_parser(sub)
    add_ingest_parser(sub)
    add("analyze", cmd_analyze, "analyze tier: bronze -> silver -> gold features")
    p = add(
        "features",
        cmd_features,
        "feature store: `build` rebuilds the gold fs_* tables, their statistics and the online "
        "store; `lookup --customer ID` prints the customer's online features (what "
        "single-application scoring reads)",
    )
    p.add_argument("action", choices=["build", "lookup"])
    p.add_argument("--customer", default=None, help="customer_id for lookup")
    p.add_argument(
        "--as-of", default=None, help="date for days-since features (default: the data's as-of)"
    )
    p = add(
        "erase",
        cmd_erase,
        "erase one customer from every table, Delta history included (VACUUM, and the log "
        "entries before the erasure), and the decision service's journal (first, its files "
        "left with no copy), with an audit row in ops.erasures written first and "
        "updated per table. Earlier table versions become unreadable (time travel ends at "
        "the erasure). Holds the lakehouse lock: pipeline writes wait until it is done. If "
        "it stops half-way, run the same command again: it resumes. Erase the customer in "
        "the source systems too.",
    )
    p.add_argument("--customer", required=True, help="the customer_id to erase, e.g. C00000042")
    p.add_argument(
        "--requested-by", default=os.environ.get("USER", "unknown"), help="who asked (audit)"
    )
    p.add_argument("--reason", default="data subject request", help="why (audit)")
    p = add(
        "privacy-scan",
        cmd_privacy_scan,
        "look for personal data and keys where they do not belong, as an attacker with read "
        "access to the project's home would: every file under RISK_HOME (lakehouse, MLflow "
        "store and artifacts, online store, crawl files and cache, reports, logs), and the "
        "lakehouse, data dir, crawl state, MLflow artifacts and Airflow home when they are "
        "local folders elsewhere, is read decoded (Parquet cells, SQLite rows, gzip/zip "
        "members, unescaped JSON) and searched for every encoding of the keys and the lending "
        "database password, for the national IDs, mobiles, e-mails and names of the lending "
        "database's customers, and for column pairs (region code + birth date) that rebuild "
        "a national ID. Not scanned: .env, .venv, jars, .git, node_modules, *.py, files over "
        "2 GiB (listed) and the source systems (the lending database, the file drops under "
        "data/landing except crawl output, data/drops, data/extracts, the generated site). "
        "Prints findings by file with masked samples, never the value; exit 1 on any "
        "finding, 0 when clean",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="PATH",
        help="also skip this file or folder (e.g. another source system's export); repeatable",
    )
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p = add(
        "rotate-keys",
        cmd_rotate_keys,
        "re-encrypt every encrypted column of every lakehouse table under the active "
        "RISK_BRONZE_KEY, then VACUUM the files holding values under older keys. First set "
        "RISK_BRONZE_KEY to the new key and RISK_BRONZE_RETIRED_KEYS to the old one(s); "
        "afterwards remove the old ones",
    )
    p.add_argument("--dry-run", action="store_true", help="only count the rows under older keys")
    p = add(
        "train",
        cmd_train,
        "train the credit models (decision tree, gradient-boosted trees, neural network, "
        "scorecard, logistic regression) on matured applications, split train / validation / "
        "out-of-time by month; log each to MLflow, register it, and promote the best to "
        "champion if it beats the current one by RISK_PROMOTION_MARGIN out of time",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--kinds", default=None, help="comma-separated model kinds (default RISK_MODEL_KINDS)"
    )
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="Optuna trials per kind, each a nested MLflow run (default RISK_TUNE_TRIALS=0)",
    )
    p.add_argument(
        "--sampler",
        choices=["tpe", "nsga2", "random"],
        default=None,
        help="Optuna sampler; nsga2 optimises validation AUC and the overfitting gap",
    )
    p.add_argument(
        "--tune-seconds",
        type=float,
        default=None,
        metavar="S",
        help="search budget per kind in seconds (RISK_TUNE_SECONDS); alone, the search runs "
        "until it is spent; with --trials, whichever ends first",
    )
    p = add(
        "promote",
        cmd_promote,
        "apply the champion rule: score the challenger and the champion on the current "
        "out-of-time window; move `champion` if the challenger wins by the margin; log why",
    )
    p.add_argument("--version", default=None, help="version to judge (default: the challenger)")
    p.add_argument("--margin", type=float, default=None, help="AUC margin (RISK_PROMOTION_MARGIN)")
    p.add_argument("--force", action="store_true", help="promote even if the rule says no")
    p = add(
        "evaluate-dataset",
        cmd_evaluate_dataset,
        "try the models on your own book: land any loan-level CSV or Parquet file (RFC 4180 "
        "quoting, money strings, dates like 28-Feb-97, missing values, high-cardinality text "
        "columns) through bronze -> silver with quarantine, train every model kind on it "
        "(out-of-time split with --time-col, stratified otherwise) and write a JSON report",
    )
    p.add_argument("path", help="a CSV or Parquet file (or a folder of Parquet files)")
    p.add_argument("--target", required=True, help="the outcome column, e.g. loan_status")
    p.add_argument(
        "--bad",
        required=True,
        help="comma-separated target values that mean default, e.g. 'Charged Off,Default'; "
        "every other non-missing value is good, a missing target is quarantined",
    )
    p.add_argument("--drop", default=None, help="comma-separated columns not to use")
    p.add_argument(
        "--pii",
        action="append",
        default=[],
        metavar="COL",
        help="treat COL as personal data whatever it looks like (repeatable); columns are "
        "detected by name and value shape (IDs, SSNs, phones, e-mails, cards, names, "
        "addresses): encrypted in bronze, never features",
    )
    p.add_argument(
        "--not-pii",
        action="append",
        default=[],
        metavar="COL",
        help="COL was detected as personal data but is not (repeatable)",
    )
    p.add_argument(
        "--allow-pii-feature",
        action="append",
        default=[],
        metavar="COL",
        help="use the personal column COL as a model feature all the same (repeatable)",
    )
    p.add_argument(
        "--time-col", default=None, help="date column: split train/validation/test by time"
    )
    p.add_argument(
        "--outcome-months",
        type=int,
        default=0,
        metavar="N",
        help="with --time-col: leave out rows dated within N months of the file's latest "
        "date, whose outcome has not had time to show (a loan issued last month is still "
        "'Current'); they are counted in the report's maturity (default 0: every row)",
    )
    p.add_argument(
        "--report", default=None, help="JSON report path (default reports/evaluate-NAME.json)"
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--kinds", default=None, help="comma-separated model kinds (default: all)")
    p.add_argument("--trials", type=int, default=None, help="Optuna trials per kind (0)")
    p.add_argument("--sampler", choices=["tpe", "nsga2", "random"], default=None)
    p.add_argument(
        "--tune-seconds",
        type=float,
        default=None,
        metavar="S",
        help="search budget per kind in seconds (RISK_TUNE_SECONDS)",
    )
    p.add_argument(
        "--cv",
        choices=["auto", "always", "never"],
        default="auto",
        help="repeated stratified k-fold cross-validation of every kind: auto (default) when "
        "the file has fewer usable rows than RISK_CV_MAX_ROWS (20000), where one test set is "
        "too small to tell models apart",
    )
    p.add_argument("--folds", type=int, default=None, help="folds (RISK_CV_FOLDS, 5)")
    p.add_argument("--repeats", type=int, default=None, help="repeats (RISK_CV_REPEATS, 2)")
    p = add("models", cmd_models, "list registered versions, their aliases and metrics")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add(
        "score",
        cmd_score,
        "apply tier: score pending applications with the champion model and the active "
        "cut-off policy into gold.scored_applications",
    )

    add_apply_parsers(add)
    p = add(
        "run",
        cmd_run,
        "the whole pipeline: generate, collect, analyze, train, then apply (cut-off policy, "
        "scoring, loan book, early warning and alerts, the risk report)",
    )
    gen_args(p)
    p.add_argument("--skip-generate", action="store_true", help="use the data already generated")
    p = add(
        "submit",
        cmd_submit,
        "spark-submit one tier's job (jobs/TIER.py) to RISK_SPARK_MASTER with the local jars; "
        "the job ships the library to the executors, which run spark.pyspark.python from "
        "RISK_SPARK_CONF (the worker nodes' Python with constraints.txt installed)",
    )
    p.add_argument("tier", choices=list(TIERS))
    p.add_argument("--run-id", default=None, help="run id recorded in ops.manifest")
    p.add_argument(
        "--tasks",
        default=None,
        help="comma-separated tasks of the tier to run, in the tier's order (default: all): "
        + "; ".join(f"{tier}: {', '.join(tasks)}" for tier, tasks in TIERS.items()),
    )
    add("tables", cmd_tables, "list every table with its row count and Delta version")
    p = add("mlflow-ui", cmd_mlflow_ui, "serve the MLflow UI over the project's tracking store")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p = add(
        "notebook",
        cmd_notebook,
        "JupyterLab over notebooks/ with the project's environment as its kernel (the "
        "address it prints carries the access token)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8888, help="port (8888)")
    p = add("airflow", cmd_airflow, "run the airflow CLI with this project's home and DAGs")
    p.add_argument("airflow_args", nargs=argparse.REMAINDER, help="e.g. standalone, dags list")
    from riskcontrol.serve.cli import register
    from riskcontrol.workbench.cli import register as register_workbench

    register(sub)
    register_workbench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Everything riskctl writes (lakehouse, MLflow store, crawl state, reports, logs) and
    # everything it starts (Spark, the crawler, MLflow, Airflow) is private to its user.
    os.umask(0o077)
    try:
        return args.fn(args)
    except KeyboardInterrupt:
        print(f"riskctl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("RISK_DEBUG"):
            raise
        return _fail(args.command, exc)


def _fail(command: str, exc: Exception) -> int:
    """Print what went wrong as one line, with no secret in it, and return exit status 2;
    an error this does not know (a bug) keeps its traceback."""
    from riskcontrol.cli.errors import explain

    try:
        settings = get_settings()
    except Exception:  # the settings themselves are what failed
        settings = None
    if isinstance(exc, RuntimeError | ValueError | TimeoutError):
        line = explain(exc, settings) or str(exc)
    else:
        line = explain(exc, settings)
        if line is None:
            raise exc
    print(f"riskctl {command}: error: {redact(line, settings)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
