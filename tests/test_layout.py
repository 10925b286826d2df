"""The house rules of the layout (docs/architecture.md), checked on the source tree.

adt/ imports no Dagster and has no import cycle (imports inside functions count);
modules and functions stay small; benchmarks use the library, not the Dagster definitions; no
private name is imported from another package.
"""

from __future__ import annotations

import ast
from pathlib import Path

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


#: The house's size limits (issue 32): lines per module, lines per function (def to last line).
MODULE_LINES, FUNCTION_LINES = 500, 80


def test_no_module_over_500_lines_and_no_function_over_80():
    big, long = [], []
    for root in ("adt", "pipelines"):
        for path in sorted((ROOT / root).rglob("*.py")):
            text = path.read_text()
            name = str(path.relative_to(ROOT))
            if len(text.splitlines()) > MODULE_LINES:
                big.append(f"{name}: {len(text.splitlines())} lines")
            long += [f"{name}:{node.name}: {node.end_lineno - node.lineno + 1} lines"
                     for node in ast.walk(ast.parse(text))
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and node.end_lineno - node.lineno + 1 > FUNCTION_LINES]
    assert big == [] and long == []


def test_no_asset_returns_a_dict():
    """The assets are generated from the stage registry and return typed results (tests/test_stages.py); no
    hand-written asset returning ``Output[dict]`` is left in pipelines/."""
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "pipelines").rglob("*.py")
                 if "Output[dict]" in p.read_text() or "@dg.asset(" in p.read_text() and p.name != "assets.py"]
    assert offenders == []


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


def _package(module: str) -> str:
    """The package of a module: its first two components (``adt.frame.sweep`` -> ``adt.frame``); a top-level
    module is its own node (``adt.config``), ``adt/__init__.py`` the node ``adt``."""
    return ".".join(module.split(".")[:2])


def _package_graph() -> dict[str, dict[str, list[str]]]:
    """package -> the packages it imports -> the module imports that make each edge (imports inside functions
    count, as in :func:`_graph`)."""
    graph: dict[str, dict[str, list[str]]] = {}
    for module, targets in sorted(_graph().items()):
        edges = graph.setdefault(_package(module), {})
        for target in sorted(targets):
            if _package(target) != _package(module):
                edges.setdefault(_package(target), []).append(f"{module} -> {target}")
                graph.setdefault(_package(target), {})
    return graph


def _strongly_connected(graph: dict[str, dict]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_no_package_cycle():
    """Dependencies between packages point one way (``adt.transcribe`` may use ``adt.frame``, ``adt.evaluation``
    both, never the reverse): no cycle in the package-level graph. The message lists each cycle's module imports."""
    graph = _package_graph()
    cycles = _strongly_connected(graph)
    detail = [" <-> ".join(c) + ":\n  " + "\n  ".join(e for a in c for b in c for e in graph[a].get(b, []))
              for c in cycles]
    assert cycles == [], "\n".join(detail)
    assert {"adt", "adt.config", "adt.frame", "adt.transcribe", "adt.evaluation"} <= set(graph)
    assert "adt.frame" in graph["adt.transcribe"] and "adt.transcribe" in graph["adt.evaluation"]


#: Training code that ``adt transcribe`` never imports: the recipe (optimizer, loop), the sweeps, Optuna.
TRAINING_MODULES = ("adt.frame.recipe", "adt.frame.sweep", "adt.frame.shared_study", "adt.frame.study",
                    "adt.trimming.lottery", "optuna")

_TRANSCRIBE = """
import importlib, json, sys
import numpy as np, soundfile as sf

import adt.transcribe.cli
at_import = sorted(sys.modules)
folder = sys.argv[1]
audio = np.zeros(88200, dtype=np.float32)
for start in (11025, 33075, 55125, 77175):
    audio[start:start + 400] = np.random.default_rng(0).uniform(-0.8, 0.8, 400)
sf.write(f"{folder}/in.wav", audio, 44100)
from adt.cli import main
rc = main(["transcribe", f"{folder}/in.wav", "-o", f"{folder}/out.mid"])
from adt import registry
from adt.transcribe.models import load_transcriber
load_transcriber("lite")
importlib.import_module(registry.KINDS["transcriber"][1].split(":")[0])
import adt.evaluation.real_songs, adt.frame.reproduce
print(json.dumps({"rc": rc, "at_import": at_import, "after": sorted(sys.modules)}))
"""


def test_transcribe_imports_no_training_code(tmp_path):
    """``adt transcribe`` imports no training code: not at ``import adt.transcribe.cli``, nor when it runs (the
    shipped model: no MLflow store in the data folder), loads ``--model lite`` (the shipped trimmed one), resolves
    the registry's transcriber loader, or with the modules that score as it does (``adt.frame.reproduce``,
    ``adt.evaluation.real_songs``). In a fresh interpreter: the test session has imported everything."""
    import json
    import os
    import subprocess
    import sys

    (tmp_path / "data").mkdir()
    env = {**os.environ, "ADT_DATA_DIR": str(tmp_path / "data")}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-c", _TRANSCRIBE, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded["rc"] == 0 and (tmp_path / "out.mid").is_file()
    assert {"adt.transcribe.transcriber", "adt.frame.checkpoint", "adt.frame.champion"} <= set(loaded["after"])
    assert [m for m in TRAINING_MODULES if m in loaded["at_import"]] == []
    assert [m for m in TRAINING_MODULES if m in loaded["after"]] == []


def test_a_stage_is_given_only_its_profile_section():
    """Issue 32: no function of ``adt/`` takes a whole :class:`adt.config.Profile`; every ``get_profile()``
    outside ``adt/config.py`` is followed by one section (``settings.get_profile().lm``)."""
    from adt.config import SECTIONS

    whole, annotated, sections = [], [], 0
    for name, path in _modules("adt").items():
        if name == "adt.config":
            continue
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "get_profile":
                parent = parents.get(node)
                if isinstance(parent, ast.Attribute) and parent.attr in SECTIONS:
                    sections += 1
                else:
                    whole.append(f"{name}:{node.lineno}")
            if isinstance(node, ast.arg) and node.annotation is not None and "Profile" in ast.unparse(node.annotation):
                annotated.append(f"{name}:{node.lineno} {node.arg}")
    assert whole == [] and annotated == [] and sections >= 10
