"""Reading the connector against a sandbox, shared by the integration tests: one sync of some streams, the records
of one stream, and the state a platform would keep after it."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

from airbyte_cdk.models import AirbyteStateMessage, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from airbyte_cdk.test.models.outcome import ExpectedOutcome

from codefresh_sandbox import SANDBOX_API_KEY, SandboxServer
from source_codefresh import SourceCodefresh


def read_streams(
    server: SandboxServer,
    streams: Iterable[str],
    mode: SyncMode = SyncMode.full_refresh,
    state: Optional[List[AirbyteStateMessage]] = None,
    expect_failure: bool = False,
    **config: Any,
) -> EntrypointOutput:
    """One sync of `streams` against `server`, with the sandbox's key and `config` on top (it may replace the key)."""
    cfg = {"api_key": SANDBOX_API_KEY, "base_url": server.base_url, **config}
    builder = CatalogBuilder()
    for name in streams:
        builder = builder.with_stream(name, mode)
    catalog = builder.build()
    outcome = ExpectedOutcome.EXPECT_EXCEPTION if expect_failure else ExpectedOutcome.EXPECT_SUCCESS
    return read(
        SourceCodefresh(catalog=catalog, config=cfg, state=state), cfg, catalog, state, expected_outcome=outcome
    )


def records(output: EntrypointOutput, stream: str) -> List[Dict[str, Any]]:
    return [m.record.data for m in output.records if m.record.stream == stream]


def final_state(output: EntrypointOutput) -> List[AirbyteStateMessage]:
    """The last state message of each stream: what a platform would store after the sync."""
    latest: Dict[str, AirbyteStateMessage] = {}
    for message in output.state_messages:
        latest[message.state.stream.stream_descriptor.name] = message.state
    return list(latest.values())
