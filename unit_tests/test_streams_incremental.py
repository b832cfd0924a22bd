"""Incremental syncs: where the next sync starts, what it emits again, and the state it leaves behind."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.entrypoint_wrapper import discover
from unit_tests import builders as b
from unit_tests.audit_server import AuditLog
from unit_tests.conftest import (
    any_params,
    config,
    records_of,
    request,
    response,
    run_read,
    sent_requests,
    stream_state,
)
from unit_tests.stream_cases import ALL_STREAMS, RECENT_ISO, case, recent
from source_codefresh import SourceCodefresh

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

INCREMENTAL = SyncMode.incremental


def _state_of(output, stream):
    states = [
        m.state.stream.stream_state for m in output.state_messages if m.state.stream.stream_descriptor.name == stream
    ]
    assert states, f"no state emitted for {stream}"
    return states[-1].__dict__


def _ms(text: str) -> int:
    return int(b.utc(text).timestamp() * 1000)


def test_every_stream_of_the_manifest_has_a_case():
    output = discover(SourceCodefresh(config=config()), config())
    assert sorted(s.name for s in output.catalog.catalog.streams) == sorted(ALL_STREAMS)


# --- builds: a server-side window on `created` ------------------------------------------------------------------


@pytest.mark.parametrize("lookback_hours", [0, 24])
def test_builds_start_one_millisecond_after_the_state_minus_the_lookback(http_mocker, lookback_hours):
    state = recent(20)
    http_mocker.get(any_params("workflow"), response(b.cursor_page([], 1, False, "workflows")))

    run_read("builds", sync_mode=INCREMENTAL, state=stream_state("builds", {"created": state}),
             builds_lookback_hours=lookback_hours)

    (sent,) = sent_requests(http_mocker, "workflow")
    expected = b.utc(state) + timedelta(milliseconds=1) - timedelta(hours=lookback_hours)
    assert sent["params"]["startDate"] == [b.iso(expected)]


def test_builds_state_advances_to_the_newest_build(http_mocker):
    builds = [b.build(3, recent(50)), b.build(2, recent(30)), b.build(1, recent(21))]
    http_mocker.get(any_params("workflow"), response(b.cursor_page(builds, 1, False, "workflows")))

    output = run_read("builds", sync_mode=INCREMENTAL, state=stream_state("builds", {"created": recent(20)}),
                      builds_lookback_hours=0)

    assert {r["id"] for r in records_of(output)} == {build["id"] for build in builds}
    assert _state_of(output, "builds") == {"created": recent(50)}
    (sent,) = sent_requests(http_mocker, "workflow")
    # The window ends now.
    end = b.utc(sent["params"]["endDate"][0])
    assert abs(end - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_first_builds_sync_starts_at_the_start_date(http_mocker):
    http_mocker.get(any_params("workflow"), response(b.cursor_page([b.build(1, recent(10))], 1, False, "workflows")))

    output = run_read("builds", sync_mode=INCREMENTAL, start_date=RECENT_ISO)

    (sent,) = sent_requests(http_mocker, "workflow")
    assert sent["params"]["startDate"] == [RECENT_ISO]
    assert _state_of(output, "builds") == {"created": recent(10)}


# --- audit_logs: a server-side window in epoch milliseconds ----------------------------------------------------------


@pytest.mark.parametrize("state_value", ["as emitted (string)", "as a number"])
def test_audit_logs_start_one_millisecond_after_the_state_and_advance_it(http_mocker, state_value):
    state_ms = _ms(recent(20))
    entries = [b.audit_entry(2, recent(40)), b.audit_entry(1, recent(25)), b.audit_entry(0, recent(20))]
    AuditLog(entries).install(http_mocker)

    state = str(state_ms) if state_value.startswith("as emitted") else state_ms
    output = run_read("audit_logs", sync_mode=INCREMENTAL, state=stream_state("audit_logs", {"createdAt": state}))

    (sent,) = [s for s in sent_requests(http_mocker, "audit") if s["params"]["pageSize"] != ["1"]]
    assert sent["params"]["from"] == [str(state_ms + 1)]
    to = int(sent["params"]["to"][0])
    assert abs(to - datetime.now(timezone.utc).timestamp() * 1000) < 5 * 60 * 1000
    # The entry at the state itself was emitted by the last sync: not again.
    assert {r["id"] for r in records_of(output)} == {e["id"] for e in entries[:2]}
    assert str(_state_of(output, "audit_logs")["createdAt"]) == str(_ms(recent(40)))


# --- client-side cursors: every record is read, only new or changed ones are emitted ---------------------------------

CLIENT_SIDE = {
    # stream: (request, envelope, record builder (index, cursor value) -> raw record, cursor field of the record)
    "projects": (request("projects", {"limit": "100"}), lambda items: {"projects": items}, b.project, "updatedAt"),
    "pipelines": (request("pipelines", {"limit": "100"}), lambda items: {"docs": items, "count": len(items)},
                  b.pipeline, "updated_at"),
    "images": (any_params("images"), lambda items: b.cursor_page(items, 1, False), b.image, "created"),
}


@pytest.mark.parametrize("stream", list(CLIENT_SIDE))
def test_client_side_cursor_emits_only_records_newer_than_the_state(http_mocker, stream):
    req, wrap, make, cursor = CLIENT_SIDE[stream]
    state = "2026-10-20T12:00:00.000Z"
    newer, older = make(1, "2026-10-25T08:00:00.000Z"), make(2, "2026-10-11T08:00:00.000Z")
    http_mocker.get(req, response(wrap([newer, older])))

    output = run_read(stream, sync_mode=INCREMENTAL, state=stream_state(stream, {cursor: state}))

    records = records_of(output)
    assert len(records) == 1
    assert records[0][cursor] == "2026-10-25T08:00:00.000Z"
    assert _state_of(output, stream) == {cursor: "2026-10-25T08:00:00.000Z"}


@pytest.mark.parametrize("stream", list(CLIENT_SIDE))
def test_client_side_cursor_does_not_emit_the_newest_record_of_the_last_sync_again(http_mocker, stream):
    req, wrap, make, cursor = CLIENT_SIDE[stream]
    state = "2026-10-20T12:00:00.000Z"
    http_mocker.get(req, response(wrap([make(1, state)])))  # unchanged since the last sync

    output = run_read(stream, sync_mode=INCREMENTAL, state=stream_state(stream, {cursor: state}))

    assert records_of(output) == []


def test_start_date_applies_to_client_side_streams(http_mocker):
    projects = [b.project(1, "2026-09-02T00:00:00.000Z"), b.project(2, "2026-08-31T23:59:59.999Z")]
    http_mocker.get(request("projects", {"limit": "100"}), response({"projects": projects}))

    records = records_of(run_read("projects", sync_mode=INCREMENTAL))

    assert [r["id"] for r in records] == [b.oid(1, "p")]


# --- per-build streams follow the builds listing -------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["build_details", "build_steps"])
def test_per_build_streams_read_the_builds_listed_since_the_state_and_advance_it(http_mocker, stream):
    c = case(stream)  # two builds, created recent(10) and recent(34)
    c.mock(http_mocker)
    last = recent(5)
    cursor = "created" if stream == "build_details" else "build_created"

    output = run_read(stream, sync_mode=INCREMENTAL, state=stream_state(stream, {cursor: last}), builds_lookback_hours=0)

    assert {r.get("build_id", r.get("id")) for r in records_of(output)} == {b.oid(1, "b"), b.oid(2, "b")}
    (listing,) = sent_requests(http_mocker, "workflow")
    start = b.utc(listing["params"]["startDate"][0])
    # Like the builds stream, the listing starts one millisecond after the newest build already read.
    assert start == b.utc(last) + timedelta(milliseconds=1)
    # The state has the shape of the builds stream's: the newest build creation time read, nothing per build.
    assert _state_of(output, stream) == {cursor: recent(34)}
