"""Custom components for the pieces of the Codefresh API that manifest.yaml cannot express.

Each class is a small dataclass that subclasses a CDK interface and is referenced from manifest.yaml by its
`class_name`. Everything else (streams, requester, selectors, error policy, cursors) lives in the manifest.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import InitVar, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Mapping, MutableMapping, Optional, Union

import orjson
import requests

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.declarative.extractors.http_selector import HttpSelector
from airbyte_cdk.sources.declarative.extractors.record_selector import extracted_record_count
from airbyte_cdk.sources.declarative.migrations.state_migration import StateMigration
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler, HttpResponseFilter
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    ErrorResolution,
    ResponseAction,
)
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.declarative.retrievers.retriever import Retriever
from airbyte_cdk.sources.streams.core import StreamData
from airbyte_cdk.sources.types import Config, Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

logger = logging.getLogger("airbyte")

# ---------------------------------------------------------------------------------------------------------------------
# Reading an answer: its JSON parsed once, and the records under a fixed path of keys
# ---------------------------------------------------------------------------------------------------------------------

_PARSED_JSON = "_source_codefresh_json"


def response_json(response: requests.Response) -> Any:
    """The answer's JSON, parsed once (orjson) and kept on the response for the next component that reads it.

    The error handler checks every 2xx body, then the extractor and the paginator read it: three parses per page
    before. Raises `orjson.JSONDecodeError` (a `ValueError`) when the body is not JSON; nothing is kept then."""
    parsed = getattr(response, _PARSED_JSON, _PARSED_JSON)
    if parsed is _PARSED_JSON:
        parsed = orjson.loads(response.content or b"null")
        setattr(response, _PARSED_JSON, parsed)
    return parsed


@dataclass
class EnvelopeExtractor(RecordExtractor):
    """The records under `records_key` (dotted for nested keys, e.g. `workflows.docs`), or the whole answer.

    A list gives one record per item, an object one record, anything else none: what the CDK's DpathExtractor gives
    for a path without wildcards. It looks the keys up directly, where `dpath.get` walks every node of the answer to
    find one path (a quarter of the CPU time of a builds sync). The error handler has already failed any 2xx answer
    that is not JSON or lacks the key, so a missing key here means an ignored error answer."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    records_key: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        key = InterpolatedString.create(str(self.records_key or ""), parameters=parameters).eval(self.config)
        self._path: List[str] = [part for part in str(key or "").split(".") if part]

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        try:
            node = response_json(response)
        except ValueError:
            return
        for key in self._path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, list):
            yield from node
        elif isinstance(node, dict) and node:
            yield node


# ---------------------------------------------------------------------------------------------------------------------
# Paging: the cursor-backed pages of /workflow (builds) and /images
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class CursorBackedPageIncrement(PaginationStrategy):
    """Pages 1, 2, 3 ... of one listing, all sent with one `X-Pagination-Session-Id`.

    Codefresh keeps a server-side cursor per pagination session: pages must be read in order, and readers that do not
    send their own session id share one cursor per API key (REFERENCE.md, "cursor-backed pages"). The page token is
    therefore `{"page": n, "session_id": <uuid>}`; a fresh session starts with every listing (every stream slice, and
    every restart of a slice), and the requester sends `page` and the header from the token. The listing ends when
    `pagination.nextPage` is false or a page has no records.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 100

    @property
    def initial_token(self) -> Mapping[str, Any]:
        # A property, evaluated once per listing by the paginator, so each listing gets its own session.
        return {"page": 1, "session_id": f"source-codefresh-{uuid.uuid4()}"}

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Record],
        last_page_token_value: Optional[Any],
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Mapping[str, Any]]:
        # Count the records the API returned, not the ones a client-side filter kept.
        if extracted_record_count(response, default=last_page_size) == 0:
            return None
        try:
            pagination = response_json(response).get("pagination") or {}
        except (ValueError, AttributeError):
            return None
        if not pagination.get("nextPage"):
            return None
        token = last_page_token_value if isinstance(last_page_token_value, Mapping) else self.initial_token
        return {"page": int(token["page"]) + 1, "session_id": token["session_id"]}

    def get_page_size(self) -> Optional[int]:
        return int(self.page_size)


# ---------------------------------------------------------------------------------------------------------------------
# Error policy: Retry-After in both of its forms, and 200 answers that are not the JSON we expect
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class RetryAfterBackoffStrategy(BackoffStrategy):
    """Waits as long as `Retry-After` asks, in seconds or as an HTTP date, capped at `max_wait_seconds`.

    The CDK's WaitTimeFromHeader reads numbers only and stops the stream above its cap; Codefresh documents neither
    the header nor its form, so both forms are honoured and a long wait is shortened to the cap instead of failing.
    Without the header this returns None and the next strategy (exponential backoff) decides.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    max_wait_seconds: Union[float, str] = 300

    def backoff_time(
        self,
        response_or_exception: Optional[Union[requests.Response, requests.RequestException]],
        attempt_count: int,
    ) -> Optional[float]:
        if not isinstance(response_or_exception, requests.Response):
            return None
        wait = parse_retry_after(response_or_exception.headers.get("Retry-After"))
        if wait is None:
            return None
        # Never 0: the HTTP client treats a zero wait as "no wait given" and falls back to exponential backoff.
        return min(max(wait, 1.0), float(self.max_wait_seconds))


