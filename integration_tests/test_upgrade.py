"""A connection set up with Airbyte's Connector Builder connector (0.0.x) keeps working on 1.0.0 without an edit.

Its saved config (the fields of docs/codefresh-migrations.md, as that connector's spec wrote them) passes the new
spec, `check` migrates it the way Airbyte expects (the config file rewritten, a CONTROL connectorConfig message that
Airbyte saves), and every stream reads from the sandbox, incremental ones from the states that connector saved. The
only field added is the sandbox's base_url (that connector always read g.codefresh.io).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Dict, List

import jsonschema
import pytest
from airbyte_cdk.models import AirbyteStateMessageSerializer, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read

from codefresh_sandbox import SANDBOX_API_KEY, SMALL_ACCOUNT, SandboxConfig, SandboxServer
from codefresh_sandbox.data import recent_anchor
from codefresh_sandbox.expected import connector_command, expected_records
from source_codefresh import SourceCodefresh

# Dates a month or a few before the sandbox's "now" (its anchor, the first day of last month), as a connection of
# 0.0.x would hold them on any date: 2026-06-01 .. 2026-10-31 and states of 2026-10-25 and 2026-10-01 in December 2026.
ANCHOR = date.fromisoformat(recent_anchor()[:10])
REPORTS_FROM, REPORTS_TO = (ANCHOR - timedelta(days=153)).isoformat(), (ANCHOR - timedelta(days=1)).isoformat()

# As the 0.0.x spec saved it: account_id and start_date required, the report fields free text and a list.
CONNECTOR_BUILDER_CONFIG: Dict[str, Any] = {
    "api_key": SANDBOX_API_KEY,
    "account_id": "5f1a2b3c4d5e6f7a8b9c0d1e",
    "report_granularity": "Daily",
    "report_date_range": [REPORTS_FROM, REPORTS_TO],
    "start_date": "2025-01-01T00:00:00Z",
}
MIGRATED = {"analytics_granularity": "day", "analytics_start_date": REPORTS_FROM}
# The states that connector saved (DatetimeBasedCursor, "%Y-%m-%dT%H:%M:%S.%fZ").
CONNECTOR_BUILDER_STATES = {
    "builds": {"created": f"{ANCHOR - timedelta(days=7)}T00:00:00.000000Z"},
    "audit": {"createdAt": f"{ANCHOR - timedelta(days=31)}T00:00:00.000000Z"},
}


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SandboxConfig(**SMALL_ACCOUNT)) as server:
        yield server


def _messages(*arguments: str) -> List[Dict[str, Any]]:
    done = subprocess.run([*connector_command(), *arguments], capture_output=True, text=True, timeout=300, check=False)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def _spec() -> Dict[str, Any]:
    (spec,) = [m["spec"] for m in _messages("spec") if m["type"] == "SPEC"]
    return spec["connectionSpecification"]


def test_the_saved_config_passes_the_new_spec_before_and_after_it_is_migrated(tmp_path, sandbox):
    # Airbyte validates a connection's saved config against the new spec when it upgrades the connector.
    spec = _spec()
    saved = {**CONNECTOR_BUILDER_CONFIG, "base_url": sandbox.base_url}
    jsonschema.validate(saved, spec)

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(saved))
    messages = _messages("check", "--config", str(config_file))

    assert [m["connectionStatus"]["status"] for m in messages if m["type"] == "CONNECTION_STATUS"] == ["SUCCEEDED"]
    (control,) = [m["control"] for m in messages if m["type"] == "CONTROL"]
    assert control["type"] == "CONNECTOR_CONFIG"
    migrated = control["connectorConfig"]["config"]
    assert migrated == {
        "api_key": SANDBOX_API_KEY,
        "base_url": sandbox.base_url,
        "start_date": CONNECTOR_BUILDER_CONFIG["start_date"],
        **MIGRATED,
    }
    jsonschema.validate(migrated, spec)
    assert json.loads(config_file.read_text()) == migrated, "the CDK rewrites the config file it was given"
    # The API key travels in that message only: Airbyte saves the config it carries (its secrets in its secret store).
    others = [m for m in messages if m["type"] != "CONTROL"]
    assert SANDBOX_API_KEY not in json.dumps(others)

    # Migrated once: the next run changes nothing and says nothing.
    again = _messages("check", "--config", str(config_file))
    assert not [m for m in again if m["type"] == "CONTROL"]
    assert json.loads(config_file.read_text()) == migrated


def test_every_stream_reads_from_the_saved_config_and_the_saved_states(sandbox):
    config = {**CONNECTOR_BUILDER_CONFIG, "base_url": sandbox.base_url}
    source = SourceCodefresh(config=config)
    streams = source.discover(None, source._config).streams  # type: ignore[arg-type]
    builder = CatalogBuilder()
    for stream in streams:
        incremental = SyncMode.incremental in stream.supported_sync_modes
        builder = builder.with_stream(stream.name, SyncMode.incremental if incremental else SyncMode.full_refresh)
    catalog = builder.build()
    states = [
        AirbyteStateMessageSerializer.load(
            {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": state}}
        )
        for name, state in CONNECTOR_BUILDER_STATES.items()
    ]

    output = read(SourceCodefresh(catalog=catalog, config=config, state=states), config, catalog, states)

    assert not output.errors, [m.trace.error.message for m in output.errors]
    counts = Counter(m.record.stream for m in output.records)
    expected = sandbox.expected()
    # Every stream of 0.0.x still exists under its name, and every stream read something.
    assert {
        "accounts",
        "account_settings",
        "agents",
        "builds",
        "audit",
        "analytics_metadata",
        "analytics_reports",
        "execution_contexts",
        "contexts",
        "projects",
        "pipelines",
        "step_types",
        "helm_repos",
    } <= set(counts)
    for stream in streams:
        want = expected_records(expected, stream.name)
        if stream.name in CONNECTOR_BUILDER_STATES:
            assert 0 < counts[stream.name] < (want or 0), f"{stream.name}: read from the saved state, not all of it"
        elif want is not None and stream.name not in ("build_details", "build_steps"):
            assert counts[stream.name] == want, (
                f"{stream.name}: {counts[stream.name]} records, the sandbox holds {want}"
            )
        else:
            assert counts[stream.name] > 0, f"{stream.name}: no records"
    analytics_days = {
        row.record.data["time"][:10] for row in output.records if row.record.stream == "analytics_reports"
    }
    assert min(analytics_days) >= MIGRATED["analytics_start_date"], "analytics start where report_date_range did"


def test_the_migrated_config_in_the_file_is_what_a_later_read_uses(tmp_path, sandbox):
    # What Airbyte does next: the saved (migrated) config, given as a path. Nothing more to migrate, nothing to emit.
    config_file: Path = tmp_path / "config.json"
    config_file.write_text(json.dumps({**CONNECTOR_BUILDER_CONFIG, "base_url": sandbox.base_url}))
    _messages("check", "--config", str(config_file))
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(
        json.dumps(
            {
                "streams": [
                    {
                        "stream": {"name": "accounts", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                        "sync_mode": "full_refresh",
                        "destination_sync_mode": "overwrite",
                    }
                ]
            }
        )
    )
    messages = _messages("read", "--config", str(config_file), "--catalog", str(catalog_file))
    assert not [m for m in messages if m["type"] == "CONTROL"]
    records = [m for m in messages if m["type"] == "RECORD"]
    assert len(records) == expected_records(sandbox.expected(), "accounts")
