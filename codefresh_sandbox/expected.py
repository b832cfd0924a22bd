"""What a full read of each stream should return from a sandbox: the one place tests and scripts compare against; and
what they share besides: the example custom streams and the command of the installed connector."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

# Two example custom streams (the `custom_streams` setting), used by the tests and by `sandbox_sync.py
# --custom-streams`: two endpoints no built-in stream reads, of two paging families (one request; limit/offset pages
# with a nested primary key and a nested cursor). Derive variants with {**entry, ...}; do not change these in place.
EXAMPLE_CUSTOM_STREAMS: List[Dict[str, Any]] = [
    {"name": "registries", "path": "registries", "primary_key": "_id", "pagination": "none"},
    {
        "name": "pipeline_names",
        "path": "pipelines/names",
        "records_key": "docs",
        "primary_key": "metadata.id",
        "pagination": "offset",
        "cursor_field": "metadata.updated_at",
    },
]

# Stream name -> key of the sandbox's `expected()` counts, where they differ: the sandbox counts what the API holds,
# under its own names. `analytics_report_rows` is no sandbox count (the rows depend on the date of the read): a caller
# that knows them adds it (scripts/sandbox_sync.py).
_SANDBOX_KEY = {
    "accounts": "account_users",
    "triggers": "hermes_triggers",
    "trigger_events": "hermes_events",
    "analytics_metadata": "analytics_reports",
    "analytics_reports": "analytics_report_rows",
}


def expected_records(expected_counts: Mapping[str, int], stream: str) -> Optional[int]:
    """How many records a full read of `stream` returns, from the sandbox's `expected()` counts.

    None for streams whose count depends on the date range of the read (analytics rows) or on the config
    (pipeline runs)."""
    key = _SANDBOX_KEY.get(stream, stream)
    return expected_counts.get(key)


def expected_all(expected_counts: Mapping[str, int], streams) -> Dict[str, Optional[int]]:
    return {stream: expected_records(expected_counts, stream) for stream in streams}


def sandbox_config(base_url: str, api_key: str, **overrides: Any) -> Dict[str, Any]:
    """A connector config for a sandbox: its base URL and key; everything else defaults."""
    config: Dict[str, Any] = {"api_key": api_key, "base_url": base_url}
    config.update(overrides)
    return config


def connector_command() -> List[str]:
    """The installed connector, as Airbyte runs it: the `source-codefresh` console script next to this interpreter
    (the venv's), else the one on PATH, else this interpreter running the package (`-m source_codefresh.run`)."""
    local = Path(sys.executable).parent / "source-codefresh"
    if local.exists():
        return [str(local)]
    found = shutil.which("source-codefresh")
    if found:
        return [found]
    return [sys.executable, "-m", "source_codefresh.run"]
