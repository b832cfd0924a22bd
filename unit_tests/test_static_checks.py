"""The static checks run with the tests, so the README's test command (and CI) fails when the code is not clean:
ruff's lint and format check over the repository, and mypy over source_codefresh/ (settings in pyproject.toml;
scripts/check.sh runs the same three by hand; `ruff check --fix . && ruff format .` applies ruff's changes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
