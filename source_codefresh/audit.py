"""The audit log (`GET /audit`): its time bounds in whichever form Codefresh reads, and windows split below the
documented 50,000-entry cap instead of truncated.

Three things about the list endpoint are not proven (FIDELITY 1.6, 1.7, section 2 audit):

- whether `from`/`to` are read as epoch milliseconds (the spec and Codefresh's own step, for /audit/download) or as
  ISO date-times (the only real caller of the list sent those and got records). A value in the other form is
  ignored (the filter matches everything) or rejected (400). So the connector asks, once per sync, which form
  filters: with `to` in the year 2000 the answer must be empty, with `from` in the year 2000 it must not be (when the
  log is not empty). Milliseconds are tried first. If neither form filters, every window reads the whole log and
  keeps its own entries, with a warning. Entries outside a window's bounds are dropped in any case, so an ignored
  or loosely read bound never emits an entry twice.
- whether a listing stops at 50,000 entries (the docs' cap). Before a window is read, one entry is asked for near
  position 50,000 (`page=49999&pageSize=1`, see below): if it exists the window reaches the cap and is split in
  two halves, each checked the same way, until every window holds fewer entries. A window of one minute that still
  reaches the cap is read anyway, with a warning that Codefresh may have left entries out.
- whether pages are numbered from 1 or from 0 (AB's tested read sent no `page` on its first request). The
  connector never sends page 0 and never depends on the numbering: a window's first page is asked for without
  `page` (the server's own first page under either numbering, as AB's read did), then pages 1, 2, 3 ... (the
  manifest's `page_with_page_size` paginator). Numbered from 0, page 1 is the second page; numbered from 1, it
  repeats the first page, and an entry the window already emitted is not emitted again: one extra request per
  window that holds more than one page, no question asked. The time-form questions ask for the first page the same
  way, and the cap question asks for page `cap - 1` of single entries: the cap-th entry when pages are numbered
  from 0, the one before it when from 1 (a window of exactly cap - 1 entries is then split without need, which
  loses nothing), never an entry past the cap, which a capped listing would never hold.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import InitVar, dataclass
from datetime import datetime, timezone
from typing import Any, Hashable, Iterable, List, Mapping, Optional, Set, Union

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.paging import ISSUE_TRACKER
from source_codefresh.responses import response_json
from source_codefresh.state import format_iso_ms, parse_iso

logger = logging.getLogger("airbyte")

MILLISECONDS = "ms"
ISO = "iso"
NO_FILTER = "none"
# 2000-01-01T00:00:00Z: no Codefresh audit entry is older.
_Y2000_MS = 946_684_800_000


def format_bound(epoch_ms: int, time_format: str) -> str:
    if time_format == ISO:
        return format_iso_ms(datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc))
    return str(epoch_ms)


def created_ms(entry: Mapping[str, Any]) -> Optional[int]:
    value = entry.get("createdAt")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    parsed = parse_iso(str(value)) if value else None
    return int(parsed.timestamp() * 1000) if parsed else None


@dataclass
class AuditLogRetriever(Retriever):
    """audit: each window of the stream's cursor (epoch milliseconds, both bounds included) read through
    `pages` with its bounds in the form Codefresh filters by, split while it reaches `entry_cap` entries.

    `pages` reads one window (page/pageSize) and takes the bounds from the slice's extra fields `audit_from` and
    `audit_to` (absent: no bound); `probe_requester` sends the single-entry questions (a 400 there means "not this
    form" and is skipped with one line). Both go through the one error policy and the scope gate."""

    pages: Retriever
    probe_requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    entry_cap: Union[int, str] = 50_000
    smallest_window_ms: Union[int, str] = 60_000
    name: str = ""
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._cap = int(InterpolatedString.create(str(self.entry_cap), parameters=parameters).eval(self.config))
        if self._cap < 2:
            raise ValueError(f"entry_cap must be at least 2, not {self._cap}")  # page `cap - 1` must not be page 0
        self._smallest = int(self.smallest_window_ms)
        self._format_lock = threading.Lock()
        self._format: Optional[str] = None
        self._format_known = False

    # -- reading -------------------------------------------------------------------------------------------------

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        if stream_slice is None:
            return
        start = int(stream_slice.cursor_slice["start_time"])
        end = int(stream_slice.cursor_slice["end_time"])
        time_format = self._time_format()
        if time_format is None:  # no answer at all: the stream was skipped (missing scope), already said
            return
        yield from self._read_window(records_schema, stream_slice, start, end, time_format)

    def _read_window(
        self, records_schema: Mapping[str, Any], stream_slice: StreamSlice, start: int, end: int, time_format: str
    ) -> Iterable[StreamData]:
        if self._reaches_cap(start, end, time_format):
            # Without a working time filter a smaller window lists the same entries: no use splitting.
            if time_format != NO_FILTER and end - start >= 2 * self._smallest:
                middle = start + (end - start) // 2
                logger.info(
                    f"Stream '{self.name}': the audit log holds {self._cap:,} entries or more between "
                    f"{_iso(start)} and {_iso(end)} (Codefresh lists at most {self._cap:,}); reading it in two halves."
                )
                yield from self._read_window(records_schema, stream_slice, start, middle, time_format)
                yield from self._read_window(records_schema, stream_slice, middle + 1, end, time_format)
                return
            logger.warning(
                f"Stream '{self.name}': the audit log holds {self._cap:,} entries or more between {_iso(start)} and "
                f"{_iso(end)}, too many to split further; Codefresh may list only {self._cap:,} of them."
            )
        window = self._window_slice(stream_slice, start, end, time_format)
        emitted: Set[Hashable] = set()  # the ids this window emitted: page 1 repeats the first page if numbered from 1
        for record in self.pages.read_records(records_schema, window):
            entry = record.data if isinstance(record, Record) else record
            if not isinstance(entry, Mapping):
                yield entry
                continue
            created = created_ms(entry)
            if created is not None and not start <= created <= end:
                continue  # outside this window: another window emits it (a bound read loosely, or no filter)
            entry_id = entry.get("id")
            if isinstance(entry_id, (int, str)):
                if entry_id in emitted:
                    continue
                emitted.add(entry_id)
            yield dict(entry)

    def _window_slice(self, stream_slice: StreamSlice, start: int, end: int, time_format: str) -> StreamSlice:
        bounds = (
            {}
            if time_format == NO_FILTER
            else {"audit_from": format_bound(start, time_format), "audit_to": format_bound(end, time_format)}
        )
        return StreamSlice(
            partition=stream_slice.partition,
            cursor_slice=stream_slice.cursor_slice,
            extra_fields={**(stream_slice.extra_fields or {}), **bounds},
        )

    def _reaches_cap(self, start: int, end: int, time_format: str) -> bool:
        bounds = (
            {}
            if time_format == NO_FILTER
            else {"from": format_bound(start, time_format), "to": format_bound(end, time_format)}
        )
        # Page `cap - 1` of single entries: the cap-th entry if pages are numbered from 0, the one before it if from 1.
        entries = self._probe(page=self._cap - 1, bounds=bounds)
        if not entries:
            return False
        # A server that ignores `page` answers the first entry here too: splitting would never end, and neither would
        # the listing (each page full, each a repeat of the first), so say so and stop.
        first = self._probe(bounds=bounds)
        first_id = first[0].get("id") if first and isinstance(first[0], Mapping) else None
        if first_id is not None and isinstance(entries[0], Mapping) and first_id == entries[0].get("id"):
            raise _ignores_paging(self.name, start, end)
        return True

    # -- which form filters ------------------------------------------------------------------------------------

    def _time_format(self) -> Optional[str]:
        with self._format_lock:
            if not self._format_known:
                self._format = self._detect_time_format()
                self._format_known = True
            return self._format

    def _detect_time_format(self) -> Optional[str]:
        answered = False
        for time_format in (MILLISECONDS, ISO):
            before_2000 = self._probe(bounds={"to": format_bound(_Y2000_MS, time_format)})
            answered = answered or before_2000 is not None
            if before_2000 is None or before_2000:
                continue  # rejected, or the bound was ignored (entries from before 2000)
            since_2000 = self._probe(bounds={"from": format_bound(_Y2000_MS, time_format)})
            if since_2000 is None:
                continue
            if since_2000 or not self._probe():  # filters; or the log is empty and any form does
                logger.info(f"Stream '{self.name}': Codefresh filters the audit log by {_FORMS[time_format]}.")
                return time_format
            # Nothing since 2000 although the log has entries: this form matches nothing.
        if not answered:
            return None
        logger.warning(
            f"Stream '{self.name}': Codefresh's audit log filters by neither epoch milliseconds nor ISO date-times, so "
            "every time window reads the whole log and keeps its own entries (slower; nothing is lost or doubled)."
        )
        return NO_FILTER

    def _probe(self, page: Optional[int] = None, bounds: Optional[Mapping[str, str]] = None) -> Optional[List[Any]]:
        """The entries of one single-entry page (without `page`: the first, whatever the numbering), or None when
        Codefresh did not answer it with a list."""
        response = self.probe_requester.send_request(
            stream_slice=StreamSlice(partition={}, cursor_slice={}),
            request_params={**({} if page is None else {"page": page}), "pageSize": 1, **(bounds or {})},
        )
        if not response:
            return None
        try:
            body = response_json(response)
        except ValueError:
            return None
        entries = body.get("data") if isinstance(body, dict) else None
        return entries if isinstance(entries, list) else None


_FORMS = {MILLISECONDS: "epoch milliseconds (from/to)", ISO: "ISO date-times (from/to)"}


def _iso(epoch_ms: int) -> str:
    return format_bound(epoch_ms, ISO)


def _ignores_paging(stream: str, start: int, end: int) -> AirbyteTracedException:
    message = (
        f"Stream '{stream}': Codefresh answered the audit log's pages between {_iso(start)} and {_iso(end)} with the "
        "same first entry for any page number, so it ignores the `page` parameter; the read stopped instead of asking "
        f"for ever (nothing was emitted twice). Please report this at {ISSUE_TRACKER} with the output of "
        "scripts/probe_api.py."
    )
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.system_error)
