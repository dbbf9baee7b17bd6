"""Architecture rules: no import cycle in ``gridmarl/``, generic code names no domain, and a
scenario validates without importing a simulator or solver."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gridmarl import domains

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gridmarl"
SIMULATORS = ("libsumo", "traci", "sumolib", "cityflow", "pyomo", "highspy")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _owner(name: str, modules: set[str]) -> str | None:
    """The gridmarl module that ``name`` (a module or ``module.attribute``) lives in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """``module -> gridmarl modules it imports``, from every import statement in the file
    (module level, function level and ``TYPE_CHECKING`` blocks alike)."""
    files = {_module_name(f): f for f in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps: set[str | None] = set()
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(_owner(a.name, modules) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                for a in node.names:
                    full = f"{base}.{a.name}"
                    deps.add(full if full in modules else _owner(base, modules))
        graph[mod] = {d for d in deps if d is not None and d != mod}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, …, a]`` of ``graph``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_find_cycle_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # config imports the domain registry inside scenario_adapter(), a function
    assert "gridmarl.domains" in graph["gridmarl.config"]
    assert "gridmarl.core.errors" in graph["gridmarl.config"]


def test_gridmarl_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_core_and_controllers_import_no_domain() -> None:
    graph = import_graph()
    domain_pkgs = tuple(f"gridmarl.{d}" for d in domains.names())
    bad = {
        mod: sorted(d for d in deps if d.startswith(domain_pkgs) or d == "gridmarl.domains")
        for mod, deps in graph.items()
        if mod.startswith(("gridmarl.core", "gridmarl.controllers"))
    }
    assert not {m: d for m, d in bad.items() if d}


@pytest.mark.parametrize(
    "scenario", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.stem
)
def test_validate_imports_no_simulator(scenario: Path) -> None:
    """``gridmarl validate`` of a shipped scenario, in a fresh interpreter, loads none of the
    simulators and solvers (they are imported when a simulation or solve starts)."""
    code = (
        "import json, sys\n"
        "from gridmarl.cli import main\n"
        f"sys.argv = ['gridmarl', 'validate', {str(scenario)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        f"print(json.dumps([m for m in {SIMULATORS!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "ok" in out.stdout
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
