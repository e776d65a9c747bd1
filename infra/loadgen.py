"""A bounded, open-loop load generator for the decision service (loopback only).

It sends POST /v1/decisions at a fixed rate for a fixed duration (request i leaves at
start + i / rate, whether or not earlier answers came back, so a slow server shows as
latency, not as a lower rate), each application new (a fresh application id), and prints
the achieved rate, p50/p95/p99/max latency, errors by status, and the CPU seconds the
server and the generator used. ``--steps`` runs several rates one after another and
reports the highest that kept p99 under ``--p99-limit-ms``.

    python infra/loadgen.py --url http://127.0.0.1:8000 --key-file app.key \\
        --rate 200 --duration 60 --server-pid $(pgrep -f 'riskctl serve')
    python infra/loadgen.py ... --steps 100,200,300,400 --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

PURPOSES = ("consumer", "education", "medical", "travel", "home_improvement")
CHANNELS = ("app", "web", "partner", "branch")
PROVINCES = ("Zhejiang", "Guangdong", "Jiangsu", "Shanghai", "Beijing", "Sichuan")
EMPLOYMENT = ("salaried", "self_employed", "student", "retired")
EDUCATION = ("high_school", "college", "bachelor", "master")


def application(i: int, run: str, customers: int, rng: random.Random, fmt: str) -> dict:
    return {
        "application_id": f"LG-{run}-{i}",
        "customer_id": fmt.format(rng.randint(1, customers)),
        "requested_amount": float(rng.choice((3000, 8000, 15000, 30000, 60000))),
        "term_months": rng.choice((6, 12, 24, 36)),
        "purpose": rng.choice(PURPOSES),
        "channel": rng.choice(CHANNELS),
        "province": rng.choice(PROVINCES),
        "monthly_income": float(rng.randint(3000, 40000)),
        "age": rng.randint(21, 58),
        "employment_type": rng.choice(EMPLOYMENT),
        "education": rng.choice(EDUCATION),
    }


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process and its children (from /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def run_step(args, rate: float, run: str) -> dict:
    import httpx

    rng = random.Random(args.seed)
    total = int(rate * args.duration)
    headers = {"Authorization": f"Bearer {args.key}", "content-type": "application/json"}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    verify = args.ca if args.ca else True
    limits = httpx.Limits(
        max_connections=args.connections, max_keepalive_connections=args.connections
    )
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, timeout=10.0, limits=limits, verify=verify
    ) as client:

        async def one(i: int) -> None:
            body = json.dumps(application(i, run, args.customers, rng, args.customer_format))
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/decisions", content=body)
                status = str(r.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            ms = (time.perf_counter() - t0) * 1000
            if status == "200":
                latencies.append(ms)
            else:
                errors[status] = errors.get(status, 0) + 1

        cpu0, srv0, t_start = own_cpu(), cpu_seconds(args.server_pid), time.perf_counter()
        tasks = []
        for i in range(total):
            delay = t_start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t_start
        cpu1, srv1 = own_cpu(), cpu_seconds(args.server_pid)
    latencies.sort()
    return {
        "target_rate": rate,
        "requests": total,
        "ok": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "achieved_rate": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.50), 2),
        "p95_ms": round(pct(latencies, 0.95), 2),
        "p99_ms": round(pct(latencies, 0.99), 2),
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "generator_cpu_s": round(cpu1 - cpu0, 2),
        "server_cpu_s": round(srv1 - srv0, 2) if srv0 is not None and srv1 is not None else None,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default="http://127.0.0.1:8000", help="loopback only")
    p.add_argument("--key-file", type=Path, required=True, help="a file holding an API key")
    p.add_argument("--ca", default=None, help="CA file to verify an https server")
    p.add_argument("--rate", type=float, default=200.0, help="requests per second (200)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds per rate (60)")
    p.add_argument("--steps", default=None, help="comma-separated rates, run in turn")
    p.add_argument("--p99-limit-ms", type=float, default=100.0)
    p.add_argument("--customers", type=int, default=1000, help="customer ids 1..N")
    p.add_argument(
        "--customer-format",
        default="C{:08d}",
        help="how a customer number becomes an id (C{:08d}, as the generated book)",
    )
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--server-pid", type=int, default=None, help="for the server's CPU time")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    host = urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        p.error(f"--url must be on loopback (got {host}): this generator is for local runs")
    args.key = args.key_file.read_text(encoding="utf-8").strip()
    rates = [float(x) for x in args.steps.split(",")] if args.steps else [args.rate]
    results = []
    run = f"{int(time.time())}"
    for n, rate in enumerate(rates):
        result = asyncio.run(run_step(args, rate, f"{run}-{n}"))
        results.append(result)
        if not args.json:
            print(
                f"rate {rate:>6.0f}/s for {args.duration:.0f} s: {result['ok']:,} ok, "
                f"errors {result['errors'] or 0}, achieved {result['achieved_rate']}/s, "
                f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
                f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms; CPU s: server "
                f"{result['server_cpu_s']}, generator {result['generator_cpu_s']}",
                flush=True,
            )
    if len(rates) > 1:
        ok = [r for r in results if not r["errors"] and r["p99_ms"] < args.p99_limit_ms]
        best = max((r["target_rate"] for r in ok), default=None)
        if not args.json:
            print(f"highest rate with p99 < {args.p99_limit_ms:.0f} ms and no error: {best}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
