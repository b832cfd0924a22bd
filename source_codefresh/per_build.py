"""The per-build streams (build_details, build_steps): one request per listed build, `num_workers` at a time."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import InitVar, dataclass
from typing import Any, Dict, Generator, Iterable, Mapping, Optional, Set, Union

from airbyte_cdk.sources.declarative.extractors.http_selector import HttpSelector
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice

_detail_pools: Dict[int, ThreadPoolExecutor] = {}
_detail_pools_lock = threading.Lock()


def _detail_pool(workers: int) -> ThreadPoolExecutor:
    """One pool per size, shared by the per-build streams, so `num_workers` bounds their requests together."""
    with _detail_pools_lock:
        if workers not in _detail_pools:
            _detail_pools[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="per_build")
        return _detail_pools[workers]


class _Done:
    """A build's last item in the outlet: its records are all in, or `error` stopped them."""

    def __init__(self, error: Optional[BaseException] = None) -> None:
        self.error = error


class _Outlet:
    """The records of a window's builds in flight, from the workers that read them to the window's reader, as they
    are read; at most `size` wait at a time, so memory stays flat however many records one build has (a build log
    of 600,000 steps). Once closed (the reader stopped), a worker's record is dropped and its build abandoned."""

    def __init__(self, size: int) -> None:
        self._queue: "queue.Queue[Any]" = queue.Queue(size)
        self.closed = threading.Event()

    def put(self, item: Any) -> bool:
        while not self.closed.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def get(self) -> Any:
        return self._queue.get()

    def close(self) -> None:
        self.closed.set()


@dataclass
class PerBuildRetriever(Retriever):
    """build_details and build_steps: one request per build of the builds listing, `num_workers` at a time.

    A stream slice is a window of build creation times (the stream's own `created` cursor, as for `builds`). The
    listing of that window is read in order, with its own pagination session, and every listed build's request goes
    to a pool of `max_concurrency` threads while the listing goes on; at most twice that many builds are in flight,
    and records come out as they are read, through a bounded outlet (memory stays flat however many records a build
    has: a build log of 600,000 steps is read step by step). The listing and the per-build requests use the
    manifest's requesters, so the one error policy applies (a deleted build is skipped with one line; a missing scope
    skips the stream).

    Why not a SubstreamPartitionRouter over `builds`: one partition per build made the CDK create and keep a cursor
    per build (about 1.4 ms and 5 kB each), so memory grew with the account and a sync spent more CPU on
    bookkeeping than on the builds; here the stream has one small datetime state like `builds`.

    `with_build_keys`: each record gets its build's id and creation time as `build_id` and `build_created` (the primary
    key and cursor of build_steps and build_logs). Not the stream's `transformations`: the CDK hands those to every
    selector nested in a custom retriever, the builds listing's too, which would run them on every listed build."""

    listing: Retriever
    requester: Requester
    record_selector: HttpSelector
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    max_concurrency: Union[int, str] = 16
    with_build_keys: bool = False
    name: str = ""
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        workers = InterpolatedString.create(str(self.max_concurrency), parameters=parameters).eval(self.config)
        self._workers = max(1, int(workers))

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        window = StreamSlice(partition={}, cursor_slice={}) if stream_slice is None else stream_slice
        pool = _detail_pool(self._workers)
        outlet = _Outlet(4 * self._workers)
        started: "Set[Future[None]]" = set()
        in_flight = 0
        try:
            for build in self.listing.read_records({}, window):
                if not isinstance(build, Mapping):  # a message of the listing's (a log line), not a build: pass it on
                    yield build
                    continue
                started.add(pool.submit(self._fill, outlet, records_schema, self._build_slice(build, window)))
                in_flight += 1
                while in_flight >= 2 * self._workers:
                    in_flight -= yield from self._until_one_is_done(outlet)
            while in_flight:
                in_flight -= yield from self._until_one_is_done(outlet)
        finally:
            outlet.close()
            for pending in started:  # a failed build or a stopped sync: drop what has not started
                pending.cancel()

    def _fill(self, outlet: _Outlet, records_schema: Mapping[str, Any], build_slice: StreamSlice) -> None:
        """In a worker: one build's records into the outlet, then its end (or what stopped it)."""
        if outlet.closed.is_set():
            return
        keys = {"build_id": build_slice.partition["parent_id"], "build_created": build_slice.extra_fields["created"]}
        try:
            for record in self._read_build(records_schema, build_slice):
                if not outlet.put({**record, **keys} if self.with_build_keys else record):
                    return
        except BaseException as error:  # handed to the reader, which raises it in the stream's thread
            outlet.put(_Done(error))
            return
        outlet.put(_Done())

    @staticmethod
    def _until_one_is_done(outlet: _Outlet) -> Generator[Mapping[str, Any], None, int]:
        """The records the workers put out until one build is done; then 1 (one build fewer in flight)."""
        while True:
            item = outlet.get()
            if not isinstance(item, _Done):
                yield item
                continue
            if item.error is not None:
                raise item.error
            return 1

    def _build_slice(self, build: Mapping[str, Any], window: StreamSlice) -> StreamSlice:
        """The slice of one listed build's request: its id, and its creation time for the records' cursor."""
        return StreamSlice(
            partition={"parent_id": build.get("id")},
            cursor_slice=window.cursor_slice,
            extra_fields={"created": build.get("created")},
        )

    def _read_build(self, records_schema: Mapping[str, Any], build_slice: StreamSlice) -> Iterable[Mapping[str, Any]]:
        response = self.requester.send_request(stream_slice=build_slice)
        if not response:  # None or not 2xx: ignored by the error policy (deleted build, missing scope), already logged
            return []
        records = self.record_selector.select_records(
            response=response, stream_state={}, records_schema=records_schema, stream_slice=build_slice
        )
        # Plain data: the CDK files each record under the window's slice, which is what its cursor tracks.
        return [record.data if isinstance(record, Record) else record for record in records]
