"""A real Spark standalone cluster on loopback: one master and workers started from the
installed PySpark (``spark-class ... Master`` / ``Worker``), each a JVM of its own.

The executors run an interpreter of their own (:func:`executor_python`): a virtual
environment that sees the third-party packages of this one but not the project, as a
worker node of a real cluster would. What they import of the project comes from the
zip the driver ships them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pyspark
from conftest import free_port

SPARK_HOME = Path(pyspark.__file__).parent


def executor_python(folder: Path) -> Path:
    """A venv in ``folder`` whose ``python`` imports this environment's third-party
    packages (a ``.pth`` line naming its site-packages) but not the project: the
    editable install's own ``.pth`` sits in that folder, and Python reads ``.pth``
    files only in its own site folders."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120
    )
    site = Path(
        subprocess.check_output(
            [
                str(folder / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ],
            text=True,
        ).strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    return folder / "bin" / "python"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "RISK_"))}
    env.pop("PYTHONPATH", None)  # the daemons and their executors see no project folder
    env.update(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1", SPARK_NO_DAEMONIZE="1")
    return env


class StandaloneCluster:
    """``workers`` workers of ``cores`` cores and ``memory`` each, under ``folder``."""

    def __init__(self, folder: Path, workers: int = 2, cores: int = 1, memory: str = "2g"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.workers, self.cores, self.memory = workers, cores, memory
        self.port, self.ui_port = free_port(), free_port()
        self.procs: list[tuple[str, subprocess.Popen]] = []

    @property
    def master(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _start(self, name: str, *args: str) -> None:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - the process holds it
        proc = subprocess.Popen(
            [str(SPARK_HOME / "bin" / "spark-class"), *args],
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as r:
            return json.load(r)

    def alive_workers(self) -> list[dict]:
        try:
            return [w for w in self.state()["workers"] if w["state"] == "ALIVE"]
        except OSError:
            return []

    def start(self, timeout: float = 180) -> StandaloneCluster:
        self._start(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(self.port)),
            *("--webui-port", str(self.ui_port)),
        )
        for n in range(self.workers):
            work = self.folder / f"worker-{n}"
            work.mkdir(exist_ok=True)
            self._start(
                f"worker-{n}",
                "org.apache.spark.deploy.worker.Worker",
                self.master,
                *("--host", "127.0.0.1", "--webui-port", str(free_port())),
                *("--cores", str(self.cores), "--memory", self.memory),
                *("--work-dir", str(work)),
            )
        deadline = time.monotonic() + timeout
        while len(self.alive_workers()) < self.workers:
            dead = [name for name, p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the standalone cluster did not come up ({dead or 'timeout'}):\n" + self.logs()
                )
            time.sleep(0.5)
        return self

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
            for p in sorted(self.folder.glob("*.log"))
        )

    def executor_logs(self, tail: int = 3000) -> str:
        return "\n".join(
            f"--- {p.relative_to(self.folder)}\n{p.read_text(errors='replace')[-tail:]}"
            for p in sorted(self.folder.glob("worker-*/app-*/*/stderr"))
        )

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
