"""PyAirbyte loads every stream from the sandbox into its local DuckDB cache through the installed
`source-codefresh` executable, with the row counts the sandbox holds."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator, List, Tuple

import pytest

from codefresh_sandbox import SANDBOX_API_KEY, SMALL_ACCOUNT, SandboxConfig, SandboxServer
from codefresh_sandbox.expected import expected_records, sandbox_config

# PyAirbyte would otherwise call Airbyte's registry and telemetry, which this machine cannot reach.
os.environ.setdefault("AIRBYTE_OFFLINE_MODE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

pytestmark = pytest.mark.pyairbyte


@pytest.fixture(scope="module")
def ab() -> Iterator[ModuleType]:
    """PyAirbyte, imported when its test runs (about 3 s of CPU), not in every worker that collects this file.

    PyAirbyte takes over the loggers named `airbyte...`, which are the CDK's too (no propagation to the root logger,
    its own file handlers): they are given back afterwards, so that the in-process reads of the tests that follow
    in the same worker still capture their log lines."""
    loggers = logging.Logger.manager.loggerDict
    saved = {name: _logger_state(logger) for name, logger in loggers.items() if isinstance(logger, logging.Logger)}
    yield pytest.importorskip(
        "airbyte", reason="PyAirbyte is installed by the README's test command (--group pyairbyte)"
    )
    for name, logger in list(loggers.items()):
        if isinstance(logger, logging.Logger) and name.split(".")[0] == "airbyte":
            level, propagate, handlers = saved.get(name, (logging.NOTSET, True, []))
            for handler in [h for h in logger.handlers if h not in handlers]:
                logger.removeHandler(handler)
                handler.close()
            logger.setLevel(level)
            logger.propagate = propagate


def _logger_state(logger: logging.Logger) -> Tuple[int, bool, List[logging.Handler]]:
    return logger.level, logger.propagate, list(logger.handlers)


def connector_executable() -> str:
    local = Path(sys.executable).parent / "source-codefresh"
    found = str(local) if local.exists() else shutil.which("source-codefresh")
    assert found, "the package is installed (pip install -e .), so its console script exists"
    return found


def test_pyairbyte_loads_every_stream_into_duckdb_with_the_sandbox_counts(ab, tmp_path):
    with SandboxServer(SandboxConfig(**SMALL_ACCOUNT)) as server:
        source = ab.get_source(
            "source-codefresh",
            local_executable=connector_executable(),
            config=sandbox_config(server.base_url, SANDBOX_API_KEY),
            install_if_missing=False,
        )
        source.check()
        streams = source.get_available_streams()
        source.select_all_streams()
        cache = ab.DuckDBCache(db_path=tmp_path / "codefresh.duckdb", cache_dir=tmp_path / "cache")
        result = source.read(cache=cache, force_full_refresh=True)
        expected = server.expected()

    counts = {name: len(result[name].to_pandas()) for name in streams}
    assert len(streams) >= 25
    for name in streams:
        want = expected_records(expected, name)
        if want is not None:
            assert counts[name] == want, f"{name}: {counts[name]} rows in DuckDB, the sandbox holds {want}"
        else:  # analytics rows depend on the date range of the read
            assert counts[name] > 0, f"{name}: no rows"
