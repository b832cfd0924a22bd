"""Repository-wide pytest setup: the CDK standard suite's hooks (scenarios from acceptance-test-config.yml), the
test harness's environment (codefresh_sandbox.HARNESS_ENV: the sandbox listens on plain http on this machine), and
how many parallel workers `-n auto` (addopts in pyproject.toml) starts."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from codefresh_sandbox import HARNESS_ENV
from codefresh_sandbox.server import TALLY_ENV

os.environ.update(HARNESS_ENV)

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

UNIT_TESTS = Path(__file__).resolve().parent / "unit_tests"
# Workers per core for a run with integration tests: they mostly wait (backoff sleeps, connector subprocesses, the
# image build), so more workers than cores pay.
INTEGRATION_WORKERS_PER_CORE = 2


def pytest_xdist_auto_num_workers(config: pytest.Config) -> Optional[int]:
    """The unit tests are CPU-bound: one worker per core for the folder, none (this process) for single files, which
    take about a second while a worker takes about three to start. Anything else: INTEGRATION_WORKERS_PER_CORE."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    paths = [Path(config.invocation_params.dir, arg.split("::")[0]).resolve() for arg in config.args]
    if not all(path == UNIT_TESTS or UNIT_TESTS in path.parents for path in paths):
        return cores * INTEGRATION_WORKERS_PER_CORE
    return cores if any(path.is_dir() for path in paths) else 0


# --- the run's GraphQL tally: every sandbox adds the queries and mutations it answered when it stops -----------------


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller; xdist's workers inherit the folder
        os.environ[TALLY_ENV] = tempfile.mkdtemp(prefix="sandbox-tally-")


def _tally() -> Dict[str, int]:
    totals = {"query": 0, "mutation": 0}
    for path in Path(os.environ.get(TALLY_ENV, "/nonexistent")).glob("*.jsonl"):
        for line in path.read_text().splitlines():
            for key, count in json.loads(line).items():
                totals[key] = totals.get(key, 0) + count
    return totals


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput") or TALLY_ENV not in os.environ:
        return
    totals = _tally()
    shutil.rmtree(os.environ[TALLY_ENV], ignore_errors=True)
    session.config.stash[_TALLY_KEY] = totals
    if totals["mutation"]:  # the connector is read-only: a mutation fails the run, whatever sent it
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    totals = config.stash.get(_TALLY_KEY, None)
    if totals is not None:
        terminalreporter.write_line(
            f"GitOps GraphQL operations the sandboxes answered in this run: {totals['query']} queries, "
            f"{totals['mutation']} mutations"
            + (
                " (the run fails: nothing may send a mutation but a test that opts out of the tally)"
                if totals["mutation"]
                else ""
            )
        )


_TALLY_KEY = pytest.StashKey[Dict[str, int]]()
