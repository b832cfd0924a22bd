"""source_codefresh/state.py: where a sync starts, which builds it reads again, and states it cannot read."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Mapping, Optional

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import InMemoryMessageRepository
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor, CursorField
from airbyte_cdk.sources.streams.concurrent.state_converters.datetime_stream_state_converter import (
    CustomFormatConcurrentStreamStateConverter,
)
from airbyte_cdk.sources.types import Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.state import (
    RUNNING_BUILD_STATUSES,
    CursorStartsAfterState,
    FinishedRule,
    Followed,
    FollowsUnfinishedBuildsCursor,
    FollowsUnfinishedBuildsState,
    ReadableState,
    build_finished,
    merge_ranges,
    read_ranges,
)

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def builds_state(created: str, *unfinished: Any) -> Dict[str, Any]:
    """A state of the builds streams: the newest build read, and unfinished builds as points (a creation time) or
    [first, last] ranges (a pair)."""
    ranges = [[u, u] if isinstance(u, str) else list(u) for u in unfinished]
    return {"created": created, "unfinished": ranges}


# --- CursorStartsAfterState ------------------------------------------------------------------------------------------


def test_iso_state_moves_one_millisecond():
    migration = CursorStartsAfterState(cursor_field="created", datetime_format="iso", config={}, parameters={})
    state = {"created": "2026-10-05T12:34:56.789Z"}
    assert migration.should_migrate(state)
    assert migration.migrate(state) == {"created": "2026-10-05T12:34:56.790Z"}


def test_epoch_millisecond_state_moves_one_millisecond():
    migration = CursorStartsAfterState(cursor_field="createdAt", datetime_format="%ms", config={}, parameters={})
    assert migration.migrate({"createdAt": 1759667696789}) == {"createdAt": 1759667696790}


def test_an_iso_audit_state_of_the_connector_builder_connector_becomes_epoch_milliseconds_one_later():
    # Airbyte's Connector Builder connector (0.0.x) saved the audit cursor as "%Y-%m-%dT%H:%M:%S.%fZ".
    migration = CursorStartsAfterState(cursor_field="createdAt", datetime_format="%ms", config={}, parameters={})
    state = {"createdAt": "2025-10-05T12:34:56.789000Z"}
    assert migration.should_migrate(state)
    assert migration.migrate(state) == {"createdAt": 1759667696790}


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"other": "x"},
        {
            "state_type": "date-range",
            "slices": [{"start": "2026-10-01T00:00:00.000Z", "end": "2026-10-05T00:00:00.000Z"}],
        },
    ],
)
def test_states_without_a_plain_cursor_are_left_alone(state):
    migration = CursorStartsAfterState(cursor_field="created", datetime_format="iso", config={}, parameters={})
    assert not migration.should_migrate(state)


# --- states that cannot be read: one sentence naming the stream ------------------------------------------------------

UNREADABLE = [
    ("iso", {"created": "not-a-date"}, "'created' is 'not-a-date', not an ISO-8601 date-time"),
    ("iso", {"created": 17}, "'created' is 17, not an ISO-8601 date-time"),
    ("%ms", {"created": "soon"}, "not epoch milliseconds"),
    (
        "iso",
        {"state_type": "date-range", "slices": [{"start": "x", "end": "2026-10-05T00:00:00.000Z"}]},
        "'slices[0].start' is 'x'",
    ),
    ("iso", {"state_type": "date-range", "slices": "no"}, "without a list of slices"),
    (
        "iso",
        {"states": [{"partition": {"parent_id": "r"}, "cursor": {"created": "yesterday"}}]},
        "'states[0].cursor.created' is 'yesterday'",
    ),
    ("iso", {"state": {"created": "soon"}}, "'state.created' is 'soon'"),
    # Dates no sync can start from: a date before 1970 broke the date arithmetic (OverflowError), and one in the future
    # made every later sync read nothing, without a word.
    ("iso", {"created": "0001-01-01T00:00:00.000Z"}, "'created' is '0001-01-01T00:00:00.000Z', before 1970"),
    ("%ms", {"created": -62135596800000}, "'created' is -62135596800000, before 1970"),
    (
        "iso",
        {"created": "2999-01-01T00:00:00.000Z"},
        "'created' is '2999-01-01T00:00:00.000Z', in the future, so a sync from it would read nothing",
    ),
    ("%ms", {"created": 32472144000000}, "'created' is 32472144000000, in the future"),
    (
        "iso",
        {"states": [{"partition": {"reportName": "r"}, "cursor": {"created": "2999-01-01"}}]},
        "'states[0].cursor.created' is '2999-01-01', in the future",
    ),
]


@pytest.mark.parametrize("datetime_format, state, detail", UNREADABLE)
def test_an_unreadable_state_fails_with_one_sentence_naming_the_stream(datetime_format, state, detail):
    migration = ReadableState(
        cursor_field="created", datetime_format=datetime_format, config={}, parameters={"name": "some_stream"}
    )
    with pytest.raises(AirbyteTracedException) as raised:
        migration.should_migrate(state)
    message = raised.value.message
    assert message.startswith("The saved state of stream 'some_stream' cannot be read (")
    assert detail in message
    assert message.endswith(
        "reset that stream in Airbyte (Clear data), and its next sync reads it again from start_date."
    )
    assert raised.value.failure_type == FailureType.config_error


# --- FollowsUnfinishedBuildsState: every older shape becomes the new one ----------------------------------------------


def builds_migration(lookback_hours: Any = 24, cursor_field: str = "created") -> FollowsUnfinishedBuildsState:
    return FollowsUnfinishedBuildsState(
        cursor_field=cursor_field, lookback_hours=lookback_hours, config={}, parameters={"name": "builds"}
    )


def test_a_state_of_the_previous_release_becomes_its_lookback_range():
    migration = builds_migration(24)
    state = {"created": "2026-10-05T12:00:00.000Z"}
    assert migration.should_migrate(state)
    assert migration.migrate(state) == builds_state(
        "2026-10-05T12:00:00.000Z", ("2026-10-04T12:00:00.000Z", "2026-10-05T12:00:00.000Z")
    )


def test_a_previous_state_with_a_lookback_of_zero_has_no_range():
    assert builds_migration(0).migrate({"created": "2026-10-05T12:00:00.000Z"}) == builds_state(
        "2026-10-05T12:00:00.000Z"
    )


def test_the_lookback_comes_from_the_config():
    migration = FollowsUnfinishedBuildsState(
        cursor_field="{{ parameters.cursor_field }}",
        lookback_hours="{{ config['builds_lookback_hours'] if config.get('builds_lookback_hours') is not none "
        "else 72 }}",
        config={"builds_lookback_hours": 6},
        parameters={"name": "build_steps", "cursor_field": "build_created"},
    )
    assert migration.migrate({"build_created": "2026-10-05T12:00:00.000Z"})["unfinished"] == [
        ["2026-10-05T06:00:00.000Z", "2026-10-05T12:00:00.000Z"]
    ]


def test_a_date_range_state_of_the_cdk_becomes_the_range_before_its_first_slice():
    state = {
        "state_type": "date-range",
        "slices": [
            {"start": "2026-10-06T00:00:00.000Z", "end": "2026-10-07T00:00:00.000Z"},
            {
                "start": "2014-01-01T00:00:00.000Z",
                "end": "2026-10-05T12:00:00.000Z",
                "most_recent_cursor_value": "2026-10-05T11:00:00.000Z",
            },
        ],
    }
    assert builds_migration(1).migrate(state) == builds_state(
        "2026-10-05T11:00:00.000Z", ("2026-10-05T10:00:00.000Z", "2026-10-05T11:00:00.000Z")
    )


def test_a_new_state_is_kept_as_it_is():
    state = builds_state("2026-10-05T12:00:00.000Z", ("2026-10-05T09:00:00.000Z", "2026-10-05T09:30:00.000Z"))
    assert builds_migration().migrate(state) == state


@pytest.mark.parametrize("state", [{"__ab_no_cursor_state_message": True}, {"other": 1}])
def test_a_state_without_a_cursor_value_is_no_state(state):
    assert builds_migration().migrate(state) == {}


@pytest.mark.parametrize(
    "state, detail",
    [
        ({"created": "not-a-date"}, "'created' is 'not-a-date'"),
        ({"created": "2026-10-05T12:00:00.000Z", "unfinished": "all"}, "'unfinished' is 'all', not a list"),
        ({"created": "2026-10-05T12:00:00.000Z", "unfinished": [["2026-10-05T12:00:00.000Z"]]}, "'unfinished[0]'"),
        (["2026-10-05T12:00:00.000Z"], "it is ['2026-10-05T12:00:00.000Z'], not an object"),
        (
            builds_state("2026-10-05T12:00:00.000Z", ("2026-10-05T12:00:00.000Z", "2026-10-04T00:00:00.000Z")),
            "'unfinished[0]'",
        ),
        ({"created": "0001-01-01T00:00:00.000Z"}, "before 1970"),
        ({"created": "2999-01-01T00:00:00.000Z"}, "in the future, so a sync from it would read nothing"),
    ],
)
def test_an_unreadable_builds_state_fails_with_one_sentence(state, detail):
    with pytest.raises(AirbyteTracedException) as raised:
        builds_migration().migrate(state)
    assert raised.value.message.startswith("The saved state of stream 'builds' cannot be read (")
    assert detail in raised.value.message


# --- merge_ranges --------------------------------------------------------------------------------------------------


def span(first: str, last: str) -> Followed:
    return Followed(at(first), at(last))


def test_overlapping_and_touching_ranges_are_joined():
    ranges = [
        span("2026-10-05T10:00:00Z", "2026-10-05T11:00:00Z"),
        span("2026-10-05T10:30:00Z", "2026-10-05T12:00:00Z"),
        Followed.build(at("2026-10-05T12:00:00.001Z")),
        Followed.build(at("2026-10-01T00:00:00Z")),
    ]
    assert merge_ranges(ranges) == [
        Followed.build(at("2026-10-01T00:00:00Z")),
        span("2026-10-05T10:00:00Z", "2026-10-05T12:00:00.001Z"),
    ]


def test_more_ranges_than_the_limit_are_joined_across_their_smallest_gaps_keeping_each_build_exactly():
    base = at("2026-10-05T00:00:00Z")
    minutes = [0, 10, 11, 100, 101, 1000]  # unfinished builds created at these minutes
    points = [base + timedelta(minutes=m) for m in minutes]
    merged = merge_ranges([Followed.build(p) for p in points], limit=3)
    assert [(f.first, f.last) for f in merged] == [
        (base, base + timedelta(minutes=11)),
        (base + timedelta(minutes=100), base + timedelta(minutes=101)),
        (base + timedelta(minutes=1000), base + timedelta(minutes=1000)),
    ]
    held = [p for p in points if any(f.holds(p) for f in merged)]
    assert held == points, "joining never drops a build"
    between = base + timedelta(minutes=5)
    assert not any(f.holds(between) for f in merged), "a finished build between two followed ones is not read again"


def test_past_the_cap_the_ranges_with_the_most_builds_keep_only_their_bounds():
    base = at("2026-10-05T00:00:00Z")
    dense = [Followed.build(base + timedelta(seconds=s)) for s in range(6)]  # six builds in one range
    sparse = [Followed.build(base + timedelta(hours=h)) for h in (5, 9)]
    merged = merge_ranges(dense + sparse, limit=2, max_builds=4)
    assert merged[0] == Followed(base, base + timedelta(seconds=5)), "the densest range reads every build inside it"
    assert merged[1].points == frozenset({base + timedelta(hours=5), base + timedelta(hours=9)})


def test_the_state_writes_exact_builds_as_millisecond_offsets_and_reads_them_back():
    first = at("2026-10-05T00:00:00Z")
    followed = Followed(first, first + timedelta(hours=2), frozenset({first, first + timedelta(hours=2, seconds=0)}))
    written = followed.to_state()
    assert written == ["2026-10-05T00:00:00.000Z", "2026-10-05T02:00:00.000Z", [0, 7_200_000]]
    assert read_ranges("builds", [written]) == [followed]
    # The older shape, [first, last] alone, stands for every build of the range.
    assert read_ranges("builds", [written[:2]]) == [Followed(followed.first, followed.last)]


@pytest.mark.parametrize(
    "unfinished, detail",
    [
        ([["2026-10-05T00:00:00.000Z", "2026-10-05T01:00:00.000Z", [3_600_001]]], "'unfinished[0]' is"),
        ([["2026-10-05T00:00:00.000Z", "2026-10-05T01:00:00.000Z", ["x"]]], "'unfinished[0]' is"),
        (
            [["0001-01-01T00:00:00.000Z", "2026-10-05T01:00:00.000Z"]],
            "'unfinished[0][0]' is '0001-01-01T00:00:00.000Z', before 1970",
        ),
    ],
)
def test_an_unreadable_range_fails_with_one_sentence(unfinished, detail):
    with pytest.raises(AirbyteTracedException) as raised:
        builds_migration().migrate({"created": "2026-10-05T12:00:00.000Z", "unfinished": unfinished})
    assert detail in raised.value.message


# --- build_finished: the one definition of a finished build ---------------------------------------------------------

ENDED_AT = "2026-10-01T00:00:00.000Z"


@pytest.mark.parametrize("status", sorted(RUNNING_BUILD_STATUSES))
def test_a_running_status_is_not_finished_even_with_a_finish_time(status):
    assert not build_finished({"status": status, "finished": None})
    assert not build_finished({"status": status, "finished": ENDED_AT})


@pytest.mark.parametrize("status", ["success", "error", "terminated", "denied", "approved", "failure", None])
def test_any_other_status_has_finished_once_it_has_a_finish_time(status):
    assert build_finished({"status": status, "finished": ENDED_AT})
    assert not build_finished({"status": status, "finished": None})
    assert not build_finished({"status": status})


# --- FollowsUnfinishedBuildsCursor, driven like the CDK drives it -----------------------------------------------------

START = at("2026-01-01T00:00:00Z")
NOW = at("2026-10-10T00:00:00Z")


class Window:
    """A partition as the CDK hands it to a cursor: its slice."""

    def __init__(self, stream_slice: StreamSlice) -> None:
        self._slice = stream_slice

    def to_slice(self) -> StreamSlice:
        return self._slice


def make_cursor(
    state: Optional[Mapping[str, Any]] = None,
    follow_hours: float = 72,
    repository: Optional[InMemoryMessageRepository] = None,
    stream: str = "builds",
    cursor_field: str = "created",
    **followed: Any,
) -> FollowsUnfinishedBuildsCursor:
    converter = CustomFormatConcurrentStreamStateConverter(
        datetime_format="%Y-%m-%dT%H:%M:%S.%_msZ",
        input_datetime_formats=["%Y-%m-%dT%H:%M:%S.%fZ"],
        is_sequential_state=True,
        cursor_granularity=timedelta(milliseconds=1),
    )

    def cdk_cursor(windows_state: Mapping[str, Any]) -> ConcurrentCursor:
        """The CDK's cursor of the builds streams' DatetimeBasedCursor (180-day windows), as its factory builds it."""
        return ConcurrentCursor(
            stream_name=stream,
            stream_namespace=None,
            stream_state=dict(windows_state),
            message_repository=InMemoryMessageRepository(),
            connector_state_manager=ConnectorStateManager(),
            connector_state_converter=converter,
            cursor_field=CursorField(cursor_field),
            slice_boundary_fields=("start_time", "end_time"),
            start=START,
            end_provider=lambda: NOW,
            slice_range=timedelta(days=180),
            cursor_granularity=timedelta(milliseconds=1),
        )

    return FollowsUnfinishedBuildsCursor(
        stream_name=stream,
        cursor_field=cursor_field,
        stream_state=dict(state or {}),
        windows=cdk_cursor,
        window_fields=("start_time", "end_time"),
        follow_hours=follow_hours,
        message_repository=repository or InMemoryMessageRepository(),
        state_manager=ConnectorStateManager(),
        **followed,
    )


def build(created: str, status: str = "success", finished: Optional[str] = "") -> Dict[str, Any]:
    """A listed build; `success` and `error` get a finish time unless `finished` says which (None: none)."""
    if finished == "":
        finished = created if status in ("success", "error") else None
    return {"id": created, "created": created, "status": status, "finished": finished}


def listed(cursor: FollowsUnfinishedBuildsCursor, window: StreamSlice, builds: List[Dict[str, Any]]) -> List[str]:
    """What the record filter keeps of a window's listing (in listing order)."""
    return [
        b["created"]
        for b in builds
        if cursor.should_be_synced(Record(data=b, stream_name="builds", associated_slice=window))
    ]


