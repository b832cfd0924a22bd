"""The per-build streams (build_details, build_steps): one request per listed build, `num_workers` at a time."""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import InitVar, dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from airbyte_cdk.sources.declarative.extractors.http_selector import HttpSelector
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice

_detail_pools: Dict[int, ThreadPoolExecutor] = {}
_detail_pools_lock = threading.Lock()


def _detail_pool(workers: int) -> ThreadPoolExecutor:
    """One pool per size, shared by build_details and build_steps, so `num_workers` bounds their requests together."""
    with _detail_pools_lock:
        if workers not in _detail_pools:
            _detail_pools[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="per_build")
        return _detail_pools[workers]


@dataclass
class PerBuildRetriever(Retriever):
    """build_details and build_steps: one request per build of the builds listing, `num_workers` at a time.

    A stream slice is a window of build creation times (the stream's own `created` cursor, as for `builds`). The
    listing of that window is read in order, with its own pagination session, and every listed build's request goes
    to a pool of `max_concurrency` threads while the listing goes on; at most twice that many builds are in flight,
    and records come out in listing order. The listing and the per-build requests use the manifest's requesters, so
    the one error policy applies (a deleted build is skipped with one line; a missing scope skips the stream).

    Why not a SubstreamPartitionRouter over `builds`: one partition per build made the CDK create and keep a cursor
    per build (about 1.4 ms and 5 kB each), so memory grew with the account and a sync spent more CPU on
    bookkeeping than on the builds; here the stream has one small datetime state like `builds`."""

    listing: Retriever
    requester: Requester
    record_selector: HttpSelector
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    max_concurrency: Union[int, str] = 16
    name: str = ""
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        workers = InterpolatedString.create(str(self.max_concurrency), parameters=parameters).eval(self.config)
        self._workers = max(1, int(workers))
        # The stream's transformations (the CDK hands them to every nested selector) shape this stream's records,
        # not the listing's builds, which are only read for their id and creation time.
        listing_selector = getattr(self.listing, "record_selector", None)
        if listing_selector is not None:
            listing_selector.transformations = []

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        window = StreamSlice(partition={}, cursor_slice={}) if stream_slice is None else stream_slice
        pool = _detail_pool(self._workers)
        in_flight: "deque[Future[List[Mapping[str, Any]]]]" = deque()
        try:
            for build in self.listing.read_records({}, window):
                if not isinstance(build, Mapping):  # a message of the listing's (a log line), not a build: pass it on
                    yield build
                    continue
                build_slice = self._build_slice(build, window)
                in_flight.append(pool.submit(self._read_build, records_schema, build_slice))
                while len(in_flight) >= 2 * self._workers:
                    yield from in_flight.popleft().result()
            while in_flight:
                yield from in_flight.popleft().result()
        finally:
            for pending in in_flight:  # a failed build or a stopped sync: drop what has not started
                pending.cancel()

    def _build_slice(self, build: Mapping[str, Any], window: StreamSlice) -> StreamSlice:
        """The slice of one listed build's request: its id, and its creation time for the records' cursor."""
        return StreamSlice(
            partition={"parent_id": build.get("id")},
            cursor_slice=window.cursor_slice,
            extra_fields={"created": build.get("created")},
        )

    def _read_build(self, records_schema: Mapping[str, Any], build_slice: StreamSlice) -> List[Mapping[str, Any]]:
        response = self.requester.send_request(stream_slice=build_slice)
        if not response:  # None or not 2xx: ignored by the error policy (deleted build, missing scope), already logged
            return []
        records = self.record_selector.select_records(
            response=response, stream_state={}, records_schema=records_schema, stream_slice=build_slice
        )
        # Plain data: the CDK files each record under the window's slice, which is what its cursor tracks.
        return [record.data if isinstance(record, Record) else record for record in records]
