"""The error policy's Python parts: Retry-After in both of its forms (with jitter), 2xx answers that are not the JSON
we expect, and what a 403 means: a missing scope (skip that stream, once, with no further request) or a key Codefresh
has restricted for unusual activity (fail the sync, saying so).

The policy itself (which status does what, and the messages) is declared once in manifest.yaml
(`definitions.error_handler`)."""

from __future__ import annotations

import email.utils
import logging
import math
import random
import threading
import time
from collections import OrderedDict
from dataclasses import InitVar, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, List, Mapping, MutableMapping, Optional, Set, Tuple, Union, cast

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.interpolation.interpolated_boolean import InterpolatedBoolean
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler, HttpResponseFilter
from airbyte_cdk.sources.declarative.requesters.requester import HttpMethod, Requester
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.responses import preview, response_json, url_without_query
from source_codefresh.transport import get_user, quiet_http_log

logger = logging.getLogger("airbyte")


@dataclass
class RetryAfterBackoffStrategy(BackoffStrategy):
    """Waits as long as `Retry-After` asks, in seconds or as an HTTP date, plus a random jitter; capped at
    `max_wait_seconds`.

    The CDK's WaitTimeFromHeader reads numbers only and stops the stream above its cap; Codefresh documents neither
    the header nor its form, so both forms are honoured and a long wait is shortened to the cap instead of failing.
    Without the header this returns None and the next strategy (exponential backoff) decides.

    Jitter: concurrent readers (up to `num_workers` of them) that were all answered `Retry-After: 1` would otherwise
    come back in the same instant and be throttled together again. Each wait is lengthened by a random amount of
    up to `max_jitter_seconds`, never shortened, and never beyond `max_wait_seconds`. (The CDK adds one second of
    its own to every such wait, the same for everyone.)
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    max_wait_seconds: Union[float, str] = 300
    max_jitter_seconds: Union[float, str] = 1.0

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._random = random.Random()

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
        cap = float(self.max_wait_seconds)
        # Never 0: the HTTP client treats a zero wait as "no wait given" and falls back to exponential backoff.
        asked = min(max(wait, 1.0), cap)
        jittered = asked + self._random.uniform(0.0, float(self.max_jitter_seconds))
        # Rounded up to hundredths, as the CDK logs it ("Retrying in 2.37 seconds").
        return min(math.ceil(jittered * 100) / 100, cap)


def parse_retry_after(value: Optional[str], now: Optional[datetime] = None) -> Optional[float]:
    """Seconds to wait for a `Retry-After` value (`"120"` or `"Wed, 21 Oct 2026 07:28:00 GMT"`), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "nan" would crash the wait's arithmetic and "inf" is no wait a server means: both read as no header.
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - (now or datetime.now(timezone.utc))).total_seconds(), 0.0)