def test_a_first_sync_reads_from_the_start_date_in_windows_and_keeps_each_build_in_its_window():
    cursor = make_cursor()
    windows = list(cursor.stream_slices())
    assert [w.cursor_slice["start_time"] for w in windows] == ["2026-01-01T00:00:00.000Z", "2026-06-30T00:00:00.000Z"]
    assert windows[0].cursor_slice["end_time"] == "2026-06-29T23:59:59.999Z"
    # A server that read only the dates answers both windows with the builds of 2026-06-29 and 2026-06-30.
    edge = [build("2026-06-30T00:00:00.000Z"), build("2026-06-29T23:59:59.999Z"), build("2026-06-29T08:00:00.000Z")]
    assert listed(cursor, windows[0], edge) == ["2026-06-29T23:59:59.999Z", "2026-06-29T08:00:00.000Z"]
    assert listed(cursor, windows[1], edge) == ["2026-06-30T00:00:00.000Z"]


def test_the_state_keeps_the_newest_build_and_where_unfinished_builds_were_created():
    repository = InMemoryMessageRepository()
    cursor = make_cursor(repository=repository, follow_hours=24 * 365)
    first, second = cursor.stream_slices()
    listed(cursor, first, [build("2026-05-01T00:00:00.000Z", "running"), build("2026-04-01T00:00:00.000Z")])
    cursor.close_partition(Window(first))
    assert cursor.state == builds_state("2026-05-01T00:00:00.000Z", "2026-05-01T00:00:00.000Z")
    listed(
        cursor,
        second,
        [
            build("2026-10-09T00:00:00.000Z"),
            build("2026-10-08T00:00:00.000Z", "some-new-status"),
            build("2026-10-07T00:00:00.000Z", "pending-approval"),
        ],
    )
    cursor.close_partition(Window(second))
    emitted = [m.state.stream.stream_state.__dict__ for m in repository.consume_queue()]
    assert emitted[-1] == builds_state(
        "2026-10-09T00:00:00.000Z", "2026-05-01T00:00:00.000Z", "2026-10-07T00:00:00.000Z", "2026-10-08T00:00:00.000Z"
    )