def parse_retry_after(value: Optional[str], now: Optional[datetime] = None) -> Optional[float]:
    """Seconds to wait for a `Retry-After` value (`"120"` or `"Wed, 21 Oct 2026 07:28:00 GMT"`), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


@dataclass
class CodefreshErrorHandler(DefaultErrorHandler):
    """The manifest's error policy, plus one check the CDK does not make: a 2xx answer must be the JSON we expect.

    The CDK's JSON decoder reads an unparsable body as an empty page, which would silently lose data when a proxy
    answers with a login page or a body is cut off. Here:
    - a body that is not JSON at all (HTML, text) fails at once as a config error: it will not fix itself, and it
      usually means `base_url` points at something that is not the Codefresh API;
    - a JSON body that does not parse (cut off) is retried like a transient server error;
    - JSON without the envelope key the stream reads its records from (`$parameters.records_key`, dotted for
      nested keys such as `workflows.docs`) fails, naming what was missing.
    Every message says what was received, never the request headers (they hold the API key).

    A response filter that declares both `http_codes` and a `predicate` applies only when both hold (the CDK
    applies it when either does), so one shared policy can say "403 skips the stream *if* it declares a scope".
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self.response_filters = [
            _StatusAndPredicateFilter(f) if f.http_codes and _has_predicate(f) else f for f in self.response_filters or []
        ]
        self._records_path: List[str] = [key for key in str(parameters.get("records_key") or "").split(".") if key]
        self._stream_name: str = str(parameters.get("name") or "")
        self._lock = threading.Lock()
        self._skip_reported = False

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        if isinstance(response_or_exception, requests.Response) and 200 <= response_or_exception.status_code < 300:
            resolution = self._check_body(response_or_exception)
            if resolution:
                return resolution
        resolution = super().interpret_response(response_or_exception)
        if resolution.response_action == ResponseAction.IGNORE and getattr(response_or_exception, "status_code", 0) == 403:
            # A child stream without the scope gets a 403 per parent record: say why once, not once per build.
            with self._lock:
                already_said, self._skip_reported = self._skip_reported, True
            if already_said:
                return ErrorResolution(ResponseAction.IGNORE, resolution.failure_type, error_message="")
        return resolution

    def _check_body(self, response: requests.Response) -> Optional[ErrorResolution]:
        where = f"{response.request.method if response.request else 'GET'} {_url_without_query(response.url)}"
        content_type = response.headers.get("Content-Type", "")
        content = response.content or b""
        try:
            body = response_json(response)
        except orjson.JSONDecodeError:
            received = f"{content_type or 'no Content-Type'}, {len(content):,} bytes starting {_preview(content)!r}"
            if "json" in content_type.lower():
                return ErrorResolution(
                    response_action=ResponseAction.RETRY,
                    failure_type=FailureType.transient_error,
                    error_message=(
                        f"Codefresh answered {where} with a JSON body that does not parse ({received}), probably cut "
                        "off on the way; retrying. If this persists, check the network path to Codefresh."
                    ),
                )
            return ErrorResolution(
                response_action=ResponseAction.FAIL,
                failure_type=FailureType.config_error,
                error_message=(
                    f"Codefresh answered {where} with something that is not JSON ({received}). Check that base_url "
                    "is the Codefresh API root (https://g.codefresh.io/api, or https://<your-host>/api on premises) "
                    "and that no proxy or login page is in between."
                ),
            )
        node: Any = body
        for key in self._records_path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (list, dict)):
            return None
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=FailureType.system_error,
            error_message=(
                f"Codefresh answered {where} with JSON that has no '{'.'.join(self._records_path) or 'records'}' "
                f"list (top-level keys: {sorted(body)[:8] if isinstance(body, dict) else type(body).__name__}), so "
                f"stream '{self._stream_name}' cannot read it. The API may have changed; please report this."
            ),
        )


