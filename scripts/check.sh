#!/usr/bin/env bash
# The static checks: ruff's lint, ruff's format check and the type check of source_codefresh/ (mypy). Their settings
# live in pyproject.toml ([tool.ruff], [tool.mypy]); the tools are pinned in its `dev` dependency group.
#
#   scripts/check.sh              # all three; exits non-zero if any of them fails, after running every one
#   PYTHON=python3 scripts/check.sh   # with another interpreter that has the dev group installed
#
# To apply what the first two would change: `.venv/bin/python -m ruff check --fix . && .venv/bin/python -m ruff format .`
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
failed=()
"$python" -m ruff check . || failed+=("ruff check")
"$python" -m ruff format --check . || failed+=("ruff format --check")
"$python" -m mypy || failed+=("mypy")
if ((${#failed[@]})); then
  (IFS=,; echo "check.sh: failed: ${failed[*]}" >&2)
  exit 1
fi
echo "check.sh: ruff check, ruff format --check and mypy passed"
