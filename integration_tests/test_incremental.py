"""Incremental builds and their per-build children against the sandbox: two consecutive syncs, an interrupted sync,
the exact boundary of the state, and the size of the state."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

import pytest

from airbyte_cdk.models import AirbyteStateMessage, SyncMode, Type
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, read
from integration_tests.sandbox import SANDBOX_API_KEY, SandboxConfig, SandboxServer
from source_codefresh import SourceCodefresh

BUILD_STREAMS = ("builds", "build_details", "build_steps")


def sync(server: SandboxServer, state: Optional[List[AirbyteStateMessage]] = None,
         streams=BUILD_STREAMS, **config: Any) -> EntrypointOutput:
    cfg = {"api_key": SANDBOX_API_KEY, "base_url": server.base_url, "max_requests_per_minute": 100000, **config}
    builder = CatalogBuilder()
    for name in streams:
        builder = builder.with_stream(name, SyncMode.incremental)
    catalog = builder.build()
    return read(SourceCodefresh(catalog=catalog, config=cfg, state=state), cfg, catalog, state)


def ids(output: EntrypointOutput, stream: str = "builds", key: str = "id") -> List[str]:
    return [m.record.data[key] for m in output.records if m.record.stream == stream]


def final_state(output: EntrypointOutput) -> List[AirbyteStateMessage]:
    """The last state message of each stream: what a platform would store after the sync."""
    latest: Dict[str, AirbyteStateMessage] = {}
    for message in output.state_messages:
        latest[message.state.stream.stream_descriptor.name] = message.state
    return list(latest.values())


@pytest.fixture
def sandbox():
    server = SandboxServer(SandboxConfig(builds=500)).start()
    yield server
    server.stop()


def test_two_consecutive_syncs_hold_every_build_once_plus_the_lookback_rereads(sandbox):
    first = sync(sandbox)
    first_ids = ids(first)
    assert sorted(first_ids) == sorted(sandbox.data.build_ids()) and len(set(first_ids)) == len(first_ids)
    was_unfinished = {b for b in first_ids if sandbox.data.get_build(b)["finished"] is None}
    assert was_unfinished, "the sandbox has builds still running at the first sync"

    advanced = sandbox.advance(new_builds=25, finish_running=True, minutes=60)
    second = sync(sandbox, final_state(first))
    second_ids = ids(second)

    assert len(set(second_ids)) == len(second_ids)
    assert set(advanced["added"]) <= set(second_ids), "every new build is read"
    assert was_unfinished <= set(second_ids), "builds that were running are read again, now finished"
    statuses = {m.record.data["id"]: m.record.data["status"] for m in second.records if m.record.stream == "builds"}
    assert all(statuses[b] in ("success", "error", "terminated") for b in was_unfinished)
    # Only the documented lookback window (builds_lookback_hours, default 24) is read again.
    newest_first = max(sandbox.data.get_build(b)["created"] for b in first_ids)
    rereads = set(second_ids) - set(advanced["added"])
    assert len(rereads) < len(first_ids) / 4
    assert all(hours_between(sandbox.data.get_build(b)["created"], newest_first) <= 24 for b in rereads)
    # Together they hold every build.
    assert set(first_ids) | set(second_ids) == set(sandbox.data.build_ids())
    # The children follow their parent: details of exactly the builds listed.
    assert sorted(ids(second, "build_details")) == sorted(second_ids)


def test_a_record_at_the_state_boundary_is_neither_lost_nor_emitted_twice(sandbox):
    first = sync(sandbox, builds_lookback_hours=0)
    assert sorted(ids(first)) == sorted(sandbox.data.build_ids())

    unchanged = sync(sandbox, final_state(first), builds_lookback_hours=0)
    assert ids(unchanged) == [], "the newest build (cursor == state) is not emitted again"

    added = sandbox.advance(new_builds=5, finish_running=False, minutes=10)["added"]
    after = sync(sandbox, final_state(unchanged) or final_state(first), builds_lookback_hours=0)
    assert sorted(ids(after)) == sorted(added)


def test_an_interrupted_sync_resumes_from_its_last_checkpoint(sandbox):
    full = sync(sandbox, streams=("builds",))
    messages = list(full.get_message_iterator())
    states = [i for i, m in enumerate(messages) if m.type == Type.STATE]
    assert len(states) >= 3, "the sync checkpoints as it goes"
    # Kill the sync right after its middle checkpoint: the platform keeps what it got until then.
    cut = states[len(states) // 2]
    delivered = [m.record.data["id"] for m in messages[:cut] if m.type == Type.RECORD]
    checkpoint = [messages[cut].state]

    resumed = sync(sandbox, checkpoint, streams=("builds",))
    resumed_ids = ids(resumed)
    assert set(delivered) | set(resumed_ids) == set(sandbox.data.build_ids()), "no build is lost"
    reread = set(delivered) & set(resumed_ids)
    largest_slice = max(Counter(slice_index(sandbox.data.get_build(b)["created"]) for b in sandbox.data.build_ids()).values())
    assert len(reread) <= largest_slice + lookback_count(sandbox, checkpoint), (
        f"re-read {len(reread)} builds, more than one slice"
    )


def test_build_details_skip_deleted_builds_with_one_line_each(sandbox):
    sandbox.set_faults([{"match": {"path": "^/api/(builds|workflow)/"}, "kind": "deleted_builds", "every": 10}])
    output = sync(sandbox, streams=("builds", "build_details"))
    listed = ids(output)
    details = ids(output, "build_details")
    deleted = sorted(set(listed) - set(details))
    assert len(details) == len(set(details)) == sandbox.expected()["build_details"]
    assert deleted and len(deleted) == sandbox.expected()["builds_deleted"]
    skipped_lines = [m.log.message for m in output.logs if "Skipping" in m.log.message and "build_details" in m.log.message]
    for build_id in deleted:
        assert sum(build_id in line for line in skipped_lines) == 1, f"one log line names deleted build {build_id}"
    assert not output.errors


def test_state_stays_small_with_20000_builds():
    with SandboxServer(SandboxConfig(builds=20000, pipelines=50, images=10, audit=10)) as server:
        output = sync(server, streams=("builds", "build_details"), num_workers=32)
        assert len(ids(output)) == 20000 and len(ids(output, "build_details")) == 20000
        sizes = {s.stream.stream_descriptor.name: len(json.dumps(s.stream.stream_state.__dict__)) for s in final_state(output)}
    assert all(size < 2048 for size in sizes.values()), sizes


# --- helpers -----------------------------------------------------------------------------------------------------

def _parse(value: str):
    from datetime import datetime
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def hours_between(earlier: str, later: str) -> float:
    return (_parse(later) - _parse(earlier)).total_seconds() / 3600


def slice_index(created: str) -> int:
    """The builds cursor's slice of a build: 180-day steps from the default start, 2014-01-01."""
    return (_parse(created) - _parse("2014-01-01T00:00:00Z")).days // 180


def lookback_count(server: SandboxServer, checkpoint: List[AirbyteStateMessage]) -> int:
    value = checkpoint[0].stream.stream_state.__dict__.get("created")
    if not value:
        return 0
    return sum(1 for b in server.data.build_ids() if 0 <= hours_between(server.data.get_build(b)["created"], value) <= 24)
