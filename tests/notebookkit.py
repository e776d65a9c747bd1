"""Run the project's notebooks the way a data scientist does, top to bottom, in a kernel
of this environment (nbclient), and read back what they showed."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = (
    "01_explore_the_lakehouse.ipynb",
    "02_train_a_challenger.ipynb",
    "03_investigate_an_alert.ipynb",
    "04_evaluate_your_loan_file.ipynb",
)


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def inject(nb, values: dict[str, object]) -> None:
    """Papermill's convention: a cell setting ``values`` right after the cell tagged
    ``parameters``."""
    (index,) = [
        i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    source = "\n".join(f"{k} = {v!r}" for k, v in values.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, cell)


def execute(path: Path, timeout: int = 900, parameters: dict | None = None):
    """The executed notebook (raises ``CellExecutionError`` on the first failing cell)
    and its wall time in seconds."""
    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject(nb, parameters)
    started = time.perf_counter()
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return nb, time.perf_counter() - started


def shown(nb) -> str:
    """Everything the notebook's cells printed or displayed, as text (images as their
    base64, which a clear identifier cannot hide in as plain text, is left out)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif out.get("output_type") == "error":
                parts.append("\n".join(out.get("traceback", [])))
            else:
                data = out.get("data", {})
                parts += [
                    str(data[k]) for k in ("text/plain", "text/html", "text/markdown") if k in data
                ]
    return "\n".join(parts)
