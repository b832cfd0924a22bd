"""What a full read of each stream should return from a sandbox: the one place tests and scripts compare against."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

# Stream name -> key of the sandbox's `expected()` counts, where they differ.
_SANDBOX_KEY = {
    "triggers": "hermes_triggers",
    "trigger_events": "hermes_events",
    "helm_repositories": "helm_repos",
    "audit_logs": "audit",
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
