"""Incremental state: where a sync starts, which builds it reads again, and one sentence for a state it cannot read.

- `CursorStartsAfterState` (projects, pipelines, images, audit): a sync starts just after the newest record
  already emitted.
- `FollowsUnfinishedBuildsState` and `FollowsUnfinishedBuildsCursor` (builds, build_details, build_steps, build_logs):
  the state keeps the newest build creation time read and where the builds that had not finished when read were
  created (`build_finished`, the one definition of a finished build), so the next sync reads those builds again and
  what is new, and nothing else. The GitOps releases, promotions, workflows and workflow nodes use the same cursor:
  their manifest's cursor `$parameters` say where a listed record's creation time is (`follow_created`) and when it
  has finished (`follow_finished`, a `FinishedRule`).
- `ReadableState` (analytics_reports): only checks that the saved state can be read.
- `StartedRunsCursor` (pipeline_runs): the builds a sync started and has not emitted yet, saved before they are
  watched, so that a retried attempt follows them instead of starting others.

Why the cursor is Python: the CDK turns a manifest's `DatetimeBasedCursor` into a `ConcurrentCursor` whose state is
the greatest cursor value read (`{"created": <newest>}`), which cannot say "an older build is still running". A
`CustomIncrementalSync` cannot say it either in this CDK (7.39.1): the concurrent factory only builds cursors for
`DatetimeBasedCursor` and `IncrementingCountCursor` and rejects any other type. So the manifest declares a
`DatetimeBasedCursor` (windows, request options, start date, formats, client-side filtering) and marks it with
`$parameters.follow_hours`; `ComponentFactory` builds the CDK's own cursor for it, which cuts the windows, and wraps
it in `FollowsUnfinishedBuildsCursor`, which keeps the state and filters the records.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import InitVar, dataclass
from datetime import datetime, timedelta, timezone
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterable,
    List,
    Mapping,
    MutableMapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
    cast,
)

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.declarative.models.declarative_component_schema import (
    DatetimeBasedCursor as DatetimeBasedCursorModel,
)
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory
from airbyte_cdk.sources.message import MessageRepository
from airbyte_cdk.sources.streams.concurrent.cursor import ConcurrentCursor, Cursor, CursorField, FinalStateCursor
from airbyte_cdk.sources.streams.concurrent.partitions.partition import Partition
from airbyte_cdk.sources.types import Config, Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

LOGGER = logging.getLogger("airbyte")

UNFINISHED_KEY = "unfinished"
# The creation time of a listed build (GET /workflow), which the record filter reads whatever the stream's cursor
# field is called (`build_created` for build_steps).
LISTED_BUILD_CREATED = "created"
# At most this many [first, last] ranges of unfinished builds are kept; more are merged across their smallest gaps.
# A merged range keeps the exact creation times of its unfinished builds, up to MAX_FOLLOWED_BUILDS in all, so the
# next sync re-emits just those builds however far apart they are; past that, the ranges holding the most of them
# keep only their bounds (every build inside is read again). The state stays under about 4 kB whatever the account.
MAX_UNFINISHED_RANGES = 10
MAX_FOLLOWED_BUILDS = 256
MILLISECOND = timedelta(milliseconds=1)
# A saved cursor value outside [EARLIEST_STATE, now + FUTURE_STATE_SLACK] is no position a sync can start from: before
# 1970 breaks the date arithmetic, and a date in the future would make every later sync read nothing, silently. The
# slack allows for a clock that differs from Codefresh's.
EARLIEST_STATE = datetime(1970, 1, 1, tzinfo=timezone.utc)
FUTURE_STATE_SLACK = timedelta(days=1)


# ---------------------------------------------------------------------------------------------------------------------
# Reading saved states
# ---------------------------------------------------------------------------------------------------------------------


def parse_iso(value: Any) -> Optional[datetime]:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_iso_ms(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_cursor_value(value: Any, datetime_format: str) -> Optional[datetime]:
    """A saved cursor value as a datetime: ISO-8601 text, or for `%ms` epoch milliseconds (a number or digits) or
    ISO-8601 text (the audit state of Airbyte's Connector Builder connector, 0.0.x)."""
    if datetime_format == "%ms":
        if isinstance(value, bool):
            return None
        try:
            return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
        except (TypeError, ValueError, OverflowError, OSError):
            return parse_iso(value)
    return parse_iso(value)


def unreadable_state(stream: str, what: str) -> AirbyteTracedException:
    message = (
        f"The saved state of stream '{stream}' cannot be read ({what}): reset that stream in Airbyte (Clear data), "
        "and its next sync reads it again from start_date."
    )
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_cursor_value(stream: str, state_key: str, value: Any, datetime_format: str) -> datetime:
    parsed = parse_cursor_value(value, datetime_format)
    if parsed is None:
        kind = "epoch milliseconds" if datetime_format == "%ms" else "an ISO-8601 date-time"
        raise unreadable_state(stream, f"'{state_key}' is {_describe(value)}, not {kind}")
    if parsed < EARLIEST_STATE:
        raise unreadable_state(stream, f"'{state_key}' is {_describe(value)}, before 1970")
    if parsed > datetime.now(timezone.utc) + FUTURE_STATE_SLACK:
        raise unreadable_state(
            stream, f"'{state_key}' is {_describe(value)}, in the future, so a sync from it would read nothing"
        )
    return parsed


def check_state(stream: str, state: Mapping[str, Any], cursor_field: str, datetime_format: str) -> None:
    """Raises the one-sentence error for a state whose cursor values cannot be read; any readable shape passes:
    `{cursor: value}`, the CDK's `{"state_type": "date-range", "slices": [...]}`, and the per-partition
    `{"states": [{"partition": ..., "cursor": {...}}], "state": {...}}`."""
    if not isinstance(state, Mapping):
        raise unreadable_state(stream, f"it is {_describe(state)}, not an object")
    if cursor_field in state:
        check_cursor_value(stream, cursor_field, state[cursor_field], datetime_format)
    if state.get("state_type") is not None:
        slices = state.get("slices")
        if state.get("state_type") not in ("date-range", "integer") or not isinstance(slices, list):
            raise unreadable_state(
                stream, f"'state_type' {_describe(state.get('state_type'))} without a list of slices"
            )
        for number, interval in enumerate(slices, start=1):
            for key in ("start", "end", "most_recent_cursor_value"):
                if not isinstance(interval, Mapping) or (key != "most_recent_cursor_value" and key not in interval):
                    raise unreadable_state(stream, f"slice {number} has no '{key}'")
                if interval.get(key) is not None:
                    check_cursor_value(stream, f"slices[{number - 1}].{key}", interval[key], datetime_format)
    if "states" in state:
        partitions = state["states"]
        if not isinstance(partitions, list):
            raise unreadable_state(stream, "'states' is not a list")
        for number, partition in enumerate(partitions, start=1):
            cursor = partition.get("cursor") if isinstance(partition, Mapping) else None
            if not isinstance(cursor, Mapping):
                raise unreadable_state(stream, f"partition {number} has no cursor")
            if cursor_field in cursor:
                check_cursor_value(
                    stream, f"states[{number - 1}].cursor.{cursor_field}", cursor[cursor_field], datetime_format
                )
    if isinstance(state.get("state"), Mapping) and cursor_field in state["state"]:
        check_cursor_value(stream, f"state.{cursor_field}", state["state"][cursor_field], datetime_format)


def _interpolated(value: Any, parameters: Mapping[str, Any], config: Config) -> Any:
    return InterpolatedString.create(str(value), parameters=parameters).eval(config)


@dataclass
class ReadableState(StateMigration):
    """Changes nothing; a state whose cursor values cannot be read fails the sync with one sentence instead of the
    CDK's "Something went wrong in the connector"."""

    cursor_field: str
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    datetime_format: str = "iso"
    stream: str = "{{ parameters.name }}"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # Custom components get their fields uninterpolated.
        self.cursor_field = _interpolated(self.cursor_field, parameters, self.config)
        self.datetime_format = _interpolated(self.datetime_format, parameters, self.config)
        self.stream = _interpolated(self.stream, parameters, self.config)

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        if stream_state:
            check_state(self.stream, stream_state, self.cursor_field, self.datetime_format)
        return False

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        return stream_state


@dataclass
class CursorStartsAfterState(ReadableState):
    """Starts a sync one unit after the state's cursor value, so the record that set it is not emitted again.

    The state holds the cursor value of the newest record emitted so far; the CDK starts the next sync *at* that value
    and the API's time filters are inclusive, so that record would come back in every sync. Moving the start by the
    cursor's unit (1 ms for Codefresh timestamps) excludes exactly that record and nothing newer: Codefresh timestamps
    have millisecond precision. A sync that finds nothing new keeps the moved value, which only ever moves the start
    by 1 ms per empty sync, far less than the time between two syncs.
    """

    unit_milliseconds: Union[int, str] = 1

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        if not stream_state:
            return False
        check_state(self.stream, stream_state, self.cursor_field, self.datetime_format)
        return self.cursor_field in stream_state and "state_type" not in stream_state

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        value = stream_state[self.cursor_field]
        moved: MutableMapping[str, Any] = dict(stream_state)
        moved[self.cursor_field] = _shift_cursor_value(value, self.datetime_format, int(self.unit_milliseconds))
        return moved


def _shift_cursor_value(value: Any, datetime_format: str, milliseconds: int) -> Any:
    if datetime_format == "%ms":
        parsed = parse_cursor_value(value, datetime_format)
        return value if parsed is None else round(parsed.timestamp() * 1000) + milliseconds
    parsed = parse_iso(str(value))
    if parsed is None:
        return value
    return format_iso_ms(parsed + timedelta(milliseconds=milliseconds))


# ---------------------------------------------------------------------------------------------------------------------
# Builds: the state that follows unfinished builds
# ---------------------------------------------------------------------------------------------------------------------

# The statuses of a build that is still going: the CLI's choices minus the SDK's end statuses (docs/api-notes.md,
# section 5). The end statuses are not all known (section 8.7: `denied`, maybe `approved`).
RUNNING_BUILD_STATUSES = frozenset({"pending", "elected", "running", "pending-approval", "delayed", "terminating"})


def build_finished(build: Mapping[str, Any]) -> bool:
    """Whether a build has finished: it has a `finished` time and a status that is not a running one.

    The one rule of the builds cursor (stop following a build), build_logs (read its archived log) and pipeline_runs
    (stop polling). Codefresh sets `finished` when a build ends (docs/api-notes.md, section 6), so a status not known
    yet is judged by it: with it the build has ended, without it the build may still run. A final status without it is
    not finished yet either: the record still lacks its end and the log its archive, so the build is read again."""
    return BUILD_FINISHED(build)


def dig(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a record (`metadata.created`), None where a step is missing."""
    value: Any = record
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


@dataclass(frozen=True)
class FinishedRule:
    """When a record the cursor follows has finished, declared per stream (`$parameters.follow_finished` of its
    DatetimeBasedCursor): its end time (`time`, a dotted path) is set, and its status (`status`) is not one of
    `running`, or, when `final` is given, is one of `final` (a stream whose records have no end time: a status not
    known yet is then followed, not taken as an end)."""

    status: str
    time: Optional[str] = None
    running: FrozenSet[str] = frozenset()
    final: Optional[FrozenSet[str]] = None

    def __call__(self, record: Mapping[str, Any]) -> bool:
        if self.time is not None and not dig(record, self.time):
            return False
        status = dig(record, self.status)
        return status in self.final if self.final is not None else status not in self.running

    @classmethod
    def declared(cls, stream: str, value: Any) -> "FinishedRule":
        """The rule of a manifest's `follow_finished: {status, time, running | final}`."""
        if not isinstance(value, Mapping) or not isinstance(value.get("status"), str):
            raise ValueError(f"Stream '{stream}': follow_finished needs a `status` path, got {value!r}")
        final = value.get("final")
        return cls(
            status=value["status"],
            time=value.get("time") or None,
            running=frozenset(value.get("running") or ()),
            final=None if final is None else frozenset(final),
        )


# Codefresh sets `finished` when a build ends; the running statuses are the CLI's choices minus the SDK's end ones.
BUILD_FINISHED = FinishedRule(status="status", time="finished", running=RUNNING_BUILD_STATUSES)


@dataclass
class FollowsUnfinishedBuildsState(StateMigration):
    """Every saved state of builds, build_details and build_steps, in the shape `FollowsUnfinishedBuildsCursor` reads:

        {"created": "<newest build created>", "unfinished": [["<first>", "<last>"], ...]}

    A state of the releases before it (`{"created": X}`, or the CDK's `{"state_type": "date-range", ...}`) meant
    "the next sync reads again the builds created in the last `lookback_hours` before X": that is the range
    [X - lookback, X] of builds that may still change, so the first sync after the upgrade reads what the old release
    would have, and the syncs after it only what can still change. A state without a cursor value (for example a
    full refresh's `{"__ab_no_cursor_state_message": true}`) is no state; a value that is not a date fails the sync
    with one sentence."""

    cursor_field: str
    lookback_hours: Union[int, str]
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    stream: str = "{{ parameters.name }}"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self.cursor_field = _interpolated(self.cursor_field, parameters, self.config)
        self.stream = _interpolated(self.stream, parameters, self.config)
        self._lookback = timedelta(hours=float(_interpolated(self.lookback_hours, parameters, self.config) or 0))

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        return bool(stream_state)

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        check_state(self.stream, stream_state, self.cursor_field, "iso")
        if UNFINISHED_KEY in stream_state:
            newest = parse_iso(stream_state.get(self.cursor_field))
            ranges = read_ranges(self.stream, stream_state[UNFINISHED_KEY])
            return state_value(self.cursor_field, newest, ranges)
        newest = self._newest_of_an_older_release(stream_state)
        if newest is None:
            return {}
        lookback = self._lookback
        return state_value(self.cursor_field, newest, [Followed(newest - lookback, newest)] if lookback else [])

    def _newest_of_an_older_release(self, stream_state: Mapping[str, Any]) -> Optional[datetime]:
        if stream_state.get("state_type") == "date-range":
            slices = stream_state.get("slices") or []
            if not slices:
                return None
            # The CDK reads the first (merged) slice: all before its end was synced. (check_state read every value.)
            first = min(
                slices, key=lambda interval: parse_iso(interval["start"]) or datetime.min.replace(tzinfo=timezone.utc)
            )
            return parse_iso(first.get("most_recent_cursor_value") or first["end"])
        return parse_iso(stream_state.get(self.cursor_field))


@dataclass(frozen=True)
class Followed:
    """Builds that were not finished when read, created between `first` and `last`. `points`: their exact creation
    times, when the state knows them; None stands for every build of the range."""

    first: datetime
    last: datetime
    points: Optional[FrozenSet[datetime]] = None

    @classmethod
    def build(cls, created: datetime) -> "Followed":
        return cls(created, created, frozenset({created}))

    def holds(self, created: datetime) -> bool:
        return self.first <= created <= self.last and (self.points is None or created in self.points)

    def join(self, other: "Followed") -> "Followed":
        points = None if self.points is None or other.points is None else self.points | other.points
        return Followed(min(self.first, other.first), max(self.last, other.last), points)

    def from_(self, start: datetime) -> Optional["Followed"]:
        """The part created at or after `start` (None when nothing is left)."""
        if self.last < start:
            return None
        if self.points is None:
            return Followed(max(self.first, start), self.last)
        points = frozenset(point for point in self.points if point >= start)
        return Followed(min(points), self.last, points) if points else None

    def to_state(self) -> List[Any]:
        bounds: List[Any] = [format_iso_ms(self.first), format_iso_ms(self.last)]
        if self.points is not None and self.first != self.last:
            bounds.append(sorted((point - self.first) // MILLISECOND for point in self.points))
        return bounds


def read_ranges(stream: str, value: Any) -> List[Followed]:
    """The `unfinished` list of a state: [first, last] (every build of the range), or [first, last, [ms, ...]] (the
    builds created that many milliseconds after `first`)."""
    if not isinstance(value, list):
        raise unreadable_state(stream, f"'{UNFINISHED_KEY}' is {_describe(value)}, not a list of [first, last] pairs")
    ranges: List[Followed] = []
    for number, item in enumerate(value):
        where = f"'{UNFINISHED_KEY}[{number}]'"
        if not isinstance(item, list) or len(item) not in (2, 3):
            raise unreadable_state(stream, f"{where} is {_describe(item)}, not [first, last]")
        first = check_cursor_value(stream, f"{UNFINISHED_KEY}[{number}][0]", item[0], "iso")
        last = check_cursor_value(stream, f"{UNFINISHED_KEY}[{number}][1]", item[1], "iso")
        offsets = item[2] if len(item) == 3 else None
        span = (last - first) // MILLISECOND
        if first > last or (
            offsets is not None
            and not (
                isinstance(offsets, list)
                and all(isinstance(o, int) and not isinstance(o, bool) and 0 <= o <= span for o in offsets)
            )
        ):
            raise unreadable_state(stream, f"{where} is {_describe(item)}, not [first, last]")
        if offsets is not None and offsets:
            ranges.append(Followed(first, last, frozenset(first + o * MILLISECOND for o in offsets)))
        else:
            ranges.append(Followed.build(first) if first == last else Followed(first, last))
    return ranges


def state_value(cursor_field: str, newest: Optional[datetime], ranges: Iterable[Followed]) -> Dict[str, Any]:
    state: Dict[str, Any] = {cursor_field: format_iso_ms(newest)} if newest is not None else {}
    state[UNFINISHED_KEY] = [followed.to_state() for followed in ranges]
    return state


def merge_ranges(
    ranges: Iterable[Followed], limit: int = MAX_UNFINISHED_RANGES, max_builds: int = MAX_FOLLOWED_BUILDS
) -> List[Followed]:
    """Sorted, overlapping ranges joined, then at most `limit` of them: the ranges separated by the smallest gaps are
    joined first (a joined range keeps the exact builds of its parts, so nothing is lost and nothing finished is read
    again). Past `max_builds` exact builds in all, the ranges holding the most keep only their bounds."""
    joined: List[Followed] = []
    for followed in sorted(ranges, key=lambda f: (f.first, f.last)):
        if joined and followed.first <= joined[-1].last + MILLISECOND:
            joined[-1] = joined[-1].join(followed)
        else:
            joined.append(followed)
    if len(joined) > limit:
        gaps = sorted(range(len(joined) - 1), key=lambda i: joined[i + 1].first - joined[i].last, reverse=True)
        cuts = set(gaps[: limit - 1])
        merged = [joined[0]]
        for index in range(1, len(joined)):
            if index - 1 in cuts:
                merged.append(joined[index])
            else:
                merged[-1] = merged[-1].join(joined[index])
        joined = merged
    exact = sorted(
        (index for index, f in enumerate(joined) if f.points is not None and f.first != f.last),
        key=lambda index: len(joined[index].points or ()),
    )
    count = sum(len(joined[index].points or ()) for index in exact)
    while count > max_builds and exact:
        index = exact.pop()  # the range holding the most exact builds reads every build inside it instead
        count -= len(joined[index].points or ())
        joined[index] = Followed(joined[index].first, joined[index].last)
    return joined


class _Window:
    """What one window's listing showed: its newest build and the creation times of its unfinished builds."""

    __slots__ = ("closed", "end", "newest", "start", "unfinished")

    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.closed = False
        self.newest: Optional[datetime] = None
        self.unfinished: List[datetime] = []


class FollowsUnfinishedBuildsCursor(Cursor):
    """The cursor of builds, build_details, build_steps and build_logs: the windows of build creation times that the
    CDK's own cursor cuts for the manifest's DatetimeBasedCursor, with a state that says which builds can still change.

    State: `{cursor: <newest build created that was read>, "unfinished": [[first, last], ...]}`: the ranges of creation
    times of the builds that had not finished when they were read (`build_finished`). A sync reads from the first
    unfinished range (or just after the newest build) to now, and keeps exactly the builds that are new (created after
    the newest one read) or inside an unfinished range; the others had finished when read and are left out before
    any per-build request is made. A range ends `follow_hours` after the newest build: a build unfinished for longer
    is no longer followed (one log line).

    The record filter sees every build of a window's listing (the builds stream's own records, or the listing that
    the per-build streams fan out from), so they all follow the builds the same way; it also keeps each build in
    exactly the window it was listed for, whatever part of its dates the server honoured. Checkpoints only cover the
    windows read without a gap from the start, and keep every range not read yet, so an interrupted sync never moves
    past an unfinished build."""

    def __init__(
        self,
        *,
        stream_name: str,
        cursor_field: str,
        stream_state: Mapping[str, Any],
        windows: Callable[[Mapping[str, Any]], ConcurrentCursor],
        window_fields: Tuple[str, str],
        follow_hours: float,
        message_repository: MessageRepository,
        state_manager: ConnectorStateManager,
        created_path: str = LISTED_BUILD_CREATED,
        finished: Callable[[Mapping[str, Any]], bool] = build_finished,
        records: Tuple[str, str] = ("builds", "build"),
        follow_setting: str = "builds_lookback_hours",
    ) -> None:
        self._stream = stream_name
        self._cursor_key = cursor_field
        self._created_path = created_path
        self._finished = finished
        self._records = records
        self._follow_setting = follow_setting
        self._window_fields = window_fields
        self._follow = timedelta(hours=follow_hours)
        self._repository = message_repository
        self._state_manager = state_manager
        self._lock = threading.Lock()
        self._warned_without_cursor_value = False
        self._reported_drops: Set[Tuple[datetime, datetime]] = set()
        # The windows of this sync in the order they were cut (dicts keep it), by their slice's bounds.
        self._windows: Dict[Tuple[Any, Any], _Window] = {}
        self._previous_newest = parse_iso(stream_state.get(cursor_field)) if stream_state else None
        ranges = read_ranges(stream_name, stream_state.get(UNFINISHED_KEY, [])) if stream_state else []
        self._previous_ranges = self._followed(ranges, self._previous_newest)
        starts = [followed.first for followed in self._previous_ranges]
        if self._previous_newest is not None:
            starts.append(self._previous_newest + MILLISECOND)
        # The CDK's cursor, given "synced until the first build to read": it cuts the windows from there, or from the
        # manifest's start_datetime when that is later (its `start`).
        self._cdk_cursor = windows({cursor_field: format_iso_ms(min(starts))} if starts else {})
        self._read_from = cast(datetime, self._cdk_cursor.start)

    @property
    def cursor_field(self) -> CursorField:
        return self._cdk_cursor.cursor_field

    def stream_slices(self) -> Iterable[StreamSlice]:
        for window in self._cdk_cursor.stream_slices():
            self._window(window)  # known from now on, in this order
            yield window

    # -- which builds a window keeps -------------------------------------------------------------------------------

    def should_be_synced(self, record: Record) -> bool:
        data = record.data
        created = parse_iso(dig(data, self._created_path))
        if created is None:
            self._warn_without_cursor_value()
            return True
        window = self._window(record.associated_slice)
        if window is not None and not window.start <= created <= window.end:
            return False  # another window's build (the server widened the dates to whole days)
        if (
            self._previous_newest is not None
            and created <= self._previous_newest
            and not any(followed.holds(created) for followed in self._previous_ranges)
        ):
            return False  # read before, and finished then
        if window is not None:
            if window.newest is None or created > window.newest:
                window.newest = created
            if not self._finished(data):
                window.unfinished.append(created)
        return True

    def observe(self, record: Record) -> None:
        """The state follows the listed builds (in `should_be_synced`), not the emitted records: a build without
        steps emits no build_steps record but is followed all the same."""

    def _warn_without_cursor_value(self) -> None:
        # The CDK's line for a record without a cursor value, once per stream, as its ConcurrentCursor logs it; it names
        # the listed build's field, not the stream's cursor field (build_steps' is build_created).
        if not self._warned_without_cursor_value:
            self._warned_without_cursor_value = True
            LOGGER.warning(
                f"Could not find cursor field `{self._created_path}` in record for stream {self._stream}. The "
                "incremental sync will assume it needs to be synced"
            )

    def _window(self, stream_slice: Any) -> Optional[_Window]:
        if not stream_slice:
            return None
        start_field, end_field = self._window_fields
        bounds = stream_slice.cursor_slice if hasattr(stream_slice, "cursor_slice") else stream_slice
        key = (bounds.get(start_field), bounds.get(end_field))
        window = self._windows.get(key)
        if window is None:
            start, end = parse_iso(key[0]), parse_iso(key[1])
            if start is None or end is None:
                return None
            window = self._windows.setdefault(key, _Window(start, end))
        return window

    # -- the state -------------------------------------------------------------------------------------------------

    def close_partition(self, partition: Partition) -> None:
        window = self._window(partition.to_slice())
        with self._lock:
            if window is not None:
                window.closed = True  # read: the state emitted now counts it
            self._emit()

    def ensure_at_least_one_state_emitted(self) -> None:
        with self._lock:
            self._emit()

    def _emit(self) -> None:
        self._state_manager.update_state_for_stream(self._stream, None, self.state)
        self._repository.emit_message(self._state_manager.create_state_message(self._stream, None))

    @property
    def state(self) -> MutableMapping[str, Any]:
        newest = self._previous_newest
        points: List[datetime] = []
        done_until: Optional[datetime] = None  # the end of the windows read without a gap from `read_from`
        for window in list(self._windows.values()):  # a copy: other windows may be added while this runs
            if not window.closed:
                break
            done_until = window.end
            if window.newest is not None and (newest is None or window.newest > newest):
                newest = window.newest
            points.extend(window.unfinished)
        ranges = [Followed.build(point) for point in points]
        for followed in self._previous_ranges:
            left = followed if done_until is None else followed.from_(done_until + MILLISECOND)
            if left is not None:  # not read again yet
                ranges.append(left)
        if newest is None:
            newest = self._read_from - MILLISECOND  # nothing read yet: the next sync starts where this one did
        return state_value(self._cursor_key, newest, self._followed(merge_ranges(ranges), newest))

    def _followed(self, ranges: Iterable[Followed], newest: Optional[datetime]) -> List[Followed]:
        """The ranges still followed: those ending less than `follow_hours` before the newest build."""
        kept: List[Followed] = []
        for followed in ranges:
            if newest is not None and followed.last < newest - self._follow:
                bounds = (followed.first, followed.last)
                if bounds not in self._reported_drops:
                    self._reported_drops.add(bounds)
                    plural, singular = self._records
                    LOGGER.info(
                        f"Stream '{self._stream}': {plural} created between {format_iso_ms(followed.first)} and "
                        f"{format_iso_ms(followed.last)} were still unfinished {self._follow.total_seconds() / 3600:g} "
                        f"hours ({self._follow_setting}) after the newest {singular}, and are no longer read again; a "
                        "full refresh reads their final state."
                    )
                continue
            kept.append(followed)
        return kept


# ---------------------------------------------------------------------------------------------------------------------
# Pipeline runs: the builds started and not emitted yet
# ---------------------------------------------------------------------------------------------------------------------

STARTED_KEY = "started"


@dataclass(frozen=True)
class StartedRun:
    """A run a sync started: its pipeline, the unique run id its build is annotated with, the build's id (None while
    the POST's answer was lost and no build carrying the run id was found yet) and when it was triggered."""

    pipeline: str
    run_id: str
    build_id: Optional[str]
    triggered_at: str

    def as_state(self) -> Dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "build_id": self.build_id,
            "triggered_at": self.triggered_at,
        }


def read_started_runs(stream: str, state: Mapping[str, Any]) -> Dict[str, StartedRun]:
    """The runs of a saved `{"started": {"<run index>": {...}}}` state; any other state (none, or the CDK's full
    refresh marker) holds none. A state that cannot be read fails with one sentence."""
    started = state.get(STARTED_KEY) if isinstance(state, Mapping) else None
    if started is None:
        return {}
    if not isinstance(started, Mapping):
        raise unreadable_state(stream, f"'{STARTED_KEY}' is {_describe(started)}, not an object")
    runs: Dict[str, StartedRun] = {}
    for index, run in started.items():
        fields = run if isinstance(run, Mapping) else {}
        values = [fields.get(key) for key in ("pipeline", "run_id", "triggered_at")]
        build_id = fields.get("build_id")
        if not all(isinstance(value, str) and value for value in values) or not isinstance(build_id, (str, type(None))):
            raise unreadable_state(stream, f"'{STARTED_KEY}.{index}' is {_describe(run)}, not a started run")
        runs[str(index)] = StartedRun(str(values[0]), str(values[1]), build_id, str(values[2]))
    return runs


class StartedRunsCursor(FinalStateCursor):
    """The state of pipeline_runs: `{"started": {"<run index>": {pipeline, run_id, build_id, triggered_at}}}` while a
    run the connector started has not been emitted, and the CDK's full refresh marker once none is open.

    Each change is emitted at once, from the run's own thread, before the build is watched: a retried attempt (Airbyte
    hands it the last state of the failed one) follows that build instead of starting another. A run's record is
    emitted before the state that closes it. The CDK's full refresh cursor would end every sync, failed or not, with
    its marker and so lose the open runs; this one ends with them."""

    def __init__(
        self,
        stream_name: str,
        message_repository: MessageRepository,
        stream_state: Mapping[str, Any],
        pipelines: Sequence[str],
    ) -> None:
        super().__init__(stream_name, None, message_repository)
        self._stream = stream_name
        self._repository = message_repository
        self._lock = threading.Lock()
        self._open: Dict[str, StartedRun] = {}
        for index, run in read_started_runs(stream_name, stream_state).items():
            configured = pipelines[int(index)] if index.isdigit() and int(index) < len(pipelines) else None
            if configured == run.pipeline:
                self._open[index] = run
            else:
                LOGGER.warning(
                    f"Stream '{stream_name}': build {run.build_id or '(not found yet)'} of pipeline '{run.pipeline}' "
                    f"(run id {run.run_id}), started by an earlier attempt, is no longer followed: pipeline_runs "
                    f"entry {int(index) + 1 if index.isdigit() else index} changed. Check that build in Codefresh."
                )

    @property
    def state(self) -> MutableMapping[str, Any]:
        with self._lock:
            if not self._open:
                return super().state
            return {STARTED_KEY: {index: run.as_state() for index, run in sorted(self._open.items())}}

    def open_run(self, index: int) -> Optional[StartedRun]:
        """The run of pipeline_runs entry `index` that an earlier attempt started and did not emit, if any."""
        with self._lock:
            return self._open.get(str(index))

    def started(self, index: int, run: StartedRun) -> None:
        with self._lock:
            self._open[str(index)] = run
        self._emit()

    def closed(self, index: int) -> None:
        with self._lock:
            self._open.pop(str(index), None)
        self._emit()

    def _emit(self) -> None:
        # A state manager of its own, as the CDK's FinalStateCursor keeps one: only to build the message.
        manager = ConnectorStateManager()
        manager.update_state_for_stream(self._stream, None, self.state)
        self._repository.emit_message(manager.create_state_message(self._stream, None))


class ComponentFactory(ModelToComponentFactory):
    """The CDK's factory, building the cursor of a stream whose DatetimeBasedCursor sets `$parameters.follow_hours`
    as a FollowsUnfinishedBuildsCursor, and that of a stream whose `$parameters.checkpoint` is `started_runs` as a
    StartedRunsCursor.

    `_build_concurrent_cursor` is where the CDK builds every stream's cursor (a private method, pinned in
    unit_tests/test_cdk_contract.py): the manifest can declare no cursor but the CDK's own (a CustomIncrementalSync is
    rejected by the concurrent factory of 7.39.1), and its full refresh cursor would end a failed pipeline_runs sync
    with a state that forgets the builds it started."""

    def __init__(self, connector_state_manager: ConnectorStateManager, **kwargs: Any) -> None:
        super().__init__(connector_state_manager=connector_state_manager, **kwargs)
        self._stream_states = connector_state_manager

    def _build_concurrent_cursor(self, model: Any, stream_slicer: Any, config: Config) -> Any:
        stream_state = self._stream_states.get_stream_state(model.name, None)
        if (model.parameters or {}).get("checkpoint") == "started_runs":
            pipelines = [
                str(run.get("pipeline") or "").strip() if isinstance(run, Mapping) else ""
                for run in config.get("pipeline_runs") or []
            ]
            return StartedRunsCursor(model.name, self.get_message_repository(), stream_state, pipelines)
        windows = model.incremental_sync
        parameters = getattr(windows, "parameters", None) or {}
        if parameters.get("follow_hours") is None:
            return super()._build_concurrent_cursor(model, stream_slicer, config)

        def cdk_cursor(state: Mapping[str, Any]) -> ConcurrentCursor:
            return self.create_concurrent_cursor_from_datetime_based_cursor(
                model_type=DatetimeBasedCursorModel,
                component_definition=dict(windows.__dict__),
                stream_name=model.name,
                stream_namespace=None,
                stream_state=dict(state),
                config=config,
            )

        return FollowsUnfinishedBuildsCursor(
            stream_name=model.name,
            cursor_field=str(_interpolated(windows.cursor_field, parameters, config)),
            stream_state=stream_state,
            windows=cdk_cursor,
            window_fields=(
                str(_interpolated(windows.partition_field_start, parameters, config)),
                str(_interpolated(windows.partition_field_end, parameters, config)),
            ),
            follow_hours=float(_interpolated(parameters["follow_hours"], parameters, config) or 0),
            message_repository=self.get_message_repository(),
            state_manager=self._stream_states,
            **_followed_records(model.name, parameters),
        )


def _followed_records(stream: str, parameters: Mapping[str, Any]) -> Dict[str, Any]:
    """What a stream's cursor $parameters say of the records it follows, besides builds (the defaults):
    `follow_created` (the dotted path of a listed record's creation time), `follow_finished` (a FinishedRule),
    `follow_records` ([plural, singular], for the log line of records no longer followed) and `follow_setting` (what
    sets `follow_hours`, named in that line)."""
    found: Dict[str, Any] = {}
    if parameters.get("follow_created"):
        found["created_path"] = str(parameters["follow_created"])
    if parameters.get("follow_finished") is not None:
        found["finished"] = FinishedRule.declared(stream, parameters["follow_finished"])
    if parameters.get("follow_records"):
        plural, singular = parameters["follow_records"]
        found["records"] = (str(plural), str(singular))
    if parameters.get("follow_setting"):
        found["follow_setting"] = str(parameters["follow_setting"])
    return found
