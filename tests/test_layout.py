"""The house rules of the layout (docs/architecture.md), checked on the source tree.

adt/ imports no Dagster and has no import cycle (imports inside functions count);
asset modules stay thin; benchmarks use the library, not the Dagster definitions; no
private name is imported from another package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in (ROOT / package).rglob("*.py")}


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement, nested ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names]))
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules("adt")
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for module, names in _imports(path):
            if not module.startswith("adt"):
                continue
            targets = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules] or [module]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_library_imports_no_dagster():
    offenders = [name for name, path in _modules("adt").items()
                 if any(m.split(".")[0] == "dagster" for m, _ in _imports(path))]
    assert offenders == []


def test_no_import_cycle_in_adt():
    graph = _graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []
    assert len(graph) > 40 and graph["adt.frame.study"] >= {"adt.features.index", "adt.frame.recipe"}


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines" / "assets").glob("*.py")), ids=lambda p: p.name)
def test_asset_modules_are_thin(path):
    assert len(path.read_text().splitlines()) <= 120


def test_benchmarks_use_the_library():
    offenders = [p.name for p in (ROOT / "benchmarks").glob("*.py")
                 if any(m.split(".")[0] == "pipelines" for m, _ in _imports(p))]
    assert offenders == []


def test_no_private_name_crosses_packages():
    offenders = []
    for root in ("adt", "pipelines", "benchmarks"):
        for name, path in _modules(root).items():
            for module, names in _imports(path):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if module.startswith(("adt", "pipelines")) and private and module.rsplit(".", 1)[0] != name.rsplit(".", 1)[0]:
                    offenders.append(f"{name}: from {module} import {private}")
    assert offenders == []


def test_dagster_finds_the_definitions_from_the_project_root(tmp_path):
    """`dagster asset list` with `-m pipelines`, and with no -m in the venv (DAGSTER_MODULE_NAME,
    set by scripts/install.sh in bin/activate and by the Makefile)."""
    import os
    import subprocess
    import sys

    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    env.pop("DAGSTER_MODULE_NAME", None)
    listed = subprocess.run([str(dagster), "asset", "list", "-m", "pipelines"], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True).stdout.split()
    assert {"raw_dataset", "tatums", "groove_scores", "architecture_study", "zero_shot_matrix"} <= set(listed)
    plain = subprocess.run([str(dagster), "asset", "list"], cwd=ROOT, env={**env, "DAGSTER_MODULE_NAME": "pipelines"},
                           capture_output=True, text=True, check=True).stdout.split()
    assert plain == listed
