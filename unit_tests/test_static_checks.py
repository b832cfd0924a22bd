"""The static checks run with the tests, so the README's test command (and CI) fails when the code is not clean:
ruff's lint and format check over the repository, and mypy over source_codefresh/ (settings in pyproject.toml;
scripts/check.sh runs the same three by hand; `ruff check --fix . && ruff format .` applies ruff's changes); and no
import cycle among the modules of source_codefresh/."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "--output-format", "concise", "."],
        ["ruff", "format", "--check", "."],
        ["mypy"],
    ],
    ids=["ruff check", "ruff format", "mypy source_codefresh"],
)
def test_static_check_passes(command):
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"`{' '.join(command)}` failed:\n{done.stdout}\n{done.stderr}"


def test_the_modules_of_the_connector_import_each_other_without_a_cycle():
    # Imports inside functions count too: they hide a cycle rather than remove it.
    package = ROOT / "source_codefresh"
    imports: Dict[str, Set[str]] = {}
    for path in package.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("source_codefresh."):
                names.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                names.update(a.name.split(".")[1] for a in node.names if a.name.startswith("source_codefresh."))
        imports[path.stem] = names - {path.stem}

    def cycle_from(module: str, trail: List[str]) -> List[str]:
        if module in trail:
            return trail[trail.index(module) :] + [module]
        for imported in sorted(imports.get(module, ())):
            found = cycle_from(imported, [*trail, module])
            if found:
                return found
        return []

    cycles = [cycle for cycle in (cycle_from(module, []) for module in sorted(imports)) if cycle]
    assert not cycles, " -> ".join(cycles[0])
