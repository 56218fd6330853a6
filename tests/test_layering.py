"""The packages are layers (agent_analytics/__init__.py states them): no module imports a
package above its own, at module level or inside a function, so there is no import cycle
between packages."""

from __future__ import annotations

import ast
from pathlib import Path

import agent_analytics

REPO = Path(__file__).resolve().parents[1]
# Lowest first.
LAYERS = ["agent_analytics", "ingestion", "orchestration", "service", "agent_analytics_cli"]


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in the file, wherever it is in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def layer_violations(repo: Path, layers: list[str]) -> list[str]:
    rank = {package: i for i, package in enumerate(layers)}
    violations = []
    for package in layers:
        for path in sorted((repo / package).rglob("*.py")):
            for line, module in imported_modules(path):
                top = module.split(".")[0]
                if rank.get(top, -1) > rank[package]:
                    violations.append(f"{path.relative_to(repo)}:{line} ({package}) imports {module} (a higher layer)")
    return violations


def test_no_package_imports_a_higher_layer():
    assert layer_violations(REPO, LAYERS) == []


def test_the_check_finds_an_upward_import_even_inside_a_function(tmp_path):
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    (tmp_path / "high" / "top.py").write_text("import low.base\n")
    (tmp_path / "low" / "base.py").write_text("import os\n\n\ndef f():\n    from high.top import x\n    return x\n")
    assert layer_violations(tmp_path, ["low", "high"]) == ["low/base.py:5 (low) imports high.top (a higher layer)"]


def test_the_docstring_names_the_layers_in_this_order():
    doc = agent_analytics.__doc__
    positions = [doc.index(f"`{package}`") for package in LAYERS]
    assert positions == sorted(positions)
