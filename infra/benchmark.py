"""Benchmark: generation and each pipeline tier on a generated book; prints figures.

    python infra/benchmark.py --customers 20000 [--home /tmp/riskbench] [--skip-pipeline]
                              [--collect-only] [--score-applications 1000000]

Figures: wall time, rows per second and peak memory (the Python process's peak RSS,
and the Spark JVM's peak RSS in each stage, sampled twice a second) for generation, each
collect source (JDBC rows/s, file drops, the crawl's pages/s on the loopback site and its
landing), an incremental re-extract, analyze, train and each apply step (cut-off,
scoring, loan book, early warning, report); with ``--score-applications N`` batch
scoring of N applications and single-application latency; and the collect run's
reconciliation table. It writes into its own home (default: a temp folder), never into
the project's lakehouse.

    python infra/benchmark.py --scaling 20000,100000,1000000 [--analyze-only] [--home DIR]

runs the benchmark once per book size, each in a process of its own, and prints how each
stage's time grows: seconds per size and the growth exponent k of time ~ customers^k
between the smallest and the largest, and between the two largest with three sizes or
more (1 is linear; above 1.2 at the large end a stage grows faster than its input).
``--json FILE`` writes one run's figures for such a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def peak_rss_mb() -> float:
    """Peak RSS of this Python process (the generator runs here)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jvm_rss_mb() -> float:
    """Current RSS of the Spark JVM started by this process (0 if none)."""
    out = subprocess.run(
        ["ps", "-o", "rss=,comm=", "--ppid", str(os.getpid())], capture_output=True, text=True
    ).stdout
    rows = [line.split(None, 1) for line in out.splitlines() if line.strip()]
    # the JVM, not `ps` itself (a child too while it runs)
    return sum(int(rss) for rss, comm in rows if comm.strip() != "ps") / 1024


def python_rss_mb() -> float:
    """Current RSS of this Python process (the driver's Python side)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssPeaks:
    """Samples the RSS of this process's children (the Spark JVM) and of this process
    twice a second in a daemon thread; ``take()`` returns the peaks (JVM, Python) since
    the last ``take()``: one stage's."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.overall = interval, 0.0
        self.peak = self.python_peak = 0.0
        self.lock, self.stopped = threading.Lock(), threading.Event()
        threading.Thread(target=self._sample, daemon=True, name="rss").start()

    def _sample(self) -> None:
        while not self.stopped.is_set():
            rss, own = jvm_rss_mb(), python_rss_mb()
            with self.lock:
                self.peak = max(self.peak, rss)
                self.overall = max(self.overall, rss)
                self.python_peak = max(self.python_peak, own)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()

    def take(self) -> tuple[float, float]:
        with self.lock:
            peaks = max(self.peak, jvm_rss_mb()), max(self.python_peak, python_rss_mb())
            self.peak = self.python_peak = 0.0
        return peaks


class Stages(list):
    """The benchmark's rows (name, seconds, rows, unit); each also marks its window of
    wall-clock time, ending now, for ``--profile``, and the peak RSS of the JVM and of
    this Python process in it."""

    def __init__(self, rss: RssPeaks | None = None):
        super().__init__()
        self.windows: list[tuple[str, float, float]] = []
        self.rss = rss
        self.jvm_peaks: dict[str, float] = {}
        self.python_peaks: dict[str, float] = {}

    def append(self, row, window: bool = True) -> None:
        super().append(row)
        if self.rss is not None and window:
            self.jvm_peaks[row[0]], self.python_peaks[row[0]] = self.rss.take()
        if window:
            end = time.time()
            self.windows.append((row[0], end - row[1], end))

    def to_json(self, customers: int, python_peak_mb: float, jvm_peak_mb: float) -> dict:
        return {
            "customers": customers,
            "stages": [
                {
                    "stage": n,
                    "seconds": s,
                    "rows": r,
                    "unit": u,
                    "jvm_peak_mb": self.jvm_peaks.get(n),
                    "python_peak_mb": self.python_peaks.get(n),
                }
                for n, s, r, u in self
            ],
            "python_peak_mb": python_peak_mb,
            "jvm_peak_mb": jvm_peak_mb,
        }


