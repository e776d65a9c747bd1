"""The package is layered by tier, and no module imports one above it, nor in a cycle.

Every ``riskcontrol`` import is read from the source (module level and inside functions,
so a cycle cannot hide behind a lazy import) and checked against the tiers' order:

    core < synthetic < collect < analyze < modeling < apply < lenderfile, privacy
         < orchestration < cli, serve

A module may import its own tier and the tiers below it. ARCHITECTURE.md explains what
belongs where.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import riskcontrol

PACKAGE = Path(riskcontrol.__file__).parent
LEVELS = {
    "core": 0,
    "synthetic": 1,
    "collect": 2,
    "analyze": 3,
    "modeling": 4,
    "models": 4,  # the old class path of the custom stage (see riskcontrol/models.py)
    "apply": 5,
    "lenderfile": 6,
    "privacy": 6,
    "orchestration": 7,
    "cli": 8,
    # the decision service: an entry point beside the CLI (its commands are riskctl's)
    "serve": 8,
    "workbench": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The riskcontrol modules ``path`` imports, wherever the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # ``from pkg import name``: name is a module of pkg, or something defined in pkg
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(p, set(mods)) - {m} for m, p in mods.items()}


def tier(module: str) -> str:
    return module.split(".")[1] if "." in module else "package"


def test_every_module_belongs_to_a_tier():
    assert sorted({tier(m) for m in graph()} - {"package"}) == sorted(LEVELS)


def test_no_module_imports_a_higher_tier():
    upward = sorted(
        f"{m} -> {d}"
        for m, deps in graph().items()
        for d in deps
        if tier(m) in LEVELS and tier(d) in LEVELS and LEVELS[tier(d)] > LEVELS[tier(m)]
    )
    assert upward == []


def test_no_import_cycles_even_through_imports_inside_functions():
    g = graph()
    cycles = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(g[m]):
            if state.get(d) == 1:
                cycles.append(" -> ".join([*path[path.index(d) :], d]))
            elif d not in state:
                visit(d, [*path, d])
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def depth() -> int:
    """The longest chain of imports (1 = a module importing nothing of the package)."""
    g, memo = graph(), {}

    def longest(m: str) -> int:
        if m not in memo:
            memo[m] = 1 + max((longest(d) for d in g[m]), default=0)
        return memo[m]

    return max(longest(m) for m in g)


RESOLVE = """
import ast, importlib, sys
from pathlib import Path

broken = []
for name in sys.argv[1:]:
    path = Path(name)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in ("riskcontrol", "riskcrawl"):
                continue
            try:
                module = importlib.import_module(node.module)
            except ImportError as e:
                broken.append(f"{path}:{node.lineno} {node.module}: {e}")
                continue
            for alias in node.names:
                if hasattr(module, alias.name):
                    continue
                try:
                    importlib.import_module(f"{node.module}.{alias.name}")
                except ImportError:
                    broken.append(f"{path}:{node.lineno} {node.module} has no {alias.name}")
print("\\n".join(broken))
"""


def test_every_import_inside_a_function_names_something_that_exists():
    """A lazy ``from riskcontrol.x import y`` fails only when its function runs (a DAG
    task, a spark-submit job): each one is resolved here, in a fresh interpreter so that
    the crawler's Twisted does not load into this test's Spark worker."""
    root = PACKAGE.parent
    files = [*PACKAGE.rglob("*.py"), *(root / "dags").glob("*.py"), *(root / "jobs").glob("*.py")]
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE, *map(str, files)],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""


def test_the_package_itself_imports_nothing():
    """``import riskcontrol`` stays cheap (no Spark): subpackages are imported by name."""
    assert graph()["riskcontrol"] == set()


def test_every_declared_task_has_exactly_one_function():
    """``TASKS`` (read by the DAGs without importing Spark) and the functions that run them
    name the same tasks."""
    from riskcontrol import orchestration

    assert sorted(orchestration.task_functions()) == sorted(orchestration.TASKS)


if __name__ == "__main__":
    print("modules:", len(graph()), "import depth:", depth())