def test_a_build_is_followed_until_it_has_a_finish_time_and_a_status_that_is_not_a_running_one():
    # A final status without a finish time has not finished yet; `approved` (docs/api-notes.md 8.7), a status that may
    # end a build or not, is judged by the finish time.
    cursor = make_cursor(follow_hours=24 * 365)
    first, second = cursor.stream_slices()
    builds = [
        build("2026-10-09T00:00:00.000Z", "success", finished=None),
        build("2026-10-08T00:00:00.000Z", "approved", finished="2026-10-08T01:00:00.000Z"),
        build("2026-10-07T00:00:00.000Z", "approved", finished=None),
        build("2026-10-06T00:00:00.000Z"),
    ]
    listed(cursor, second, builds)
    cursor.close_partition(Window(first))
    cursor.close_partition(Window(second))
    assert cursor.state == builds_state(
        "2026-10-09T00:00:00.000Z", "2026-10-07T00:00:00.000Z", "2026-10-09T00:00:00.000Z"
    )


def test_a_checkpoint_never_moves_past_a_window_not_read_yet():
    cursor = make_cursor(follow_hours=24 * 365)
    first, second = cursor.stream_slices()
    listed(cursor, second, [build("2026-10-09T00:00:00.000Z")])
    cursor.close_partition(Window(second))  # the newer window first: the older one is still being read
    assert cursor.state == builds_state("2025-12-31T23:59:59.999Z"), "nothing read without a gap yet"
    listed(cursor, first, [build("2026-03-01T00:00:00.000Z", "running")])
    cursor.close_partition(Window(first))
    assert cursor.state == builds_state("2026-10-09T00:00:00.000Z", "2026-03-01T00:00:00.000Z")


