"""Load-test the decision service on this machine: start `riskctl serve` over the project
home (which must hold a trained champion: `make run` first), make an API key, drive it
with ``infra/loadgen.py`` at a fixed rate, then at rising rates, and stop it.

    python infra/bench_service.py                      # 200/s for 60 s, then steps
    python infra/bench_service.py --rate 200 --duration 60 --steps 100,200,300,400

Everything stays on loopback; the decision journal is on (as in production), and the
journal rows it adds are counted against the requests sent.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rate", type=float, default=200.0)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--steps", default="100,200,300,400,500", help="rates for the p99 search")
    p.add_argument("--step-duration", type=float, default=20.0)
    p.add_argument("--customers", type=int, default=1000, help="customer ids C00000001..N")
    args = p.parse_args(argv)

    from riskcontrol.cli.common import load_settings
    from riskcontrol.serve.journal import DecisionJournal, default_path
    from riskcontrol.serve.keys import KeyStore
    from riskcontrol.serve.keys import default_path as keys_path
    from riskcontrol.serve.runtime import wait_ready

    settings = load_settings()
    keys = KeyStore(keys_path(settings.home))
    token, key = keys.create("loadgen", ["decide"], days=1)
    journal = DecisionJournal(default_path(settings.home))
    before = journal.last_seq() if default_path(settings.home).exists() else 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    riskctl = [sys.executable, "-m", "riskcontrol.cli.main"]
    log = Path(tempfile.mkdtemp(prefix="bench-service-")) / "serve.log"
    print(f"starting riskctl serve on {url} (log: {log})", flush=True)
    with log.open("wb") as out:
        server = subprocess.Popen([*riskctl, "serve", "--port", str(port)], stdout=out, stderr=out)
    try:
        wait_ready(url, server)
        with tempfile.TemporaryDirectory() as tmp:
            key_file = Path(tmp) / "key"
            fd = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.write(fd, token.encode())
            os.close(fd)
            loadgen = [
                sys.executable,
                str(ROOT / "infra" / "loadgen.py"),
                "--url",
                url,
                "--key-file",
                str(key_file),
                "--server-pid",
                str(server.pid),
                "--customers",
                str(args.customers),
            ]
            # a short warm-up, then the target rate, then the search
            subprocess.run(
                [*loadgen, "--rate", "50", "--duration", "5"], check=True, stdout=subprocess.DEVNULL
            )
            print(f"== sustained: {args.rate:.0f}/s for {args.duration:.0f} s", flush=True)
            subprocess.run(
                [*loadgen, "--rate", str(args.rate), "--duration", str(args.duration)], check=True
            )
            print(f"== steps of {args.step_duration:.0f} s: {args.steps}", flush=True)
            subprocess.run(
                [*loadgen, "--steps", args.steps, "--duration", str(args.step_duration)], check=True
            )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        keys.revoke(key.key_id)
    after = journal.last_seq()
    print(f"journal: {after - before:,} decisions recorded during the run", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