def _has_predicate(response_filter: HttpResponseFilter) -> bool:
    predicate = response_filter.predicate
    return bool(getattr(predicate, "condition", predicate))


class _StatusAndPredicateFilter:
    """Wraps an HttpResponseFilter so that it matches when the status is one of its codes *and* its predicate holds."""

    def __init__(self, response_filter: HttpResponseFilter) -> None:
        self._filter = response_filter

    def matches(self, response_or_exception: Optional[Union[requests.Response, Exception]]) -> Optional[ErrorResolution]:
        if not isinstance(response_or_exception, requests.Response):
            return None
        if response_or_exception.status_code not in self._filter.http_codes:
            return None
        if not self._filter._response_matches_predicate(response_or_exception):
            return None
        return self._filter.matches(response_or_exception)


def _url_without_query(url: Optional[str]) -> str:
    return (url or "").split("?", 1)[0]


def _preview(content: bytes, length: int = 60) -> str:
    return " ".join(content[:length].decode("utf-8", errors="replace").split())


# ---------------------------------------------------------------------------------------------------------------------
# Incremental state
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class CursorStartsAfterState(StateMigration):
    """Starts a sync one unit after the state's cursor value, so the record that set it is not emitted again.

    The state holds the cursor value of the newest record emitted so far; the CDK starts the next sync *at* that value
    and the API's time filters are inclusive, so that record would come back in every sync. Moving the start by the
    cursor's unit (1 ms for Codefresh timestamps) excludes exactly that record and nothing newer: Codefresh timestamps
    have millisecond precision. A sync that finds nothing new keeps the moved value, which only ever moves the start
    by 1 ms per empty sync, far less than the time between two syncs.
    """

    cursor_field: str
    datetime_format: str
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    unit_milliseconds: Union[int, str] = 1

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # The manifest passes `{{ parameters.cursor_field }}`: custom components get their fields uninterpolated.
        self.cursor_field = InterpolatedString.create(str(self.cursor_field), parameters=parameters).eval(self.config)
        self.datetime_format = InterpolatedString.create(str(self.datetime_format), parameters=parameters).eval(self.config)

    def should_migrate(self, stream_state: Mapping[str, Any]) -> bool:
        return bool(stream_state) and self.cursor_field in stream_state and "state_type" not in stream_state

    def migrate(self, stream_state: Mapping[str, Any]) -> Mapping[str, Any]:
        value = stream_state[self.cursor_field]
        moved: MutableMapping[str, Any] = dict(stream_state)
        moved[self.cursor_field] = _shift_cursor_value(value, self.datetime_format, int(self.unit_milliseconds))
        return moved


def _shift_cursor_value(value: Any, datetime_format: str, milliseconds: int) -> Any:
    if datetime_format == "%ms":
        return int(value) + milliseconds
    parsed = _parse_iso(str(value))
    if parsed is None:
        return value
    return _format_iso_ms(parsed + timedelta(milliseconds=milliseconds))


def _parse_iso(value: str) -> Optional[datetime]:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _format_iso_ms(value: datetime) -> str:
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------------------------------------------------
# Per-build details
# ---------------------------------------------------------------------------------------------------------------------


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
                build_slice = StreamSlice(
                    partition={"parent_id": build.get("id")},
                    cursor_slice=window.cursor_slice,
                    extra_fields={"created": build.get("created")},
                )
                in_flight.append(pool.submit(self._read_build, records_schema, build_slice))
                while len(in_flight) >= 2 * self._workers:
                    yield from in_flight.popleft().result()
            while in_flight:
                yield from in_flight.popleft().result()
        finally:
            for pending in in_flight:  # a failed build or a stopped sync: drop what has not started
                pending.cancel()

    def _read_build(self, records_schema: Mapping[str, Any], build_slice: StreamSlice) -> List[Mapping[str, Any]]:
        response = self.requester.send_request(stream_slice=build_slice)
        if not response:  # None or not 2xx: ignored by the error policy (deleted build, missing scope), already logged
            return []
        records = self.record_selector.select_records(
            response=response, stream_state={}, records_schema=records_schema, stream_slice=build_slice
        )
        # Plain data: the CDK files each record under the window's slice, which is what its cursor tracks.
        return [record.data if isinstance(record, Record) else record for record in records]


