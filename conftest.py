"""Repository-wide pytest setup: the CDK standard suite's hooks (scenarios from acceptance-test-config.yml), the
test harness's environment (codefresh_sandbox.HARNESS_ENV: the sandbox listens on plain http on this machine), and
how many parallel workers `-n auto` (addopts in pyproject.toml) starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import pytest

from codefresh_sandbox import HARNESS_ENV

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
