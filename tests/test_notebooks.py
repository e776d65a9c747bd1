"""The notebooks as committed (no outputs, the library imported, nothing that breaks Spark
ML) and `riskctl notebook` (JupyterLab on loopback behind a token, the project's kernel).

test_end_to_end executes every notebook top to bottom on its book.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import free_port
from notebookkit import EXPECTED, NOTEBOOKS, notebooks


def test_the_four_notebooks_are_committed_valid_and_without_outputs():
    assert [p.name for p in notebooks()] == list(EXPECTED)
    for path in notebooks():
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        assert "widgets" not in nb.metadata, path.name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, path.name
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, (path.name, cell.source)
            assert "execution" not in cell.metadata, path.name
        # Every step is explained: markdown opens the notebook and sits between code cells.
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        assert sum(c.cell_type == "markdown" for c in nb.cells) >= len(code) // 2, path.name


def test_notebooks_import_the_library_and_never_scrapy():
    for path in notebooks():
        source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
        assert "from riskcontrol" in source or "import riskcontrol" in source, path.name
        # Twisted in a Spark interpreter breaks Spark ML's param copying.
        assert "scrapy" not in source and "twisted" not in source, path.name
        # Identifiers are read only pseudonymised: never the decrypting reader.
        assert "read_clear" not in source, path.name


def test_the_loan_file_notebook_takes_papermill_parameters():
    nb = nbformat.read(NOTEBOOKS / "04_evaluate_your_loan_file.ipynb", as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert "LOAN_FILE = None" in tagged[0].source


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_riskctl_notebook_serves_the_notebooks_on_loopback_behind_a_token(tmp_path):
    port, token = free_port(), "t0k3n-for-this-test-only"
    env = {
        **os.environ,
        "RISK_HOME": str(tmp_path / "home"),
        "JUPYTER_TOKEN": token,
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
    }
    riskctl = Path(sys.executable).parent / "riskctl"
    proc = subprocess.Popen(
        [str(riskctl), "notebook", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if _get(f"{base}/api/status?token={token}")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "JupyterLab did not start in 90 s"
            time.sleep(0.5)
        assert _get(f"{base}/api/contents")[0] == 403  # no token, no access
        status, body = _get(f"{base}/api/contents?token={token}")
        assert status == 200
        assert sorted(
            i["name"] for i in json.loads(body)["content"] if i["type"] == "notebook"
        ) == list(EXPECTED)
        status, body = _get(f"{base}/api/kernelspecs?token={token}")
        specs = json.loads(body)["kernelspecs"]
        # The kernel is this environment's interpreter: the library imports in it.
        argv0 = specs["python3"]["spec"]["argv"][0]
        assert (
            argv0 in ("python", sys.executable)
            or Path(argv0).resolve() == Path(sys.executable).resolve()
        ), argv0
        assert _get(f"{base}/lab?token={token}")[0] == 200
        # Loopback only: the machine's other addresses do not answer.
        other = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        for address in [a for a in other if ":" not in a][:1]:
            with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
                urllib.request.urlopen(f"http://{address}:{port}/api/status", timeout=3)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