def growth_exponent(n1: int, t1: float, n2: int, t2: float) -> float | None:
    """k in time ~ customers^k between two sizes (None when a time is too small to say)."""
    if n1 == n2 or min(t1, t2) < 0.5:
        return None
    return math.log(t2 / t1) / math.log(n2 / n1)


def scaling_table(runs: list[dict]) -> str:
    """Seconds per stage at each book size (rows in the order of the largest run), the
    growth exponent k between the smallest and the largest size and, with three sizes or
    more, k between the two largest (where fixed costs weigh least), and rows per second
    at the largest; runs are ``Stages.to_json`` dicts."""
    runs = sorted(runs, key=lambda r: r["customers"])
    sizes = [r["customers"] for r in runs]
    by_size = [{st["stage"]: st for st in r["stages"]} for r in runs]
    names = [st["stage"] for st in runs[-1]["stages"]]
    pairs = [(0, len(sizes) - 1)] + ([(len(sizes) - 2, len(sizes) - 1)] if len(sizes) > 2 else [])
    w = max(14, *(len(n) + 1 for n in names))
    head = f"{'stage':{w}}" + "".join(f"{n:>12,}" for n in sizes)
    head += f"{'k':>7}" + (f"{'k end':>7}" if len(pairs) > 1 else "") + f"{'rows/s':>11}  note"
    lines = [head, "-" * len(head)]
    for name in names:
        cells = [b.get(name, {}).get("seconds") for b in by_size]
        ks = [
            growth_exponent(sizes[i], cells[i], sizes[j], cells[j])
            if cells[i] is not None and cells[j] is not None
            else None
            for i, j in pairs
        ]
        last = by_size[-1][name]
        rate = f"{last['rows'] / last['seconds']:,.0f}" if last["rows"] and last["seconds"] else "-"
        note = "faster than linear" if ks[-1] is not None and ks[-1] > 1.2 else ""
        lines.append(
            f"{name:{w}}"
            + "".join(f"{c:>12.1f}" if c is not None else f"{'-':>12}" for c in cells)
            + "".join(f"{k:>7.2f}" if k is not None else f"{'-':>7}" for k in ks)
            + f"{rate:>11}  {note}".rstrip()
        )
    lines.append(
        f"{'peak MB':{w}}"
        + "".join(f"{r['jvm_peak_mb']:>7,.0f}/{r['python_peak_mb']:<4,.0f}" for r in runs)
        + "  (JVM/Python)"
    )
    return "\n".join(lines)


def book_sizes(text: str) -> list[int]:
    """``--scaling``'s sizes: whole numbers of customers above zero, in increasing order."""
    try:
        sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give book sizes as whole numbers, e.g. 20000,100000"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give two or more different book sizes above zero, e.g. 20000,100000"
        )
    return sorted(sizes)


def run_scaling(args, passthrough: list[str]) -> int:
    """``--scaling``: this script once per size, each in its own process and home."""
    sizes = args.scaling
    base = Path(args.home or tempfile.mkdtemp(prefix="riskscale-"))
    base.mkdir(parents=True, exist_ok=True)
    runs = []
    for n in sizes:
        out = base / f"{n}.json"
        argv = [sys.executable, __file__, "--customers", str(n), "--seed", str(args.seed)]
        argv += ["--home", str(base / str(n)), "--json", str(out), *passthrough]
        print(f"\n=== {n:,} customers: {' '.join(argv[1:])}", flush=True)
        done = subprocess.run(argv)
        if done.returncode != 0:
            print(f"the run of {n:,} customers failed ({done.returncode}); table so far:")
            break
        runs.append(json.loads(out.read_text()))
    if runs:
        print("\nhow time grows with the book (seconds; k: time ~ customers^k):")
        print(scaling_table(runs))
    return 0 if len(runs) == len(sizes) else 1