@dataclass
class StatusErrorHandler(DefaultErrorHandler):
    """The declared response filters, plus two rules of this connector for every answer, the API's and the log
    storage's:

    - an answer no filter names: a 4xx fails the stream at once (`unnamed_client_error: fail`: retrying does not
      change it, where the CDK retried it like a server error for 5 minutes) or skips that one request (`skip`), and
      anything else is retried; the message never quotes the answer's body or the URL's query (the CDK's does);
    - a failure is raised here, with the policy's sentence: the CDK would add the answer's raw body to the error it
      logs and emits, and an answer may hold credentials.

    A response filter that declares both `http_codes` and a `predicate` applies only when both hold (the CDK
    applies it when either does), so one shared policy can say "403 skips the stream *if* it declares a scope"."""

    answered_by: str = "Codefresh"
    unnamed_client_error: str = "fail"

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        # The CDK's handler only calls `matches` on each filter (unit_tests/test_cdk_contract.py pins that).
        filters = [
            _StatusAndPredicateFilter(f) if f.http_codes and _has_predicate(f) else f
            for f in self.response_filters or []
        ]
        self.response_filters = cast(List[HttpResponseFilter], filters)
        self._stream_name: str = str(parameters.get("reading_for") or parameters.get("name") or "")
        self._custom_stream: bool = bool(parameters.get("custom_stream"))

    def interpret_response(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> ErrorResolution:
        resolution = self._resolve(response_or_exception)
        if resolution.response_action != ResponseAction.FAIL:
            return resolution
        message = resolution.error_message or "Codefresh's answer cannot be read."
        if isinstance(response_or_exception, requests.Response):
            internal = f"{_where(response_or_exception)} answered HTTP {response_or_exception.status_code}: {message}"
        else:
            internal = f"{type(response_or_exception).__name__}: {message}"
        raise AirbyteTracedException(
            message=message, internal_message=internal, failure_type=resolution.failure_type or FailureType.system_error
        )

    def _resolve(self, response_or_exception: Optional[Union[requests.Response, Exception]]) -> ErrorResolution:
        resolution = super().interpret_response(response_or_exception)
        response = response_or_exception
        if not isinstance(response, requests.Response) or response.ok:
            return resolution
        if any(f.matches(response) for f in self.response_filters or []):
            return resolution
        status = f"HTTP {response.status_code} {response.reason or ''}".strip()
        where = _where(response)
        if not 400 <= response.status_code < 500 or response.status_code in (408, 429):
            message = f"{self.answered_by} answered {where} with {status}; retrying."
            return ErrorResolution(ResponseAction.RETRY, FailureType.transient_error, message)
        if self.unnamed_client_error == "skip":
            message = f"Skipping {where} in stream '{self._stream_name}': {self.answered_by} answered {status}."
            return ErrorResolution(ResponseAction.IGNORE, FailureType.transient_error, message)
        if self._custom_stream:
            advice = (
                f"check the path and params of custom stream '{self._stream_name}' in custom_streams (HTTP 414: its "
                "params are too long)."
            )
        else:
            advice = "the API may have changed; please report this."
        message = (
            f"{self.answered_by} answered {where} with {status}, which retrying will not change, so stream "
            f"'{self._stream_name}' stopped: {advice}"
        )
        return ErrorResolution(
            ResponseAction.FAIL,
            FailureType.config_error if self._custom_stream else FailureType.system_error,
            message,
        )


def _where(response: requests.Response) -> str:
    return f"{response.request.method if response.request else 'GET'} {url_without_query(response.url)}"


@dataclass
class CodefreshErrorHandler(StatusErrorHandler):
    """The manifest's error policy, plus one check the CDK does not make: a 2xx answer must be the JSON we expect.

    The CDK's JSON decoder reads an unparsable body as an empty page, which would silently lose data when a proxy
    answers with a login page or a body is cut off. Here:
    - a body that is not JSON at all (HTML, text) fails at once as a config error: it will not fix itself, and it
      usually means `base_url` points at something that is not the Codefresh API;
    - a JSON body that does not parse (cut off) is retried like a transient server error;
    - JSON without the envelope key the stream reads its records from (`$parameters.records_key`, dotted for
      nested keys such as `workflows.docs`) fails, naming what was missing (for a custom stream, as a config error
      that says to fix its records_key).
    - a list of records that holds something other than objects fails too (no stream's records are anything else).
    Every message says what was received, never the request headers (they hold the API key).

    A 403 that the policy resolves to a skip (the stream declares a scope) is first checked against the key itself:
    Codefresh also answers 403 to everything for a key it restricted for unusual activity, and skipping every stream
    then would end the sync "successfully" with empty streams (in a full-refresh overwrite, emptied tables). So the
    key's own `GET /user`, which needs no scope, is asked (once per sync while it answers 403; a 2xx answer is
    trusted for a minute): 403 there too fails the stream with `restricted_key_message`. Otherwise the stream is
    skipped once, with the policy's line, and `ScopeGatedRequester` sends no further request for it.
    """

    restricted_key_message: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._records_path: List[str] = [key for key in str(parameters.get("records_key") or "").split(".") if key]
        self._stream_name = str(parameters.get("name") or "")
        self._skipped_stream: str = skipped_stream_name(parameters)
        self._restricted_message = InterpolatedString.create(
            str(self.restricted_key_message or _DEFAULT_RESTRICTED_MESSAGE), parameters=parameters
        )

    def _resolve(self, response_or_exception: Optional[Union[requests.Response, Exception]]) -> ErrorResolution:
        if isinstance(response_or_exception, requests.Response) and 200 <= response_or_exception.status_code < 300:
            checked = self._check_body(response_or_exception)
            if checked:
                return checked
        resolution = super()._resolve(response_or_exception)
        if getattr(response_or_exception, "status_code", 0) == 403:
            if resolution.response_action == ResponseAction.IGNORE:
                return self._scoped_forbidden(resolution)
            restricted = resolution.response_action == ResponseAction.FAIL and sync_state(
                self.config
            ).key_is_restricted(self.config)
            if restricted:
                # A stream without a scope (GET /user itself): say what happened, not "may not read it".
                message = self._restricted_message.eval(self.config)
                return ErrorResolution(ResponseAction.FAIL, FailureType.config_error, error_message=message)
        return resolution

    def _scoped_forbidden(self, skip: ErrorResolution) -> ErrorResolution:
        """A 403 on a stream that declares a scope: a restricted key fails the stream, a missing scope skips it once."""
        sync = sync_state(self.config)
        if sync.key_is_restricted(self.config):
            message = self._restricted_message.eval(self.config)
            if not sync.first_failure(self._skipped_stream):
                return _SILENT  # this stream already failed saying so; another of its requests got the same answer
            return ErrorResolution(ResponseAction.FAIL, FailureType.config_error, error_message=message)
        if not sync.mark_skipped(self._skipped_stream):
            # Requests of a second scope of the same stream that were already in flight: the stream is skipped and
            # said so once; these answers are empty pages, not news (the CDK would log a line per request).
            return _SILENT
        return skip

    def _check_body(self, response: requests.Response) -> Optional[ErrorResolution]:
        where = _where(response)
        content_type = response.headers.get("Content-Type", "")
        content = response.content or b""
        try:
            body = response_json(response)
        except orjson.JSONDecodeError:
            received = f"{content_type or 'no Content-Type'}, {len(content):,} bytes starting {preview(content)!r}"
            if "json" in content_type.lower():
                return ErrorResolution(
                    response_action=ResponseAction.RETRY,
                    failure_type=FailureType.transient_error,
                    error_message=(
                        f"Codefresh answered {where} with a JSON body that does not parse ({received}), probably cut "
                        "off on the way. If this persists, check the network path to Codefresh."
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
        if isinstance(node, list):
            strange = [item for item in node if not isinstance(item, dict)][:1]
            return self._not_objects(where, type(strange[0]).__name__) if strange else None
        if isinstance(node, dict):
            return None
        top_level_keys = sorted(body)[:8] if isinstance(body, dict) else type(body).__name__
        if self._custom_stream:
            # The user chose the key: say which to change, not that the API changed.
            return ErrorResolution(
                response_action=ResponseAction.FAIL,
                failure_type=FailureType.config_error,
                error_message=(
                    f"Codefresh answered {where} with JSON that has no "
                    f"{repr('.'.join(self._records_path)) + ' list' if self._records_path else 'list or object'} "
                    f"(top-level keys: {top_level_keys}), so custom stream '{self._stream_name}' reads nothing: set "
                    "its records_key in custom_streams to the key that holds the records (dotted when nested), or "
                    "leave it empty when the answer is the list itself."
                ),
            )
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=FailureType.system_error,
            error_message=(
                f"Codefresh answered {where} with JSON that has no '{'.'.join(self._records_path) or 'records'}' "
                f"list (top-level keys: {top_level_keys}), so "
                f"stream '{self._stream_name}' cannot read it. The API may have changed; please report this."
            ),
        )

    def _not_objects(self, where: str, kind: str) -> ErrorResolution:
        if self._custom_stream:
            detail = (
                f"custom stream '{self._stream_name}' reads records from a list that holds {kind} values, not "
                "objects: set its records_key in custom_streams to the key of a list of objects"
            )
            return ErrorResolution(
                ResponseAction.FAIL, FailureType.config_error, f"Codefresh answered {where} with JSON where {detail}."
            )
        return ErrorResolution(
            ResponseAction.FAIL,
            FailureType.system_error,
            f"Codefresh answered {where} with records that are not objects ({kind} values among them), so stream "
            f"'{self._stream_name}' cannot read them; the API may have changed: please report this.",
        )


def _has_predicate(response_filter: HttpResponseFilter) -> bool:
    predicate = response_filter.predicate
    return bool(getattr(predicate, "condition", predicate))


class _StatusAndPredicateFilter:
    """Wraps an HttpResponseFilter so that it matches when the status is one of its codes *and* its predicate holds."""

    def __init__(self, response_filter: HttpResponseFilter) -> None:
        self._filter = response_filter

    def matches(
        self, response_or_exception: Optional[Union[requests.Response, Exception]]
    ) -> Optional[ErrorResolution]:
        if not isinstance(response_or_exception, requests.Response):
            return None
        if response_or_exception.status_code not in (self._filter.http_codes or set()):
            return None
        if not _predicate_holds(self._filter, response_or_exception):
            return None
        return self._filter.matches(response_or_exception)


def _predicate_holds(response_filter: HttpResponseFilter, response: requests.Response) -> bool:
    """The filter's predicate, evaluated with what the CDK evaluates it with (the JSON body, the headers, the URL)."""
    predicate = response_filter.predicate
    if not isinstance(predicate, InterpolatedBoolean) or not predicate.condition:
        return False
    try:
        body = response_json(response)
    except ValueError:
        body = {}
    return predicate.eval(
        response_filter.config, response=body, headers=response.headers, request_url=url_without_query(response.url)
    )


# --- what one sync learned about its key: skipped streams, restricted key --------------------------------------------

_DEFAULT_RESTRICTED_MESSAGE = (
    "Codefresh answers 403 Forbidden to every request of this API key, even GET /user which needs no scope, so it has "
    "restricted the key (Codefresh does that for unusual activity): the sync stops here instead of ending with empty "
    "streams; create a new API key, or wait and lower max_requests_per_minute, then try again."
)
# A 2xx answer of GET /user is trusted this long: a burst of 403s from several streams costs one question, and a key
# restricted later in the same sync is still noticed.
_KEY_OK_SECONDS = 60.0
_USER_PROBE_TIMEOUT = (10, 30)
_SILENT = ErrorResolution(ResponseAction.SUCCESS)  # a non-2xx answer read as an empty page, without a log line


def skipped_stream_name(parameters: Mapping[str, Any]) -> str:
    """The stream a 403 skips: a parent read for a child stream (`reading_for`) skips the child."""
    return str(parameters.get("reading_for") or parameters.get("name") or "")


class SyncState:
    """What one sync has learned about its API key, shared by every stream of the sync.

    - per (stream, endpoint), whether the key may read it: until the first request to it has been answered,
      further requests wait for it (ScopeGatedRequester), so a missing scope costs one request;
    - the streams skipped for a missing scope, and the streams failed because the key is restricted;
    - whether the key is restricted (from GET /user, asked at most once at a time)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._granted: Set[Tuple[str, str]] = set()
        self._first_in_flight: Set[Tuple[str, str]] = set()
        self._skipped: Set[str] = set()
        self._failed: Set[str] = set()
        self._probe_lock = threading.Lock()
        self._restricted = False
        self._key_ok_at: Optional[float] = None

    # -- the gate ----------------------------------------------------------------------------------------------

    def admit(self, stream: str, endpoint: str) -> Optional[bool]:
        """None: send nothing (the stream was skipped or failed); True: send, as the first request to this endpoint
        (call `done` after); False: send (the key may read it)."""
        key = (stream, endpoint)
        with self._cond:
            while True:
                if stream in self._skipped or stream in self._failed:
                    return None
                if key in self._granted:
                    return False
                if key not in self._first_in_flight:
                    self._first_in_flight.add(key)
                    return True
                self._cond.wait()

    def done(self, stream: str, endpoint: str) -> None:
        """The first request to (stream, endpoint) was answered (or failed): the others may go, or stop."""
        with self._cond:
            self._first_in_flight.discard((stream, endpoint))
            if stream not in self._skipped and stream not in self._failed:
                self._granted.add((stream, endpoint))
            self._cond.notify_all()

    def mark_skipped(self, stream: str) -> bool:
        """True the first time: the caller says why; later callers stay silent."""
        with self._cond:
            first = stream not in self._skipped
            self._skipped.add(stream)
            self._cond.notify_all()
            return first

    def first_failure(self, stream: str) -> bool:
        with self._cond:
            first = stream not in self._failed
            self._failed.add(stream)
            self._cond.notify_all()
            return first

    @property
    def restricted(self) -> bool:
        return self._restricted

    # -- is the key restricted? --------------------------------------------------------------------------------

    def key_is_restricted(self, config: Mapping[str, Any]) -> bool:
        """Asks GET /user (no scope needed) whether the key itself is refused. One question at a time; a 403 there
        holds for the rest of the sync, a 2xx answer for a minute. An answer that says neither (a network error, a
        5xx) counts as not restricted: the stream is skipped as before, with its line."""
        if self._restricted:
            return True
        with self._probe_lock:
            if self._restricted:
                return True
            if self._key_ok_at is not None and time.monotonic() - self._key_ok_at < _KEY_OK_SECONDS:
                return False
            status = _user_status(config)
            if status == 403:
                self._restricted = True
            elif status is not None and 200 <= status < 300:
                self._key_ok_at = time.monotonic()
            return self._restricted


def _user_status(config: Mapping[str, Any]) -> Optional[int]:
    """The status of GET {api_root}/user with the configured key, or None when no answer came."""
    try:
        return get_user(config, _USER_PROBE_TIMEOUT).status_code
    except (requests.RequestException, AirbyteTracedException):
        return None


_SYNCS: "OrderedDict[int, Tuple[Mapping[str, Any], SyncState]]" = OrderedDict()
_SYNCS_LOCK = threading.Lock()
_SYNCS_KEPT = 32


def sync_state(config: Mapping[str, Any], new: bool = False) -> SyncState:
    """The SyncState of the sync this config belongs to (`new`: start a sync afresh, SourceCodefresh.read does).

    The CDK hands every component of one source the same (normalized) config object (unit_tests/test_cdk_contract.py
    pins it), and each connector command builds its own source, so the object identifies the sync; a second read
    through the same source starts a new state. The object is kept referenced while its entry lives so that its id
    is not reused."""
    key = id(config)
    with _SYNCS_LOCK:
        entry = _SYNCS.get(key)
        if new or entry is None or entry[0] is not config:
            entry = (config, SyncState())
            _SYNCS[key] = entry
            while len(_SYNCS) > _SYNCS_KEPT:
                _SYNCS.popitem(last=False)
        else:
            _SYNCS.move_to_end(key)
        return entry[1]


# What the CDK says when a request's retries are spent (airbyte_cdk/sources/streams/http/http_client.py,
# `_send_with_retry`): a bare "API rate limit exceeded." after 429s, and "Exhausted available request attempts.
# Please see logs for more details. Exception: <the filter's line>" after anything else. Neither says what to do.
_CDK_RATE_LIMIT_SPENT = "API rate limit exceeded."
_CDK_ATTEMPTS_SPENT = "Exhausted available request attempts."


def spent_retries_reason(message: str, max_time: Optional[float] = None) -> Optional[str]:
    """What the CDK's words after spent retries (`message`) mean, as a clause; None for any other message.
    `max_time`: the error handler's limit in seconds (definitions.retry_policy)."""
    limit = f"up to {max_time / 60:g} minutes" if max_time else "every attempt"
    if message == _CDK_RATE_LIMIT_SPENT:
        return f"Codefresh kept rate limiting this API key (HTTP 429) through every retry ({limit})"
    if message.startswith(_CDK_ATTEMPTS_SPENT):
        last = message.partition("Exception: ")[2].strip().rstrip(".") or "no answer"
        return f"Codefresh kept failing through every retry ({limit}; last: {last})"
    return None


def retries_spent(
    error: AirbyteTracedException, stream: str, max_time: Optional[float] = None
) -> Optional[AirbyteTracedException]:
    """The one sentence for a request whose retries are spent; None for any other error, which passes unchanged.
    Only the transient cases are rewritten: the sync may be run again as is."""
    message = str(error.message or "")
    reason = spent_retries_reason(message, max_time)
    if reason is None:
        return None
    if message == _CDK_RATE_LIMIT_SPENT:
        advice = (
            "lower max_requests_per_minute or num_workers (other tools may share the key's limit), then run the sync "
            "again."
        )
    else:
        advice = (
            "this is on Codefresh's side or the network's: check https://status.codefresh.io and run the sync again "
            "later."
        )
    text = f"Stream '{stream}': {reason}; {advice}"
    return AirbyteTracedException(
        message=text,
        internal_message=error.internal_message,
        failure_type=FailureType.transient_error,
    )


def send_explaining_spent_retries(requester: Requester, stream: str, **request: Any) -> Optional[requests.Response]:
    """`requester.send_request(**request)`, with the CDK's words for spent retries replaced by `retries_spent`'s."""
    try:
        return requester.send_request(**request)
    except AirbyteTracedException as error:
        max_time = getattr(getattr(requester, "error_handler", None), "max_time", None)
        spent = retries_spent(error, stream, max_time)
        if spent is None:
            raise
        raise spent from error


@dataclass
class ScopeGatedRequester(Requester):
    """The stream's requester, behind a gate that makes a missing scope cost one request and one log line.

    For a stream that declares a `scope`, the first request to each endpoint goes alone; the stream's other requests
    (other time slices, other reports, per-build requests, often sent in parallel) wait for its answer. After a 403
    that skipped the stream (a missing scope, see CodefreshErrorHandler) they are not sent: the retriever reads
    "no answer" as an empty page. A stream without a scope passes straight through."""

    requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._scope = str(parameters.get("scope") or "")
        self._stream = skipped_stream_name(parameters)
        # The gate opens per endpoint: a stream may read two (a listing, then one request per listed build).
        self._endpoint = str(parameters.get("endpoint") or self._scope)
        self._restricted_message = getattr(getattr(self.requester, "error_handler", None), "_restricted_message", None)
        quiet_http_log(self.requester, self.config)

    def send_request(
        self,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
        path: Optional[str] = None,
        request_headers: Optional[Mapping[str, Any]] = None,
        request_params: Optional[Mapping[str, Any]] = None,
        request_body_data: Optional[Union[Mapping[str, Any], str]] = None,
        request_body_json: Optional[Mapping[str, Any]] = None,
        log_formatter: Optional[Callable[[requests.Response], Any]] = None,
    ) -> Optional[requests.Response]:
        def send() -> Optional[requests.Response]:
            return send_explaining_spent_retries(
                self.requester,
                self._stream,
                stream_state=stream_state,
                stream_slice=stream_slice,
                next_page_token=next_page_token,
                path=path,
                request_headers=request_headers,
                request_params=request_params,
                request_body_data=request_body_data,
                request_body_json=request_body_json,
                log_formatter=log_formatter,
            )

        if not self._scope:
            return send()
        sync = sync_state(self.config)
        if sync.restricted and sync.first_failure(self._stream):
            # Another stream found the key restricted: fail this one saying so, without asking Codefresh again.
            message = _DEFAULT_RESTRICTED_MESSAGE
            if self._restricted_message is not None:
                message = str(self._restricted_message.eval(self.config))
            raise AirbyteTracedException(
                message=message, internal_message=message, failure_type=FailureType.config_error
            )
        first = sync.admit(self._stream, self._endpoint)
        if first is None:
            return None
        if not first:
            return send()
        try:
            return send()
        finally:
            sync.done(self._stream, self._endpoint)

    # -- everything else is the wrapped requester's ----------------------------------------------------------------

    def get_authenticator(self) -> DeclarativeAuthenticator:
        return self.requester.get_authenticator()

    def get_url(
        self,
        *,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> str:
        return self.requester.get_url(
            stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token
        )

    def get_url_base(
        self,
        *,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> str:
        return self.requester.get_url_base(
            stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token
        )

    def get_path(
        self,
        *,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> str:
        return self.requester.get_path(
            stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token
        )

    def get_method(self) -> HttpMethod:
        return self.requester.get_method()

    def get_request_params(
        self,
        *,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> MutableMapping[str, Any]:
        return self.requester.get_request_params(
            stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token
        )

    def get_request_headers(
        self,
        *,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Mapping[str, Any]:
        return self.requester.get_request_headers(
            stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token
        )

    def get_request_body_data(
        self,
        *,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Union[Mapping[str, Any], str]:
        return self.requester.get_request_body_data(
            stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token
        )

    def get_request_body_json(
        self,
        *,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
        next_page_token: Optional[Mapping[str, Any]] = None,
    ) -> Mapping[str, Any]:
        return self.requester.get_request_body_json(
            stream_state=stream_state, stream_slice=stream_slice, next_page_token=next_page_token
        )

    def __getattr__(self, name: str) -> Any:
        # Attributes the CDK reads off an HttpRequester (its name, error handler, ...) are the wrapped one's.
        if name == "requester":
            raise AttributeError(name)
        return getattr(self.requester, name)
