"""Analytics report rows: each report read in the windows its own metadata allows.

Codefresh's analytics reports accept a date range only between a minimum and a maximum length that depend on the
report and the granularity (`supportedTimeDimensions[].minDateRangeInterval` / `maxDateRangeInterval` of
`GET /analytics/metadata`; e.g. activeCommitters: month, 3 months to 1 year; credit reports: day, 2 to 45 days).
A window outside those bounds is rejected, so one global step cannot serve every report. Here each report's slice
(the stream's incremental cursor gives one per report: from the state or the start, to today) is cut into windows:

- aligned to the granularity's buckets (whole weeks from Monday, whole months), so that no bucket's row is read in
  two parts whose later half would overwrite the whole under the primary key;
- as long as the maximum allows, measured inclusively (the last day counts), and at least the minimum, measured
  exclusively (last day minus first day): a window that fits both readings of the documented bounds;
- a last window shorter than the minimum is extended backwards to it rather than sent too short (which would be
  rejected and leave a gap), and the rows it reads again are not emitted twice.

The intervals may be numbers (days) or strings: `"45 days"`, `"3 months"`, `"1 year"`, ISO-8601 `"P45D"`, ... A
report without the configured granularity is skipped with one line, without a request; bounds that cannot be read
fall back to the strictest documented ones.
"""

from __future__ import annotations

import logging
import re
from calendar import monthrange
from dataclasses import InitVar, dataclass
from datetime import date, datetime, timedelta
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from airbyte_cdk.sources.declarative.extractors.http_selector import HttpSelector
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice

logger = logging.getLogger("airbyte")

GRANULARITIES = ("day", "week", "month")


# --- intervals ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A calendar interval: whole months, then days (a year is 12 months, a week 7 days)."""

    months: int = 0
    days: int = 0

    def after(self, day: date) -> date:
        """The day this interval after `day` (months by the calendar, clamped to the month's last day)."""
        month_index = day.year * 12 + day.month - 1 + self.months
        year, month = divmod(month_index, 12)
        month += 1
        moved = date(year, month, min(day.day, monthrange(year, month)[1]))
        return moved + timedelta(days=self.days)

    def __str__(self) -> str:
        parts = ([f"{self.months} month{'s' * (self.months != 1)}"] if self.months else []) + (
            [f"{self.days} day{'s' * (self.days != 1)}"] if self.days or not self.months else []
        )
        return " ".join(parts)


_UNITS = {
    "d": (0, 1),
    "day": (0, 1),
    "days": (0, 1),
    "w": (0, 7),
    "week": (0, 7),
    "weeks": (0, 7),
    "mo": (1, 0),
    "mon": (1, 0),
    "mons": (1, 0),
    "month": (1, 0),
    "months": (1, 0),
    "y": (12, 0),
    "yr": (12, 0),
    "yrs": (12, 0),
    "year": (12, 0),
    "years": (12, 0),
}
_WORDS = re.compile(r"(\d+)\s*([a-z]+)")
_ISO = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
_DAY_SECONDS = 86_400