def print_profile(spark, settings, windows, event_log: Path) -> None:
    """Spark jobs and Delta commits per benchmark stage and per manifest step (the 20
    longest), from the event log and the Delta logs."""
    from pyspark.sql import functions as F

    from riskcontrol.core import lakehouse, profiling
    from riskcontrol.core.catalog import OPS_MANIFEST

    steps = [
        (f"{r.stage} {r.target}", r.start / 1e6, r.end / 1e6)
        for r in lakehouse.read(spark, OPS_MANIFEST, settings)
        .select(
            "stage",
            "target",
            F.expr("unix_micros(started_at)").alias("start"),
            F.expr("unix_micros(finished_at)").alias("end"),
        )
        .collect()
    ]
    spark.stop()  # the event log is complete once the session stops
    jobs = profiling.read_event_log(event_log)
    commits = profiling.delta_commits(Path(settings.lakehouse_root))
    print("\nwhere the time goes, per stage (Spark event log, Delta logs):")
    print(profiling.format_breakdown(profiling.breakdown(windows, jobs, commits), "stage"))
    longest = sorted(profiling.breakdown(steps, jobs, commits), key=lambda p: -p.seconds)[:20]
    print("\nthe 20 longest manifest steps:")
    print(profiling.format_breakdown(longest, "manifest step"))


