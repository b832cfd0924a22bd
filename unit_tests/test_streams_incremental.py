"""Incremental syncs: where the next sync starts, what it emits again, and the state it leaves behind."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.entrypoint_wrapper import discover

from source_codefresh import SourceCodefresh
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
from unit_tests.stream_cases import ALL_STREAMS, GITOPS_STREAMS, RECENT_ISO, case, recent

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
    # The GitOps streams (GraphQL) are read by unit_tests/test_graphql.py and integration_tests/test_gitops.py.
    output = discover(SourceCodefresh(config=config()), config())
    assert sorted(s.name for s in output.catalog.catalog.streams) == sorted(ALL_STREAMS + GITOPS_STREAMS)


# --- builds: a server-side window on `created`, following the builds that were not finished ---------------------------


def _next_midnight_after_now() -> str:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return b.iso(today + timedelta(days=1))


def test_first_builds_sync_starts_at_the_start_date_and_asks_up_to_the_next_midnight(http_mocker):
    builds = [b.build(2, recent(10), "running"), b.build(1, recent(5))]
    http_mocker.get(any_params("workflow"), response(b.cursor_page(builds, 1, False, "workflows")))

    output = run_read("builds", sync_mode=INCREMENTAL, start_date=RECENT_ISO)

    (sent,) = sent_requests(http_mocker, "workflow")
    assert sent["params"]["startDate"] == [RECENT_ISO]
    # The window ends now; endDate is the midnight after it, so a server that reads only the date (or reads it as its
    # first instant) still answers every build of the window.
    assert sent["params"]["endDate"] == [_next_midnight_after_now()]
    assert _state_of(output, "builds") == {"created": recent(10), "unfinished": [[recent(10), recent(10)]]}


def test_builds_sync_reads_again_from_the_first_unfinished_build_and_emits_only_those_and_new_ones(http_mocker):
    state = {"created": recent(30), "unfinished": [[recent(20), recent(20)]]}
    listing = [
        b.build(5, recent(40)),
        b.build(4, recent(30)),
        b.build(3, recent(25)),
        b.build(2, recent(20)),
        b.build(1, recent(19)),
    ]
    http_mocker.get(any_params("workflow"), response(b.cursor_page(listing, 1, False, "workflows")))

    output = run_read("builds", sync_mode=INCREMENTAL, state=stream_state("builds", state))

    (sent,) = sent_requests(http_mocker, "workflow")
    assert sent["params"]["startDate"] == [recent(20)]
    # new (40), and the one that was unfinished (20, now finished); 30 and 25 were finished when read, 19 is before
    # the window (a server that reads only dates answers the whole day).
    assert [r["id"] for r in records_of(output)] == [b.oid(5, "b"), b.oid(2, "b")]
    assert _state_of(output, "builds") == {"created": recent(40), "unfinished": []}


def test_a_state_of_the_previous_release_reads_its_lookback_once(http_mocker):
    http_mocker.get(
        any_params("workflow"),
        response(
            b.cursor_page(
                [b.build(3, recent(40)), b.build(2, recent(30)), b.build(1, recent(5))], 1, False, "workflows"
            )
        ),
    )

    output = run_read(
        "builds", sync_mode=INCREMENTAL, state=stream_state("builds", {"created": recent(30)}), builds_lookback_hours=24
    )

    (sent,) = sent_requests(http_mocker, "workflow")
    assert sent["params"]["startDate"] == [recent(6)]
    # As the previous release would have: every build of the 24 hours before the state, and the new ones.
    assert [r["id"] for r in records_of(output)] == [b.oid(3, "b"), b.oid(2, "b")]
    assert _state_of(output, "builds") == {"created": recent(40), "unfinished": []}


def test_a_date_range_state_of_the_cdk_keeps_working(http_mocker):
    http_mocker.get(any_params("workflow"), response(b.cursor_page([b.build(1, recent(40))], 1, False, "workflows")))
    state = {
        "state_type": "date-range",
        "slices": [{"start": RECENT_ISO, "end": recent(30), "most_recent_cursor_value": recent(29)}],
    }

    output = run_read("builds", sync_mode=INCREMENTAL, state=stream_state("builds", state), builds_lookback_hours=2)

    (sent,) = sent_requests(http_mocker, "workflow")
    assert sent["params"]["startDate"] == [recent(27)]
    assert _state_of(output, "builds") == {"created": recent(40), "unfinished": []}


# --- audit: a server-side window in epoch milliseconds ----------------------------------------------------------


@pytest.mark.parametrize("state_value", ["as emitted (string)", "as a number", "as 0.0.x saved it (ISO)"])
def test_audit_logs_start_one_millisecond_after_the_state_and_advance_it(http_mocker, state_value):
    state_ms = _ms(recent(20))
    entries = [b.audit_entry(2, recent(40)), b.audit_entry(1, recent(25)), b.audit_entry(0, recent(20))]
    AuditLog(entries).install(http_mocker)

    state = {
        "as emitted (string)": str(state_ms),
        "as a number": state_ms,
        # Airbyte's Connector Builder connector's format: "%Y-%m-%dT%H:%M:%S.%fZ"
        "as 0.0.x saved it (ISO)": recent(20).replace("Z", "000Z"),
    }[state_value]
    output = run_read("audit", sync_mode=INCREMENTAL, state=stream_state("audit", {"createdAt": state}))

    (sent,) = [s for s in sent_requests(http_mocker, "audit") if s["params"]["pageSize"] != ["1"]]
    assert sent["params"]["from"] == [str(state_ms + 1)]
    to = int(sent["params"]["to"][0])
    assert abs(to - datetime.now(timezone.utc).timestamp() * 1000) < 5 * 60 * 1000
    # The entry at the state itself was emitted by the last sync: not again.
    assert {r["id"] for r in records_of(output)} == {e["id"] for e in entries[:2]}
    assert str(_state_of(output, "audit")["createdAt"]) == str(_ms(recent(40)))


# --- client-side cursors: every record is read, only new or changed ones are emitted ---------------------------------

CLIENT_SIDE = {
    # stream: (request, envelope, record builder (index, cursor value) -> raw record, cursor field of the record)
    "projects": (request("projects", {"limit": "100"}), lambda items: {"projects": items}, b.project, "updatedAt"),
    "pipelines": (
        request("pipelines", {"limit": "100"}),
        lambda items: {"docs": items, "count": len(items)},
        b.pipeline,
        "updated_at",
    ),
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

    output = run_read(stream, sync_mode=INCREMENTAL, state=stream_state(stream, {cursor: last, "unfinished": []}))

    assert {r.get("build_id", r.get("id")) for r in records_of(output)} == {b.oid(1, "b"), b.oid(2, "b")}
    (listing,) = sent_requests(http_mocker, "workflow")
    start = b.utc(listing["params"]["startDate"][0])
    # Like the builds stream, the listing starts one millisecond after the newest build already read.
    assert start == b.utc(last) + timedelta(milliseconds=1)
    # The state has the shape of the builds stream's: the newest build creation time read, nothing per build.
    assert _state_of(output, stream) == {cursor: recent(34), "unfinished": []}


@pytest.mark.parametrize("stream", ["build_details", "build_steps"])
def test_per_build_streams_request_only_the_builds_that_are_new_or_were_unfinished(http_mocker, stream):
    cursor = "created" if stream == "build_details" else "build_created"
    listing = [b.build(3, recent(40)), b.build(2, recent(30)), b.build(1, recent(20))]  # 2 was finished when read
    http_mocker.get(any_params("workflow"), response(b.cursor_page(listing, 1, False, "workflows")))
    for i, created in ((3, recent(40)), (1, recent(20))):
        path = f"builds/{b.oid(i, 'b')}" if stream == "build_details" else f"workflow/{b.oid(i, 'b')}/context-revision"
        body = (
            b.build_detail(i, created)
            if stream == "build_details"
            else b.context_revisions(b.oid(i, "b"), b.default_steps())
        )
        http_mocker.get(request(path), response(body))
    state = {cursor: recent(30), "unfinished": [[recent(20), recent(20)]]}

    output = run_read(stream, sync_mode=INCREMENTAL, state=stream_state(stream, state))

    assert {r.get("build_id", r.get("id")) for r in records_of(output)} == {b.oid(3, "b"), b.oid(1, "b")}
    requested = {s["path"] for s in sent_requests(http_mocker) if s["path"] != "workflow"}
    assert not any(b.oid(2, "b") in path for path in requested), "no request for a build finished when read"
    assert _state_of(output, stream) == {cursor: recent(40), "unfinished": []}


# --- a state that cannot be read: one sentence, for every incremental stream -----------------------------------------

BAD_STATES = {
    "builds": {"created": "not-a-date"},
    "build_details": {"created": "not-a-date"},
    "build_steps": {"build_created": "not-a-date"},
    "projects": {"updatedAt": "not-a-date"},
    "pipelines": {"updated_at": "not-a-date"},
    "images": {"created": "not-a-date"},
    "audit": {"createdAt": "not-a-date"},
    "analytics_reports": {
        "states": [{"partition": {"parent_id": "creditConsumption"}, "cursor": {"time": "not-a-date"}}]
    },
}


# Streams that exist only with a setting: the setting, and the state of the stream.
OPTIONAL_BAD_STATES = {
    "build_logs": ({"sync_build_logs": True}, {"build_created": "not-a-date"}),
    "registries": (
        {
            "custom_streams": [
                {
                    "name": "registries",
                    "path": "registries",
                    "primary_key": "_id",
                    "pagination": "none",
                    "cursor_field": "updatedAt",
                }
            ]
        },
        {"updatedAt": "not-a-date"},
    ),
}


@pytest.mark.parametrize("stream", sorted(BAD_STATES) + sorted(OPTIONAL_BAD_STATES))
def test_an_unreadable_state_ends_the_sync_with_one_sentence_naming_the_stream(http_mocker, stream):
    settings, state = OPTIONAL_BAD_STATES.get(stream, ({}, BAD_STATES.get(stream)))
    output = run_read(stream, sync_mode=INCREMENTAL, state=stream_state(stream, state), expect_failure=True, **settings)

    (error,) = [m.trace.error for m in output.errors]
    assert error.message.startswith(f"The saved state of stream '{stream}' cannot be read (")
    assert "'not-a-date'" in error.message
    assert error.message.endswith(
        "reset that stream in Airbyte (Clear data), and its next sync reads it again from start_date."
    )
    assert error.failure_type.value == "config_error"
    assert records_of(output) == []


def test_an_unreadable_unfinished_list_ends_the_sync_with_one_sentence(http_mocker):
    state = {"created": recent(30), "unfinished": [[recent(20)]]}

    output = run_read("builds", sync_mode=INCREMENTAL, state=stream_state("builds", state), expect_failure=True)

    (error,) = [m.trace.error for m in output.errors]
    assert error.message.startswith("The saved state of stream 'builds' cannot be read ('unfinished[0]' is")


def test_a_stream_not_in_the_catalog_is_not_built_so_its_unreadable_state_does_not_fail_the_sync(http_mocker):
    http_mocker.get(any_params("workflow"), response(b.cursor_page([b.build(1, recent(40))], 1, False, "workflows")))
    state = stream_state("builds", {"created": recent(30), "unfinished": []}) + stream_state(
        "projects", {"updatedAt": "not-a-date"}
    )

    output = run_read("builds", sync_mode=INCREMENTAL, state=state)

    assert [r["id"] for r in records_of(output)] == [b.oid(1, "b")]
    assert not output.errors
