"""Drive a real Airflow (scheduler, dag-processor, api-server) from a test, in subprocesses.

Nothing here imports airflow: the processes are started with the venv's ``airflow`` CLI
and driven over the REST API (``/api/v2``) with the standard library's HTTP client.
Every process starts in a session of its own; ``Airflow.stop`` ends each group, then any
process left whose environment names this Airflow home (task runners, Spark's JVMs).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

AIRFLOW = str(Path(sys.executable).parent / "airflow")
FINISHED = {"success", "failed"}
BAD_TASK_STATES = {"failed", "up_for_retry", "upstream_failed", "removed", "restarting"}


class Deadline:
    """One time budget for a whole test; ``left()`` raises once it has passed."""

    def __init__(self, seconds: float, describe: Callable[[], str] = lambda: ""):
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.describe = describe

    def left(self, what: str) -> float:
        remaining = self.end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"test deadline of {self.seconds:.0f}s passed while {what}\n{self.describe()}"
            )
        return remaining


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"--- {path}: (no file)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return f"--- {path} (last {min(lines, len(text))} of {len(text)} lines)\n" + "\n".join(
        text[-lines:]
    )


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def processes_marked(marker: str) -> list[int]:
    """Pids (not this one) whose environment or command line contains ``marker``."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline or needle in _environ(int(entry.name)):
            found.append(int(entry.name))
    return found


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Airflow:
    """An Airflow home with its own SQLite DB, and its three long-running processes."""

    def __init__(self, home: Path, extra_env: dict[str, str], dags_folder: Path):
        self.home = home
        self.logs = home / "process-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        (home / "passwords.json").write_text(json.dumps({"admin": self.password}))
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RISK_", "PYSPARK_", "AIRFLOW", "SPARK_"))
        }
        self.env = {
            **inherited,
            **extra_env,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{inherited.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # SQLite takes one writer at a time; one task at a time also keeps this test to
            # one Spark driver on a shared machine.
            "AIRFLOW__CORE__PARALLELISM": "1",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "1",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # Tasks talk to the api-server's Execution API: this one, on loopback.
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # The scheduler signs the tasks' tokens, the api-server checks them: one secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            # The DAG files do not change during a test: parsed at start, not every 30 s
            # (each parse imports them in a new process, CPU the Spark drivers then lack).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        }
        self.procs: dict[str, subprocess.Popen] = {}
        # how this home's processes are found among the others: an exact environ entry
        self.marker = f"AIRFLOW_HOME={home}\0"
        self._token: str | None = None

    # --- processes ---------------------------------------------------------------------

    def migrate(self, timeout: float) -> None:
        done = subprocess.run(
            [AIRFLOW, "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{done.stdout[-3000:]}{done.stderr}")

    def start(self, name: str, *args: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as out:
            self.procs[name] = subprocess.Popen(
                [AIRFLOW, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {proc.returncode}\n{self.diagnostics()}"
                )

    def stop(self, grace: float = 20.0) -> list[int]:
        """Stop every process started here and anything left that carries this home.

        Returns the pids that had to be killed after the groups ended (for the report)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        end = time.monotonic() + grace
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, end - time.monotonic()))
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        # task supervisors may start sessions of their own: find them by this home
        stragglers = processes_marked(self.marker)
        for pid in stragglers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        end = time.monotonic() + 10
        while time.monotonic() < end and processes_marked(self.marker):
            time.sleep(0.5)
        for pid in processes_marked(self.marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return stragglers

    # --- REST API ----------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(
                f"{method} {path} -> HTTP {e.code}: {e.read().decode(errors='replace')[:2000]}"
            ) from e
        return json.loads(text) if text else None

    def token(self) -> str:
        if self._token is None:
            answer = self._request(
                "POST",
                "/auth/token",
                {"username": "admin", "password": self.password},
                auth=False,
            )
            self._token = answer["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return self._request(method, "/api/v2" + path, body)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{quoted}/taskInstances?limit=100")[
            "task_instances"
        ]

    # --- what went wrong ---------------------------------------------------------------

    def task_logs(self) -> list[Path]:
        root = self.home / "logs"
        return sorted(root.rglob("*.log"), key=lambda p: p.stat().st_mtime) if root.exists() else []

    def diagnostics(self, lines: int = 40) -> str:
        parts = [tail(self.logs / f"{name}.log", lines) for name in self.procs]
        parts += [tail(p, lines) for p in self.task_logs()[-3:]]
        return "\n".join(parts)


def wait_for_dags(af: Airflow, deadline: Deadline, dag_ids: Sequence[str]) -> dict[str, dict]:
    """The api-server answers and the dag-processor has stored ``dag_ids``, the time
    scheduled first of them with its next run; no DAG failed to import, none else is
    there."""
    while not af.healthy():
        af.check_alive()
        deadline.left("waiting for the api-server to answer")
        time.sleep(1)
    while True:
        af.check_alive()
        errors = af.api("GET", "/importErrors")
        if errors["total_entries"]:
            raise AssertionError(f"DAG import errors: {errors}\n{af.diagnostics()}")
        dags = {d["dag_id"]: d for d in af.api("GET", "/dags?limit=100")["dags"]}
        if set(dag_ids) <= set(dags) and dags[dag_ids[0]]["next_dagrun_logical_date"]:
            assert set(dags) == set(dag_ids), sorted(dags)
            return dags
        deadline.left(f"waiting for the dag-processor to parse the DAGs (have {sorted(dags)})")
        time.sleep(2)


def run_dags(
    af: Airflow,
    deadline: Deadline,
    day: str,
    dag_ids: Sequence[str],
    when_done: dict[str, Callable[[], object]] | None = None,
    poll: float = 3.0,
) -> dict[str, list[dict]]:
    """Unpause ``dag_ids`` (the first one time-scheduled, its one run on ``day``, the
    others on its Assets) and wait until every run has finished, the last DAG's
    included. ``when_done[dag_id]`` is called once, as soon as that DAG's run succeeded.

    Returns each DAG's runs, each with its ``task_instances``. Fails at once when a task
    fails or is up for retry (a retry would wait minutes)."""
    when_done = dict(when_done or {})
    dags = wait_for_dags(af, deadline, dag_ids)
    assert dags[dag_ids[0]]["next_dagrun_logical_date"].startswith(day), dags
    for dag_id in (*dag_ids[1:], dag_ids[0]):
        assert af.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})["is_paused"] is False
    t0 = time.monotonic()
    shown: dict[str, str] = {}
    while True:
        af.check_alive()
        runs = {dag_id: af.dag_runs(dag_id) for dag_id in dag_ids}
        for dag_id, dag_runs in runs.items():
            for run in dag_runs:
                tis = af.task_instances(dag_id, run["dag_run_id"])
                run["task_instances"] = tis
                states = " ".join(f"{t['task_id']}={t['state']}" for t in tis)
                line = f"{dag_id} {run['dag_run_id']} ({run['run_type']}): {run['state']}; {states}"
                if shown.get(run["dag_run_id"]) != line:
                    shown[run["dag_run_id"]] = line
                    print(f"[{time.monotonic() - t0:6.0f}s] {line}", flush=True)
                bad = [t for t in tis if t["state"] in BAD_TASK_STATES]
                if bad or run["state"] == "failed":
                    raise AssertionError(
                        f"{dag_id} run {run['dag_run_id']} is {run['state']}, tasks "
                        f"{[(t['task_id'], t['state']) for t in bad]}\n{af.diagnostics(80)}"
                    )
            if dag_id in when_done and any(r["state"] == "success" for r in dag_runs):
                when_done.pop(dag_id)()
        if runs[dag_ids[-1]] and all(
            r["state"] in FINISHED for dag_runs in runs.values() for r in dag_runs
        ):
            return runs
        waiting_for = [d for d in dag_ids if not any(r["state"] in FINISHED for r in runs[d])]
        deadline.left(f"waiting for the DAG runs ({', '.join(waiting_for)} not finished)")
        time.sleep(poll)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