def reconciliation(steps) -> list[str]:
    """The collect run's manifest counts (``StepCounts``), one line per step: in = out +
    unchanged + duplicates + quarantined, as each step counted them (the last column is
    the step's own ``reconciles``)."""
    lines = [
        "reconciliation of the collect run (in = out + unchanged + duplicates + quarantined):",
        f"  {'source':22} {'target':24} {'in':>11} {'out':>11} {'unchanged':>11} "
        f"{'dup.':>8} {'quar.':>8}  sums",
    ]
    for s in steps:
        lines.append(
            f"  {s.source:22} {s.target:24} {s.rows_in:>11,} {s.rows_out:>11,} "
            f"{s.rows_unchanged:>11,} {s.rows_duplicate:>8,} {s.rows_quarantined:>8,}  "
            f"{'yes' if s.reconciles else 'NO'}"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--home", default=None, help="working folder (default: a temp folder)")
    parser.add_argument("--skip-pipeline", action="store_true", help="only time generation")
    parser.add_argument(
        "--json", default=None, metavar="FILE", help="also write the figures to FILE (JSON)"
    )
    parser.add_argument(
        "--scaling",
        default=None,
        type=book_sizes,
        metavar="N,N,...",
        help="run once per book size (each in its own process, homes under --home) and print "
        "each stage's seconds per size and its growth exponent; --collect-only, "
        "--analyze-only and --sources apply to every run",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="write Spark's event log and print, per stage and per manifest step, the Spark "
        "jobs, tasks, busy and idle seconds and the Delta commits",
    )
    parser.add_argument(
        "--collect-only", action="store_true", help="stop after the collect tier (and re-extract)"
    )
    parser.add_argument(
        "--analyze-only",
        action="store_true",
        help="stop after the analyze tier (silver, entity resolution, gold, feature store, DQ)",
    )
    parser.add_argument(
        "--sources",
        default="lending_db,files,web",
        help="collect sources to run (e.g. lending_db,files to skip the crawl at large scale)",
    )
    parser.add_argument(
        "--evaluate-dataset",
        type=int,
        default=None,
        metavar="ROWS",
        help="instead: time `riskctl evaluate-dataset` on a generated messy loan file of ROWS "
        "rows (generation, landing, each model's fit and test AUC/KS/Gini)",
    )
    parser.add_argument(
        "--peers",
        type=int,
        default=None,
        metavar="ROWS",
        help="instead: time `riskctl ingest-file` on a generated messy loan file of ROWS rows "
        "next to plain PySpark, DuckDB, Polars and pandas doing the same parsing, each in its "
        "own process (infra/peers.py; needs the bench extra)",
    )
    parser.add_argument(
        "--score-applications",
        type=int,
        default=None,
        metavar="N",
        help="after the pipeline: batch-score N applications (the book's application "
        "features replicated) into a scratch Delta table, and time single-application scoring",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --home of an earlier run and --score-applications: skip generation and the "
        "pipeline, time the report, batch scoring and single-application scoring only",
    )
    args = parser.parse_args()
    if args.scaling:
        stops = {"--collect-only": args.collect_only, "--analyze-only": args.analyze_only}
        passthrough = [flag for flag, on in stops.items() if on]
        return run_scaling(args, [*passthrough, "--sources", args.sources])

    home = Path(args.home or tempfile.mkdtemp(prefix="riskbench-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["RISK_HOME"] = str(home)
    os.environ.setdefault("RISK_PII_KEY", "benchmark-only-key")
    os.environ.setdefault("RISK_BRONZE_KEY", "42" * 32)
    event_log = home / "eventlog"
    if args.profile:
        from riskcontrol.core.profiling import event_log_conf

        conf = json.loads(os.environ.get("RISK_SPARK_CONF") or "{}")
        os.environ["RISK_SPARK_CONF"] = json.dumps({**conf, **event_log_conf(event_log)})
    if args.evaluate_dataset:
        return bench_evaluate_dataset(home, args.evaluate_dataset, args.seed)
    if args.peers:
        from peers import SEED, run_peers  # infra/peers.py, beside this script

        return run_peers(home, args.peers, SEED)
    if args.reuse:
        return bench_reuse(args.score_applications or 1_000_000)

    from riskcontrol.core.config import get_settings
    from riskcontrol.synthetic.generate import generate

    settings = get_settings()
    rows = Stages(RssPeaks())

    t = time.perf_counter()
    summary = generate(settings.data_dir, customers=args.customers, seed=args.seed)
    gen_s = time.perf_counter() - t
    d = summary.to_dict()
    gen_rows = sum(d["row_counts"].values()) + sum(f["total"] for f in d["files"].values())
    rows.append(("generate", gen_s, gen_rows, "rows+lines written"))
    print(
        f"generate: {args.customers:,} customers, {gen_rows:,} rows in {gen_s:.1f}s "
        f"({gen_rows / gen_s:,.0f} rows/s), peak RSS {peak_rss_mb():.0f} MB",
        flush=True,
    )

    if not args.skip_pipeline:
        from riskcontrol.analyze.pipeline import run_gold, run_quality, run_resolve, run_silver
        from riskcontrol.collect import crawl
        from riskcontrol.collect.pipeline import COLLECT_SOURCES, run_collect_lending_db
        from riskcontrol.core.dates import observation_time
        from riskcontrol.core.runs import Run
        from riskcontrol.core.spark import get_spark
        from riskcontrol.modeling.training import run_train

        t = time.perf_counter()
        run = Run(get_spark(settings), settings)
        rows.append(("spark start", time.perf_counter() - t, 0, ""))
        collect_steps = []
        wanted = args.sources.split(",")
        for name, source_fn in COLLECT_SOURCES.items():
            if name not in wanted:
                continue
            t = time.perf_counter()
            web_start = time.time()
            if name == "web":
                stats, steps = crawl.collect_public_web(run, print)
                secs = time.perf_counter() - t
                total = stats["totals"]
                crawl_s = max(s["elapsed_seconds"] for s in stats["spiders"].values())
                responses = total["responses"]
                rows.append(("crawl", crawl_s, responses, "pages fetched (loopback site)"), False)
                rows.append(
                    ("land crawl", secs - crawl_s, sum(s.rows_in for s in steps), "lines landed"),
                    False,
                )
                rows.windows.append(("collect web (crawl + land)", web_start, time.time()))
            else:
                steps = source_fn(run, print)
                secs = time.perf_counter() - t
                rows.append((f"collect {name}", secs, sum(s.rows_in for s in steps), "rows read"))
            collect_steps += steps
        t = time.perf_counter()
        again = run_collect_lending_db(run, print)
        rows.append(
            ("re-extract", time.perf_counter() - t, sum(s.rows_in for s in again), "rows read")
        )
        print("\n" + "\n".join(reconciliation(collect_steps + again)))
    if not args.skip_pipeline and not args.collect_only:
        analyze_start = time.perf_counter()
        t = time.perf_counter()
        steps = run_silver(run, print)
        rows.append(("silver", time.perf_counter() - t, sum(s.rows_in for s in steps), "rows in"))
        t = time.perf_counter()
        steps = run_resolve(run, print)
        rows.append(("resolve", time.perf_counter() - t, sum(s.rows_in for s in steps), "records"))
        t = time.perf_counter()
        from riskcontrol.analyze import feature_store

        end = observation_time(run.spark, run.settings)
        built = feature_store.build_feature_tables(run, until=end)
        rows.append(("fs tables", time.perf_counter() - t, sum(built.values()), "rows written"))
        t = time.perf_counter()
        feature_store.materialize(feature_store.feature_store(run.settings), end)
        rows.append(("materialize", time.perf_counter() - t, 0, ""))
        # gold reads the customer's history from the feature store: after it (as run_analyze)
        t = time.perf_counter()
        steps = run_gold(run, print)
        rows.append(
            ("gold", time.perf_counter() - t, sum(s.rows_in for s in steps), "applications")
        )
        t = time.perf_counter()
        results = run_quality(run, print)
        rows.append(("quality", time.perf_counter() - t, len(results), "expectations"))
        rows.append(("analyze", time.perf_counter() - analyze_start, 0, "all of the above"), False)
        er = settings.reports_dir / "entity_resolution.json"
        if er.exists():
            report = json.loads(er.read_text())
            for kind, r in report.items():
                for side in ("person", "company"):
                    m = r[side]
                    print(
                        f"entity resolution {kind:8} {side:8} truth {m['truth']:>5} "
                        f"tp {m['tp']:>5} fp {m['fp']:>4} fn {m['fn']:>4} "
                        f"precision {m['precision']} recall {m['recall']} f1 {m['f1']}"
                    )
    if not args.skip_pipeline and not args.collect_only and not args.analyze_only:
        t = time.perf_counter()
        trained = run_train(run, print).trained
        rows.append(("train", time.perf_counter() - t, 0, ""))
        from riskcontrol.apply import pipeline as steps
        from riskcontrol.modeling import tracking

        apply_start = time.perf_counter()
        champion = tracking.load_champion(settings)
        t = time.perf_counter()
        cut = steps.run_cutoff(run, print, champion=champion)
        rows.append(("cutoff", time.perf_counter() - t, len(cut.frame), "candidates"))
        t = time.perf_counter()
        step = steps.run_score(run, print, champion)
        rows.append(("score", time.perf_counter() - t, step.rows_in, "applications scored"))
        t = time.perf_counter()
        step = steps.run_book(run, print, champion=champion)
        rows.append(("loan book", time.perf_counter() - t, step.rows_in, "active loans"))
        t = time.perf_counter()
        warned = steps.run_warning(run, print, champion=champion)
        rows.append(("warning", time.perf_counter() - t, warned.counts.rows_in, "indicator rows"))
        t = time.perf_counter()
        steps.run_report(run, print)
        rows.append(("report", time.perf_counter() - t, 0, "HTML + PDF"))
        rows.append(("apply", time.perf_counter() - apply_start, 0, "all of the above"), False)
        if args.score_applications:
            rows += bench_scoring(run, champion, args.score_applications)
        for tm in trained:
            print(
                f"model {tm.kind}: out-of-time AUC {tm.metrics['oot_auc']:.4f} "
                f"KS {tm.metrics['oot_ks']:.4f}, train {tm.train_seconds:.1f}s"
            )
    jvm_peak = max(rows.rss.overall, rows.rss.take()[0])
    if not args.skip_pipeline:
        print(f"Spark JVM RSS now: {jvm_rss_mb():.0f} MB, peak {jvm_peak:.0f} MB")

    print(
        f"\n{'stage':12} {'seconds':>9} {'rows':>12} {'rows/s':>10} {'JVM MB':>7} "
        f"{'Py MB':>7}  unit"
    )
    for name, secs, n, unit in rows:
        rate = f"{n / secs:,.0f}" if n else "-"
        jvm, own = rows.jvm_peaks.get(name), rows.python_peaks.get(name)
        jvm, own = (f"{mb:,.0f}" if mb else "-" for mb in (jvm, own))
        print(f"{name:12} {secs:>9.1f} {n:>12,} {rate:>10} {jvm:>7} {own:>7}  {unit}")
    print(f"peak RSS of the Python process: {peak_rss_mb():.0f} MB")
    if args.json:
        figures = rows.to_json(args.customers, peak_rss_mb(), jvm_peak)
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    if args.profile and not args.skip_pipeline:
        print_profile(run.spark, settings, rows.windows, event_log)
    print(f"home: {home}")
    return 0


def bench_reuse(n: int) -> int:
    """Report, batch and single-application scoring on the lakehouse of an earlier run."""
    from riskcontrol.apply.pipeline import steps
    from riskcontrol.core.config import get_settings
    from riskcontrol.core.runs import Run
    from riskcontrol.core.spark import get_spark
    from riskcontrol.modeling import tracking

    settings = get_settings()
    run = Run(get_spark(settings), settings)
    champion = tracking.load_champion(settings)
    rows = bench_scoring(run, champion, n)
    t = time.perf_counter()
    try:
        steps.run_report(run, print)
        rows.append(("report", time.perf_counter() - t, 0, "HTML + PDF"))
    except FileNotFoundError as exc:  # an earlier run that stopped before early warning
        print(f"report not timed: {exc}")
    for name, secs, count, unit in rows:
        rate = f"{count / secs:,.0f}/s" if count else ""
        print(f"{name:16} {secs:>9.2f}s {count:>12,} {rate:>12}  {unit}")
    print(f"Spark JVM RSS now: {jvm_rss_mb():.0f} MB; Python peak RSS {peak_rss_mb():.0f} MB")
    return 0


def bench_scoring(run, champion, n: int) -> list[tuple[str, float, int, str]]:
    """Batch scoring of ``n`` applications into a scratch table, and one-at-a-time latency."""
    import statistics

    from pyspark.sql import functions as F

    from riskcontrol.apply import online, scoring
    from riskcontrol.core import lakehouse
    from riskcontrol.core.catalog import GOLD_APPLICATION_FEATURES, GOLD_SCORED_APPLICATIONS

    spark, settings = run.spark, run.settings
    scratch = settings.model_copy(update={"lakehouse_root": str(settings.home / "bench_lake")})
    features = lakehouse.read(spark, GOLD_APPLICATION_FEATURES, settings)
    base = features.count()
    copies = -(-n // base)
    wide = (
        features.crossJoin(spark.range(copies).withColumnRenamed("id", "copy"))
        .withColumn("application_id", F.concat_ws("-", "application_id", F.col("copy")))
        .withColumn("status", F.lit("pending"))
        .drop("copy")
        .limit(n)
    )
    lakehouse.overwrite(wide, GOLD_APPLICATION_FEATURES, scratch)
    rows = lakehouse.read(spark, GOLD_APPLICATION_FEATURES, scratch)
    policy = scoring.active_policy(spark, settings)
    out = []
    for attempt in ("first", "re-score"):
        t = time.perf_counter()
        scored = scoring.score_applications(rows, champion, settings, policy)
        result = lakehouse.merge(scored, GOLD_SCORED_APPLICATIONS, scratch)
        secs = time.perf_counter() - t
        done = result.inserted + result.updated
        print(
            f"batch scoring ({attempt}): {done:,} applications ({champion.kind}, reason codes, "
            f"MERGE) in {secs:.1f}s = {done / secs:,.0f}/s",
            flush=True,
        )
        out.append((f"batch {attempt}", secs, done, "applications scored"))
    sample = features.where("status = 'pending'").limit(20).collect()
    scorer = online.ApplicationScorer(settings, spark)
    requests = [{**{c: r[c] for c in online.REQUIRED}, "age": r["age"]} for r in sample]
    scorer.score(requests[0])  # warm-up
    latencies = []
    for request in requests:
        t = time.perf_counter()
        scorer.score(request)
        latencies.append(time.perf_counter() - t)
    latencies.sort()
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    print(
        f"single application ({scorer.mode}): median {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms over {len(latencies)} calls after warm-up",
        flush=True,
    )
    out.append(("one app", statistics.median(latencies), 1, "median latency"))
    return out


def bench_evaluate_dataset(home: Path, n_rows: int, seed: int) -> int:
    """Generate a messy loan file of ``n_rows`` and time evaluate-dataset on it."""
    from riskcontrol.core.config import get_settings
    from riskcontrol.core.spark import get_spark
    from riskcontrol.lenderfile import evaluate
    from riskcontrol.synthetic.generate import loanfile

    settings = get_settings()
    path = home / f"loans_{n_rows}.csv"
    t = time.perf_counter()
    truth = loanfile.write_loan_file(path, rows=n_rows, seed=seed)
    gen_s = time.perf_counter() - t
    size_mb = path.stat().st_size / 2**20
    print(f"generate: {n_rows:,} rows, {size_mb:,.0f} MB CSV in {gen_s:.1f}s", flush=True)
    t = time.perf_counter()
    spark = get_spark(settings)
    print(f"spark start: {time.perf_counter() - t:.1f}s", flush=True)
    t = time.perf_counter()
    report = evaluate.evaluate_dataset(
        spark,
        settings,
        str(path),
        truth["target"],
        truth["bad_values"],
        ["member_id"],
        truth["time_col"],
        seed,
        lambda m: print(m, flush=True),
    )
    wall = time.perf_counter() - t
    evaluate.write_report(report, home / "evaluate-report.json")
    print(
        f"\nrows read {report['rows_read']:,} = used {report['rows_used']:,} + quarantined "
        f"{report['rows_quarantined']:,} {report['quarantined_by_reason']} "
        f"(generator planted {truth['quarantined_by_rule']})"
    )
    print(f"split {report['split']}")
    print(f"\n{'stage':22} {'seconds':>9} {'rows/s':>10}")
    print(f"{'generate file':22} {gen_s:9.1f} {n_rows / gen_s:10,.0f}")
    land = report["seconds"]["land"]
    print(f"{'land (bronze->silver)':22} {land:9.1f} {n_rows / land:10,.0f}")
    print(f"{'train + log 4 models':22} {report['seconds']['train']:9.1f}")
    print(f"{'evaluate-dataset wall':22} {wall:9.1f} {n_rows / wall:10,.0f}")
    print(f"\n{'model':15} {'test AUC':>8} {'KS':>7} {'Gini':>7} {'fit s':>7} {'train rows':>11}")
    for kind, m in report["models"].items():
        print(
            f"{kind:15} {m['test_auc']:8.4f} {m['test_ks']:7.4f} {m['test_gini']:7.4f} "
            f"{m['train_seconds']:7.1f} {m['train_rows']:>11,}"
        )
    print(f"\nSpark JVM RSS now: {jvm_rss_mb():.0f} MB; Python peak RSS {peak_rss_mb():.0f} MB")
    print(f"report: {home / 'evaluate-report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