def test_the_next_sync_reads_unfinished_and_new_builds_only():
    state = builds_state("2026-10-09T00:00:00.000Z", ("2026-10-07T00:00:00.000Z", "2026-10-08T00:00:00.000Z"))
    cursor = make_cursor(state)
    (window,) = cursor.stream_slices()
    assert window.cursor_slice["start_time"] == "2026-10-07T00:00:00.000Z"
    builds = [
        build("2026-10-09T12:00:00.000Z"),
        build("2026-10-09T00:00:00.000Z"),
        build("2026-10-08T12:00:00.000Z"),
        build("2026-10-08T00:00:00.000Z", "running"),
        build("2026-10-07T12:00:00.000Z"),
        build("2026-10-07T00:00:00.000Z"),
    ]
    kept = listed(cursor, window, builds)
    assert kept == [
        "2026-10-09T12:00:00.000Z",
        "2026-10-08T00:00:00.000Z",
        "2026-10-07T12:00:00.000Z",
        "2026-10-07T00:00:00.000Z",
    ]
    cursor.close_partition(Window(window))
    assert cursor.state == builds_state("2026-10-09T12:00:00.000Z", "2026-10-08T00:00:00.000Z")


def test_a_sync_that_reads_nothing_keeps_the_state():
    state = builds_state("2026-10-09T00:00:00.000Z", "2026-10-08T00:00:00.000Z")
    cursor = make_cursor(state)
    (window,) = cursor.stream_slices()
    assert cursor.state == state, "a checkpoint before the window is read keeps the unfinished range"
    listed(cursor, window, [build("2026-10-08T00:00:00.000Z", "running")])
    cursor.close_partition(Window(window))
    assert cursor.state == state