def parse_interval(value: Any) -> Optional[Interval]:
    """An interval of the analytics metadata, whatever its form; None when it cannot be read.

    Numbers (or numeric strings) are days up to 3660, else seconds (a day is 86,400) or milliseconds (from
    86,400,000); words (`"45 days"`, `"1 year 2 mons"`) and ISO-8601 durations (`"P3M"`, `"P1Y"`, `"P2W"`) are read
    by the calendar."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_number(float(value))
    text = str(value).strip().lower()
    if not text:
        return None
    try:
        return _from_number(float(text))
    except ValueError:
        pass
    iso = _ISO.match(text.upper())
    if iso and any(iso.groups()):
        years, months, weeks, days = (int(group or 0) for group in iso.groups())
        return Interval(months=12 * years + months, days=7 * weeks + days)
    months = days = 0
    consumed = ""
    for amount, unit in _WORDS.findall(text):
        if unit not in _UNITS:
            return None
        unit_months, unit_days = _UNITS[unit]
        months += int(amount) * unit_months
        days += int(amount) * unit_days
        consumed += amount + unit
    if not consumed or consumed != re.sub(r"[\s,]", "", text):
        return None
    return Interval(months=months, days=days)


def _from_number(number: float) -> Optional[Interval]:
    if number < 0:
        return None
    if number <= 3660:
        return Interval(days=round(number))
    if _DAY_SECONDS <= number < _DAY_SECONDS * 1000:
        return Interval(days=round(number / _DAY_SECONDS))
    if number >= _DAY_SECONDS * 1000:
        return Interval(days=round(number / (_DAY_SECONDS * 1000)))
    return None


# The strictest documented bounds per granularity (largest minimum, smallest maximum), for a report whose metadata
# cannot be read: KB retrieve-usage-data-api (credits day 2-45 days, activeCommitters month 3-12 months) and the
# analytics API draft (build reports: day up to 3 months, week and month up to 6 months).
FALLBACK_BOUNDS: Dict[str, Tuple[Interval, Interval]] = {
    "day": (Interval(days=2), Interval(days=45)),
    "week": (Interval(days=7), Interval(months=3)),
    "month": (Interval(months=3), Interval(months=6)),
}


def bounds_for(dimensions: Any, granularity: str) -> Tuple[Optional[Tuple[Interval, Interval]], str]:
    """(minimum, maximum) of the report's range at `granularity`, and a note for the log (empty when all is read).

    None: the report lists its time dimensions and `granularity` is not among them."""
    if not isinstance(dimensions, list) or not dimensions:
        return FALLBACK_BOUNDS[granularity], "its metadata lists no time dimensions"
    entry = next(
        (d for d in dimensions if isinstance(d, Mapping) and str(d.get("granularity") or "").lower() == granularity),
        None,
    )
    if entry is None:
        return None, ""
    fallback_min, fallback_max = FALLBACK_BOUNDS[granularity]
    low, high = parse_interval(entry.get("minDateRangeInterval")), parse_interval(entry.get("maxDateRangeInterval"))
    note = ""
    if low is None or high is None:
        unread = {
            "minDateRangeInterval": entry.get("minDateRangeInterval"),
            "maxDateRangeInterval": entry.get("maxDateRangeInterval"),
        }
        note = f"its range bounds {unread} could not be read"
    return (low or fallback_min, high or fallback_max), note


# --- windows ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """One request: the days `first`..`last` (both included); rows before `emit_from` were emitted already."""

    first: date
    last: date
    emit_from: date


def bucket_start(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def next_bucket(start: date, granularity: str) -> date:
    if granularity == "week":
        return start + timedelta(days=7)
    if granularity == "month":
        return Interval(months=1).after(start)
    return start + timedelta(days=1)


def previous_bucket(start: date, granularity: str) -> date:
    if granularity == "week":
        return start - timedelta(days=7)
    if granularity == "month":
        return Interval(months=-1).after(start)
    return start - timedelta(days=1)


def fits_maximum(first: date, last: date, maximum: Interval) -> bool:
    """The days first..last, both counted, span at most `maximum`."""
    return last < maximum.after(first)


def fits_minimum(first: date, last: date, minimum: Interval) -> bool:
    """last - first is at least `minimum` (the stricter reading: the first day itself does not count)."""
    return last >= minimum.after(first)


def report_windows(
    start: date,
    end: date,
    granularity: str,
    minimum: Interval,
    maximum: Interval,
    earliest: Optional[date] = None,
) -> List[Window]:
    """The windows that read the days start..end of one report at `granularity` (see the module docstring).

    `start` is moved back to the start of its bucket (the state's last bucket is read again: it was still running),
    unless that is before `earliest` (how far back the API answers): then on to the next bucket."""
    first = bucket_start(start, granularity)
    if earliest is not None and first < earliest:
        first = first if first == start else next_bucket(first, granularity)
    windows: List[Window] = []
    bucket = first
    while bucket <= end:
        window_first = bucket
        last = min(next_bucket(bucket, granularity) - timedelta(days=1), end)
        while True:
            following = next_bucket(bucket, granularity)
            if following > end:
                break
            candidate = min(next_bucket(following, granularity) - timedelta(days=1), end)
            if not fits_maximum(window_first, candidate, maximum):
                break
            bucket, last = following, candidate
        windows.append(Window(window_first, last, window_first))
        bucket = next_bucket(bucket, granularity)
    return [_at_least_minimum(w, granularity, minimum, maximum) for w in windows]


def _at_least_minimum(window: Window, granularity: str, minimum: Interval, maximum: Interval) -> Window:
    """A window shorter than the minimum, extended backwards bucket by bucket until it is not."""
    first = window.first
    while not fits_minimum(first, window.last, minimum):
        earlier = previous_bucket(first, granularity)
        if not fits_maximum(earlier, window.last, maximum):
            break
        first = earlier
    return Window(first, window.last, window.emit_from)


# --- the retriever ------------------------------------------------------------------------------------------------


@dataclass
class AnalyticsRowsRetriever(Retriever):
    """analytics_reports: the rows of one report's slice, read in the windows its metadata allows.

    A stream slice is one report (partition `parent_id`, with the report's `supportedTimeDimensions` as an extra
    field) and one date interval of the stream's cursor. Each window is sent through `requester` with the window in
    the slice's extra fields (`window_first`, `window_last`, `window_time`: the manifest builds `dateRange` and the
    default `time` from them), under the one error policy: a window without data (500 "Could not get analytics
    report") or one the report rejects (400) is skipped with one line and the next window is read.

    Rows that share `time` and `key` within one answer (a report that sends several rows per bucket without a `key`)
    get `#2`, `#3`, ... appended to `key`, in the order of the answer, so that every row stays distinct under the
    primary key (reportName, time, key)."""

    requester: Requester
    record_selector: HttpSelector
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    granularity: str = "day"
    earliest_day: Optional[str] = None
    name: str = ""
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        value = InterpolatedString.create(str(self.granularity), parameters=parameters).eval(self.config)
        self._granularity = str(value or "day").lower()
        earliest = (
            InterpolatedString.create(str(self.earliest_day), parameters=parameters).eval(self.config)
            if self.earliest_day
            else None
        )
        self._earliest = _parse_day(earliest) if earliest else None

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        if stream_slice is None or self._granularity not in GRANULARITIES:
            return
        report = str(stream_slice.partition.get("parent_id"))
        dimensions = (stream_slice.extra_fields or {}).get("supportedTimeDimensions")
        bounds, note = bounds_for(dimensions, self._granularity)
        if bounds is None:
            # Only the granularities analytics_granularity can be set to (not `hour`, nor the report's aggregate).
            listed = {str(d.get("granularity") or "").lower() for d in dimensions or [] if isinstance(d, Mapping)}
            settable = [g for g in GRANULARITIES if g in listed]
            advice = (
                f"set analytics_granularity to one it supports ({', '.join(settable)}), or leave it out of "
                "the analytics_reports setting"
                if settable
                else f"it supports none of {', '.join(GRANULARITIES)}: leave it out of the analytics_reports setting"
            )
            logger.info(
                f"Skipping report '{report}' in stream '{self.name}': it does not support granularity "
                f"'{self._granularity}'; {advice}."
            )
            return
        if note:
            logger.info(
                f"Report '{report}': {note}; reading it in windows of {bounds[0]} to {bounds[1]} (the strictest "
                "documented bounds)."
            )
        start = _parse_day(stream_slice.cursor_slice.get("start_time"))
        end = _parse_day(stream_slice.cursor_slice.get("end_time"))
        if start is None or end is None:
            return
        for window in report_windows(start, end, self._granularity, bounds[0], bounds[1], self._earliest):
            yield from self._read_window(records_schema, stream_slice, window)

    def _read_window(
        self, records_schema: Mapping[str, Any], stream_slice: StreamSlice, window: Window
    ) -> Iterable[StreamData]:
        window_slice = StreamSlice(
            partition=stream_slice.partition,
            cursor_slice=stream_slice.cursor_slice,
            extra_fields={
                **(stream_slice.extra_fields or {}),
                "window_first": window.first.isoformat(),
                "window_last": window.last.isoformat(),
                # The `time` of a row that has none (an aggregate over the window): the window's first new day.
                "window_time": f"{window.emit_from.isoformat()}T00:00:00.000Z",
            },
        )
        response = self.requester.send_request(stream_slice=window_slice)
        if not response:  # None or not 2xx: skipped by the error policy (no data, rejected), already logged
            return
        emit_from = window.emit_from.isoformat()
        seen: Dict[Tuple[str, str], int] = {}
        for record in self.record_selector.select_records(
            response=response, stream_state={}, records_schema=records_schema, stream_slice=window_slice
        ):
            row = dict(record.data if isinstance(record, Record) else record)
            day = str(row.get("time") or "")[:10]
            if day and day < emit_from:
                continue  # read again only to make the window long enough
            identity = (str(row.get("time")), str(row.get("key")))
            seen[identity] = seen.get(identity, 0) + 1
            if seen[identity] > 1:
                row["key"] = f"{row.get('key')}#{seen[identity]}"
            yield row


def _parse_day(value: Union[str, date, None]) -> Optional[date]:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
        except ValueError:
            return None