@dataclass
class BuildStepsExtractor(RecordExtractor):
    """One record per step of a build, from `GET /workflow/{id}/context-revision`.

    The answer is a list of context revisions; the last one holds `context.stepsMetadata`, an object keyed by step
    name. Each value becomes a record with the step's `name` added; the pseudo-step `Initializing` (a duplicate of
    `Initializing Process`) is left out. A build terminated before it started has no revision and yields no steps.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    skipped_steps: List[str] = field(default_factory=lambda: ["Initializing"])

    def extract_records(self, response: requests.Response) -> Iterable[MutableMapping[str, Any]]:
        try:
            revisions = response_json(response)
        except ValueError:
            return
        if not isinstance(revisions, list) or not revisions:
            return
        last = revisions[-1] if isinstance(revisions[-1], Mapping) else {}
        steps = ((last.get("context") or {}).get("stepsMetadata")) or {}
        for name, step in steps.items():
            if name in self.skipped_steps or not isinstance(step, Mapping):
                continue
            yield {"name": name, **step}


# ---------------------------------------------------------------------------------------------------------------------
# Pipeline runs: the one write (opt-in through the `pipeline_runs` setting)
# ---------------------------------------------------------------------------------------------------------------------

RUN_ANNOTATION_KEY = "source_codefresh_run_id"
TERMINAL_BUILD_STATUSES = frozenset({"success", "error", "terminated"})


def _request_never_sent(error: Exception) -> bool:
    """True when the connection failed before the request was sent, so Codefresh cannot have started a build."""
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = getattr(error.args[0], "reason", None) if error.args else None
        return type(reason).__name__ in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
    return False


@dataclass
class NoBlindRetryErrorHandler(DefaultErrorHandler):
    """Error policy of `POST /pipelines/run/{name}`, which has no idempotency key.

    Retried only when Codefresh certainly did not start a build: a 429 (rejected before processing) or a connection
    that failed before the request was sent. Every other failure (5xx, a dropped connection, a read timeout, 4xx)
    is handed back to PipelineRunRetriever unretried (IGNORE), which looks the build up by its run annotation."""

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        if isinstance(response_or_exception, Exception):
            if _request_never_sent(response_or_exception):
                return ErrorResolution(ResponseAction.RETRY, FailureType.transient_error,
                                       "Could not connect to Codefresh to start the run; retrying (nothing was sent).")
            return ErrorResolution(ResponseAction.IGNORE, FailureType.transient_error,
                                   "The run request got no answer; looking the build up by its run id.")
        if response_or_exception is not None and response_or_exception.status_code == 429:
            return super().interpret_response(response_or_exception)
        if response_or_exception is not None and not response_or_exception.ok:
            return ErrorResolution(ResponseAction.IGNORE, FailureType.transient_error,
                                   f"The run request was answered {response_or_exception.status_code}.")
        return super().interpret_response(response_or_exception)


@dataclass
class PipelineRunRetriever(Retriever):
    """One record per configured pipeline run: POST the run once, poll the build until it ends, emit its detail.

    Never triggers twice: each run carries a unique annotation (`source_codefresh_run_id`). When the POST fails in a
    way that leaves it unknown whether the build started (5xx, dropped connection, timeout), the build is looked up by
    that annotation and adopted; if none is found the stream fails with a message naming the pipeline, and the POST is
    not sent again. Polling GETs go through the shared error policy (safe to retry)."""

    run_requester: Requester
    build_requester: Requester
    annotation_requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    poll_interval_seconds: Union[float, str] = 10
    lookup_attempts: int = 3
    name: str = "pipeline_runs"
    primary_key: Any = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._poll_interval = float(
            InterpolatedString.create(str(self.poll_interval_seconds), parameters=parameters).eval(self.config)
        )

    def read_records(
        self, records_schema: Mapping[str, Any], stream_slice: Optional[StreamSlice] = None
    ) -> Iterable[StreamData]:
        index = int((stream_slice.partition if stream_slice else {}).get("run_index", 0))
        run = dict(self.config.get("pipeline_runs", [])[index])
        yield self._run(run, index)

    # -- one run ------------------------------------------------------------------------------------------------

    def _run(self, run: Mapping[str, Any], index: int) -> Mapping[str, Any]:
        pipeline = str(run["pipeline"]).strip()
        run_id = f"source-codefresh-{uuid.uuid4()}"
        triggered_at = _format_iso_ms(datetime.now(timezone.utc))
        build_id = self._start(pipeline, run, run_id, index)
        logger.info(f"Pipeline run '{pipeline}' started build {build_id} (run id {run_id}).")

        timeout = timedelta(minutes=float(run.get("wait_timeout_minutes") or 30))
        deadline = time.monotonic() + timeout.total_seconds()
        polls, build = 0, {}
        while True:
            build = self._get_build(build_id)
            polls += 1
            finished = build.get("status") in TERMINAL_BUILD_STATUSES
            if finished or time.monotonic() >= deadline:
                break
            time.sleep(self._poll_interval)
        if not finished:
            logger.warning(
                f"Pipeline run '{pipeline}' (build {build_id}) was still '{build.get('status')}' after "
                f"{timeout}; emitting it with timed_out=true."
            )
        return {
            **build,
            "id": build.get("id") or build_id,
            "pipeline": pipeline,
            "requested_branch": run.get("branch"),
            "requested_sha": run.get("sha"),
            "requested_trigger": run.get("trigger"),
            "requested_variable_names": sorted((run.get("variables") or {}).keys()),
            "run_id": run_id,
            "triggered_at": triggered_at,
            "timed_out": not finished,
            "polls": polls,
        }

    def _start(self, pipeline: str, run: Mapping[str, Any], run_id: str, index: int) -> str:
        body: Dict[str, Any] = {key: run[key] for key in ("branch", "sha", "trigger") if run.get(key)}
        if run.get("variables"):
            body["variables"] = [{"key": key, "value": str(value)} for key, value in run["variables"].items()]
        if run.get("options"):
            body["options"] = dict(run["options"])
        body["annotations"] = {RUN_ANNOTATION_KEY: run_id}
        response = self.run_requester.send_request(
            stream_slice=StreamSlice(partition={"pipeline": pipeline}, cursor_slice={}), request_body_json=body
        )
        if response is not None and response.ok:
            try:
                build_id = response.json()
            except ValueError:
                build_id = None
            if isinstance(build_id, str) and build_id:
                return build_id
            raise _run_error(
                f"Codefresh accepted the run of pipeline '{pipeline}' but did not answer with a build id "
                f"({_preview(response.content or b'')!r}); check Codefresh for a build annotated {RUN_ANNOTATION_KEY}="
                f"{run_id} before syncing again.", FailureType.system_error,
            )
        if response is not None and response.status_code == 404:
            raise _run_error(
                f"Codefresh has no pipeline '{pipeline}' (pipeline_runs entry {index + 1}): use the full name "
                "project/pipeline as Codefresh shows it.", FailureType.config_error,
            )
        if response is not None and response.status_code in (401, 403):
            raise _run_error(
                f"Codefresh refused to run pipeline '{pipeline}' (HTTP {response.status_code}): the API key needs "
                "the pipeline:run scope.", FailureType.config_error,
            )
        if response is not None and 400 <= response.status_code < 500:
            raise _run_error(
                f"Codefresh rejected the run of pipeline '{pipeline}' (HTTP {response.status_code}: "
                f"{_error_text(response)}); check that entry's branch, sha, trigger and variables.",
                FailureType.config_error,
            )
        # 5xx, dropped connection, timeout: the build may have started. Look for it; never POST again.
        what = f"HTTP {response.status_code}" if response is not None else "no answer"
        build_id = self._find_run(run_id)
        if build_id:
            logger.info(f"The run request of '{pipeline}' got {what}, but build {build_id} carries its run id; adopted.")
            return build_id
        raise _run_error(
            f"Starting pipeline '{pipeline}' got {what} and no build carrying run id {run_id} was found, so it is "
            "unknown whether a build started. The connector did not send the request again, to never start a second "
            f"build: check the pipeline's builds in Codefresh before syncing again.", FailureType.transient_error,
        )

    def _find_run(self, run_id: str) -> Optional[str]:
        for attempt in range(self.lookup_attempts):
            if attempt:
                time.sleep(self._poll_interval)
            response = self.annotation_requester.send_request(
                stream_slice=StreamSlice(partition={}, cursor_slice={}),
                request_params={"entityType": "build", "key": RUN_ANNOTATION_KEY, "value": run_id},
            )
            found = response.json() if response is not None and response.ok else []
            for annotation in found if isinstance(found, list) else []:
                if isinstance(annotation, dict) and annotation.get("value") == run_id and annotation.get("entityId"):
                    return str(annotation["entityId"])
        return None

    def _get_build(self, build_id: str) -> Dict[str, Any]:
        response = self.build_requester.send_request(
            stream_slice=StreamSlice(partition={"build_id": build_id}, cursor_slice={})
        )
        body = response.json() if response is not None else None
        if not isinstance(body, dict):
            raise _run_error(f"Codefresh answered build {build_id} with no build object.", FailureType.system_error)
        return body


def _run_error(message: str, failure_type: FailureType) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=failure_type)


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return _preview(response.content or b"")
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)