def test_an_unfinished_build_is_followed_for_follow_hours_after_the_newest_build(caplog):
    state = builds_state("2026-10-09T00:00:00.000Z", "2026-10-06T00:00:00.000Z")
    cursor = make_cursor(state, follow_hours=72)
    (window,) = cursor.stream_slices()
    assert window.cursor_slice["start_time"] == "2026-10-06T00:00:00.000Z"
    listed(cursor, window, [build("2026-10-09T01:00:00.000Z"), build("2026-10-06T00:00:00.000Z", "pending-approval")])
    cursor.close_partition(Window(window))
    assert cursor.state["unfinished"] == [], "more than 72 hours before the newest build: no longer followed"
    assert any("2026-10-06T00:00:00.000Z" in line and "no longer read again" in line for line in caplog.messages)

    still = make_cursor(state, follow_hours=80)
    (window,) = still.stream_slices()
    listed(still, window, [build("2026-10-09T01:00:00.000Z"), build("2026-10-06T00:00:00.000Z", "pending-approval")])
    still.close_partition(Window(window))
    assert still.state["unfinished"] == [["2026-10-06T00:00:00.000Z", "2026-10-06T00:00:00.000Z"]]


@pytest.mark.parametrize("stream, cursor_field", [("builds", "created"), ("build_steps", "build_created")])
def test_a_build_without_a_creation_time_is_kept_with_one_warning_per_stream(caplog, stream, cursor_field):
    cursor = make_cursor(stream=stream, cursor_field=cursor_field)
    first, _ = cursor.stream_slices()
    undated = [{"id": "b1", "status": "running"}, {"id": "b2", "created": None, "status": "success"}]
    kept = [b["id"] for b in undated if cursor.should_be_synced(Record(b, stream, associated_slice=first))]
    assert kept == ["b1", "b2"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    # The listed build's field is named, whatever the stream's cursor field is called.
    assert warnings == [
        f"Could not find cursor field `created` in record for stream {stream}. The incremental sync will assume it "
        "needs to be synced"
    ]


# --- the same cursor for other records: GitOps releases, promotions, workflows (manifest `follow_*` parameters) -------

WORKFLOWS = FinishedRule.declared(
    "gitops_workflows", {"time": "status.finishedAt", "status": "status.phase", "running": ["Running", "Pending"]}
)
PROMOTIONS = FinishedRule.declared("gitops_promotions", {"status": "status", "final": ["SUCCEEDED", "FAILED"]})


def workflow(created: str, phase: str, finished: Optional[str] = None) -> Dict[str, Any]:
    return {"metadata": {"uid": created, "created": created}, "status": {"phase": phase, "finishedAt": finished}}


def test_a_declared_rule_reads_nested_fields_and_either_running_or_final_statuses():
    assert WORKFLOWS(workflow("t", "Succeeded", ENDED_AT)) and WORKFLOWS(workflow("t", "Unknown", ENDED_AT))
    assert not WORKFLOWS(workflow("t", "Running", ENDED_AT)) and not WORKFLOWS(workflow("t", "Succeeded"))
    assert not WORKFLOWS({"metadata": {}})
    # Without an end time, only a final status ends a promotion: one not known yet is followed.
    assert PROMOTIONS({"status": "FAILED"}) and not PROMOTIONS({"status": "SUSPENDED"})
    assert not PROMOTIONS({"status": "ARCHIVED"}) and not PROMOTIONS({})
    with pytest.raises(ValueError, match="gitops_releases"):
        FinishedRule.declared("gitops_releases", {"time": "application.status.syncFinishedAt"})


def test_the_cursor_follows_records_by_their_declared_creation_path_and_finished_rule(caplog):
    state = {"created": "2026-10-09T00:00:00.000Z", "unfinished": [["2026-10-05T00:00:00.000Z"] * 2]}
    cursor = make_cursor(
        state,
        follow_hours=720,
        stream="gitops_workflows",
        created_path="metadata.created",
        finished=WORKFLOWS,
        records=("workflows", "workflow"),
        follow_setting="the GitOps limit",
    )
    (window,) = cursor.stream_slices()
    assert window.cursor_slice["start_time"] == "2026-10-05T00:00:00.000Z"
    listing = [
        workflow("2026-10-09T02:00:00.000Z", "Running"),  # new, running
        workflow("2026-10-09T01:00:00.000Z", "Succeeded", ENDED_AT),  # new, finished
        workflow("2026-10-08T00:00:00.000Z", "Running"),  # read before: was finished then (not followed)
        workflow("2026-10-05T00:00:00.000Z", "Failed", ENDED_AT),  # followed, now finished
    ]
    kept = [
        w["metadata"]["uid"]
        for w in listing
        if cursor.should_be_synced(Record(data=w, stream_name="gitops_workflows", associated_slice=window))
    ]
    assert kept == ["2026-10-09T02:00:00.000Z", "2026-10-09T01:00:00.000Z", "2026-10-05T00:00:00.000Z"]
    cursor.close_partition(Window(window))
    assert cursor.state == {
        "created": "2026-10-09T02:00:00.000Z",
        "unfinished": [["2026-10-09T02:00:00.000Z", "2026-10-09T02:00:00.000Z"]],
    }
    # A record unfinished for longer than follow_hours is dropped with a line naming the records and the limit.
    later = make_cursor(
        {"created": "2026-10-20T00:00:00.000Z", "unfinished": [["2026-10-09T02:00:00.000Z"] * 2]},
        stream="gitops_workflows",
        created_path="metadata.created",
        finished=WORKFLOWS,
        records=("workflows", "workflow"),
        follow_setting="the GitOps limit",
    )
    assert later.state["unfinished"] == []
    assert any(
        line.startswith("Stream 'gitops_workflows': workflows created between 2026-10-09T02:00:00.000Z")
        and "(the GitOps limit) after the newest workflow" in line
        for line in caplog.messages
    )
