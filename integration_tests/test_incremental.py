"""Incremental builds and their per-build children against the sandbox: what the second sync reads (new and
unfinished builds only), a state of the previous release, an interrupted sync, a build waiting days on an approval,
every reading of the listing's dates, and the size of the state."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Set

import pytest
from airbyte_cdk.models import AirbyteStateMessage, SyncMode, Type
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput
from airbyte_cdk.test.state_builder import StateBuilder

from codefresh_sandbox import SandboxConfig, SandboxServer
from codefresh_sandbox.data import FIXED_ANCHOR
from integration_tests.syncs import final_state, read_streams

BUILD_STREAMS = ("builds", "build_details", "build_steps")
DETAILS = "GET /api/builds/{id}"
REVISIONS = "GET /api/workflow/{id}/context-revision"
LISTING = "GET /api/workflow"


def sync(
    server: SandboxServer, state: Optional[List[AirbyteStateMessage]] = None, streams=BUILD_STREAMS, **config: Any
) -> EntrypointOutput:
    """An incremental sync of `streams`, with a request budget that never slows a test unless `config` sets one."""
    return read_streams(server, streams, SyncMode.incremental, state, **{"max_requests_per_minute": 100000, **config})


def ids(output: EntrypointOutput, stream: str = "builds", key: str = "id") -> List[str]:
    return [m.record.data[key] for m in output.records if m.record.stream == stream]


def step_builds(output: EntrypointOutput) -> Set[str]:
    return set(ids(output, "build_steps", "build_id"))


def state_of(output: EntrypointOutput, stream: str = "builds") -> Dict[str, Any]:
    (state,) = [s for s in final_state(output) if s.stream.stream_descriptor.name == stream]
    return state.stream.stream_state.__dict__


def unfinished_now(server: SandboxServer, build_ids) -> Set[str]:
    return {b for b in build_ids if server.data.get_build(b)["finished"] is None}


def with_steps(server: SandboxServer, build_ids) -> Set[str]:
    return {b for b in build_ids if server.data.get_build(b)["started"] is not None}


def windows_since(server: SandboxServer, build_ids) -> int:
    """How many windows (the builds cursor's 180-day step) a sync reads from the oldest of `build_ids` to now: one
    today, more once the sandbox's fixed data is older than a step (the suite runs on any date)."""
    oldest = min(datetime.fromisoformat(server.data.get_build(b)["created"]) for b in build_ids)
    return math.ceil((datetime.now(timezone.utc) - oldest) / timedelta(days=180))


@pytest.fixture
def sandbox():
    server = SandboxServer(SandboxConfig(builds=500)).start()
    yield server
    server.stop()


def test_the_second_sync_reads_only_the_new_builds_and_those_that_were_unfinished(sandbox):
    first = sync(sandbox)
    first_ids = ids(first)
    assert sorted(first_ids) == sorted(sandbox.data.build_ids()) and len(set(first_ids)) == len(first_ids)
    was_unfinished = unfinished_now(sandbox, first_ids)
    assert len(was_unfinished) == 10, "the sandbox has builds still running at the first sync"

    added = sandbox.advance(new_builds=50, finish_running=True, minutes=60)["added"]
    sandbox.reset_stats()
    second = sync(sandbox, final_state(first))
    requests = sandbox.stats()["by_route"]

    wanted = set(added) | was_unfinished
    for stream in ("builds", "build_details"):
        assert sorted(ids(second, stream)) == sorted(wanted), f"{stream}: exactly the new and the unfinished builds"
    assert step_builds(second) == with_steps(sandbox, wanted)
    statuses = {m.record.data["id"]: m.record.data["status"] for m in second.records if m.record.stream == "builds"}
    assert all(statuses[b] in ("success", "error", "terminated") for b in was_unfinished), "now with their end"
    # One request per build read again or new, per child stream, and one listing page per stream (60 builds).
    assert requests[DETAILS] == requests[REVISIONS] == len(wanted)
    # One listing page per stream (60 builds) and per window.
    assert requests[LISTING] == len(BUILD_STREAMS) * windows_since(sandbox, was_unfinished)
    for stream in BUILD_STREAMS:
        assert state_of(second, stream)["unfinished"] == []

    third = sync(sandbox, final_state(second))
    assert [m for m in third.records] == [], "nothing new, nothing unfinished: nothing read again"


def test_the_first_sync_after_the_upgrade_reads_what_the_previous_release_would_have(sandbox):
    """A state of the previous release, {"created": <newest build>}: its next sync read the builds of the last
    builds_lookback_hours before it again. The first sync after the upgrade does the same, the next ones do not."""
    newest = max(sandbox.data.get_build(b)["created"] for b in sandbox.data.build_ids())
    old_state = [
        StateBuilder().with_stream_state(s, {"created" if s != "build_steps" else "build_created": newest}).build()[0]
        for s in BUILD_STREAMS
    ]
    added = sandbox.advance(new_builds=20, finish_running=True, minutes=60)["added"]

    sandbox.reset_stats()
    upgraded = sync(sandbox, old_state, builds_lookback_hours=24)
    requests = sandbox.stats()["by_route"]

    in_lookback = {
        b
        for b in sandbox.data.build_ids()
        if hours_between(sandbox.data.get_build(b)["created"], newest) <= 24
        and sandbox.data.get_build(b)["created"] <= newest
    }
    assert len(in_lookback) > 10
    for stream in ("builds", "build_details"):
        assert sorted(ids(upgraded, stream)) == sorted(in_lookback | set(added))
    assert requests[DETAILS] == requests[REVISIONS] == len(in_lookback | set(added))
    assert state_of(upgraded) == {"created": sandbox.data.get_build(added[-1])["created"], "unfinished": []}

    # The previous release read those 24 hours again at every sync; this one reads what is new, here nothing.
    sandbox.reset_stats()
    after = sync(sandbox, final_state(upgraded), builds_lookback_hours=24)
    assert after.records == []
    assert DETAILS not in sandbox.stats()["by_route"]


def test_an_interrupted_sync_resumes_from_its_last_checkpoint_without_passing_an_unfinished_build():
    # start_date puts a window boundary among the builds, so the sync checkpoints between builds.
    with SandboxServer(SandboxConfig(builds=500)) as server:
        full = sync(server, streams=("builds",), start_date="2026-05-01T12:00:00Z")
        messages = list(full.get_message_iterator())
        states = [i for i, m in enumerate(messages) if m.type == Type.STATE]
        assert len(states) >= 2, "the sync checkpoints as it goes"
        for cut in states[:-1]:  # the sync killed right after each checkpoint but the last
            delivered = [m.record.data["id"] for m in messages[:cut] if m.type == Type.RECORD]
            checkpoint = [messages[cut].state]
            resumed = ids(sync(server, checkpoint, streams=("builds",), start_date="2026-05-01T12:00:00Z"))
            assert set(delivered) | set(resumed) == set(server.data.build_ids()), "no build is lost"
            assert len(resumed) == len(set(resumed))
            delivered_unfinished = unfinished_now(server, delivered)
            assert delivered_unfinished <= set(resumed), "a build unfinished when delivered is read again"
            # What is read twice: builds read after the checkpoint (one window) and the unfinished ones.
            after_checkpoint = {
                b
                for b in delivered
                if b not in delivered_unfinished
                and server.data.get_build(b)["created"] > messages[cut].state.stream.stream_state.created
            }
            assert set(delivered) & set(resumed) <= after_checkpoint | delivered_unfinished


def test_a_build_waiting_days_on_an_approval_is_followed_for_builds_lookback_hours(sandbox):
    first = sync(sandbox, builds_lookback_hours=72)
    approval = next(b for b in ids(first) if sandbox.data.get_build(b)["status"] == "pending-approval")
    others = unfinished_now(sandbox, ids(first)) - {approval}
    followed, let_go = [], []
    state = final_state(first)
    for day in range(1, 6):
        # A day passes: 10 new builds, every other build finishes, the approval build keeps waiting.
        added = sandbox.advance(new_builds=10, minutes=24 * 60, keep_running=[approval])["added"]
        sandbox.reset_stats()
        output = sync(sandbox, state, builds_lookback_hours=72)
        state = final_state(output)
        expected = set(added) | (others if day == 1 else set())
        if approval in ids(output):
            followed.append(day)
            expected.add(approval)
        assert sorted(ids(output)) == sorted(expected), f"day {day}: new builds and the followed ones, nothing else"
        assert sorted(ids(output, "build_details")) == sorted(expected)
        assert sandbox.stats()["by_route"][DETAILS] == len(expected), "no detail request for a finished build"
        if any("no longer read again" in m.log.message for m in output.logs):
            let_go.append(day)
    # Read again while it was created less than 72 hours before the newest build of the previous sync (the new builds
    # of a day are up to 22 hours after its start), then let go with one log line.
    assert followed == [1, 2, 3, 4]
    assert let_go == [4]
    assert state_of(output)["unfinished"] == []


@pytest.mark.parametrize("reading", ["exact", "date_only", "date_first_instant"])
def test_every_build_once_whatever_part_of_the_dates_the_server_reads(reading):
    """startDate/endDate may be read to the millisecond, as whole days, or as the first instant of their date:
    every build comes exactly once, across window boundaries and in two consecutive syncs, for the builds and the
    per-build streams."""
    # The fixed anchor: the start date and the window boundary below are days of its data.
    with SandboxServer(SandboxConfig(builds=600, workflow_dates=reading, anchor=FIXED_ANCHOR)) as server:
        # A window boundary (2026-10-28T12:00Z, 180 days after the start) falls among the builds, mid-day.
        first = sync(server, start_date="2026-05-01T12:00:00Z")
        boundary_day = [
            b for b in server.data.build_ids() if server.data.get_build(b)["created"].startswith("2026-10-28")
        ]
        assert len(boundary_day) > 3
        expected = set(server.data.build_ids())
        for stream in ("builds", "build_details"):
            assert len(ids(first, stream)) == len(expected) and set(ids(first, stream)) == expected, stream
        assert step_builds(first) == with_steps(server, expected)
        steps = [
            (r["build_id"], r["name"])
            for r in (m.record.data for m in first.records if m.record.stream == "build_steps")
        ]
        assert len(steps) == len(set(steps)) == server.expected()["build_steps"]

        was_unfinished = unfinished_now(server, expected)
        added = server.advance(new_builds=30, minutes=90)["added"]
        server.reset_stats()
        second = sync(server, final_state(first), start_date="2026-05-01T12:00:00Z")
        wanted = set(added) | was_unfinished
        for stream in ("builds", "build_details"):
            assert len(ids(second, stream)) == len(wanted) and set(ids(second, stream)) == wanted, stream
        assert step_builds(second) == with_steps(server, wanted)
        assert server.stats()["by_route"][DETAILS] == len(wanted), "no detail request outside the window"


def test_build_details_skip_deleted_builds_with_one_line_each(sandbox):
    sandbox.set_faults([{"match": {"path": "^/api/(builds|workflow)/"}, "kind": "deleted_builds", "every": 10}])
    output = sync(sandbox, streams=("builds", "build_details"))
    listed = ids(output)
    details = ids(output, "build_details")
    deleted = sorted(set(listed) - set(details))
    assert len(details) == len(set(details)) == sandbox.expected()["build_details"]
    assert deleted and len(deleted) == sandbox.expected()["builds_deleted"]
    skipped_lines = [
        m.log.message for m in output.logs if "Skipping" in m.log.message and "build_details" in m.log.message
    ]
    for build_id in deleted:
        assert sum(build_id in line for line in skipped_lines) == 1, f"one log line names deleted build {build_id}"
    assert not output.errors


def test_unfinished_builds_spread_among_finished_ones_are_read_again_alone():
    """200 unfinished builds spread among 900 (some accounts keep builds pending for days): the next sync emits just
    them and the new builds, whatever the gaps between them, with a state of a few kB."""
    with SandboxServer(SandboxConfig(builds=100, unfinished_fraction=0)) as server:
        first = sync(server)
        spread = server.advance(new_builds=900, new_unfinished=200, spread_unfinished=True, minutes=48 * 60)["added"]
        second = sync(server, final_state(first))
        assert sorted(ids(second)) == sorted(spread)
        pending = unfinished_now(server, spread)
        assert (
            len(pending) == 200 and max(spread.index(b) for b in pending) - min(spread.index(b) for b in pending) > 800
        )

        added = server.advance(new_builds=50, finish_running=True, minutes=60)["added"]
        server.reset_stats()
        third = sync(server, final_state(second))
        requests = server.stats()["by_route"]

    wanted = sorted(pending | set(added))
    for stream in ("builds", "build_details"):
        assert sorted(ids(third, stream)) == wanted, f"{stream}: exactly the 200 unfinished and the 50 new builds"
    assert requests[DETAILS] == requests[REVISIONS] == len(wanted)
    # The listing: from the oldest unfinished build on (about 950 builds, 100 a page: 10 pages in the window that
    # holds them, one request for each later window), once per stream.
    assert requests[LISTING] == len(BUILD_STREAMS) * (10 + windows_since(server, pending) - 1)
    for stream in BUILD_STREAMS:
        size = len(json.dumps(state_of(second, stream)))
        assert size < 4096, f"{stream}: {size} bytes"
        assert state_of(third, stream)["unfinished"] == []


def test_state_stays_small_with_20000_builds():
    # The builds stream alone: the per-build streams keep the same cursor and state (a child's 20,000 requests
    # add minutes of CPU to the suite and nothing to what this shows).
    with SandboxServer(SandboxConfig(builds=20000, pipelines=50, images=10, audit=10)) as server:
        output = sync(server, streams=("builds",), num_workers=32)
        assert len(ids(output)) == 20000
        assert server.expected()["builds_unfinished"] == 400
        sizes = {
            s.stream.stream_descriptor.name: len(json.dumps(s.stream.stream_state.__dict__))
            for s in final_state(output)
        }
    assert set(sizes) == {"builds"} and all(size < 4096 for size in sizes.values()), sizes


# --- helpers -----------------------------------------------------------------------------------------------------


def _parse(value: str):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def hours_between(earlier: str, later: str) -> float:
    return (_parse(later) - _parse(earlier)).total_seconds() / 3600
