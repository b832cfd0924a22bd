"""The error policy's Python parts: Retry-After in both of its forms, and 2xx answers that are not the JSON we expect.

The policy itself (which status does what, and the messages) is declared once in manifest.yaml
(`definitions.error_handler`)."""

from __future__ import annotations

import email.utils
import hashlib
import math
import random
import threading
from dataclasses import InitVar, dataclass
from datetime import datetime, timezone
from typing import Any, List, Mapping, Optional, Tuple, Union, cast

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.interpolation.interpolated_boolean import InterpolatedBoolean
from airbyte_cdk.sources.declarative.requesters.error_handlers import DefaultErrorHandler, HttpResponseFilter
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution, ResponseAction
from airbyte_cdk.sources.types import Config

from source_codefresh.responses import preview, response_json, url_without_query


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
      nested keys such as `workflows.docs`) fails, naming what was missing (for a custom stream, as a config error
      that says to fix its records_key).
    Every message says what was received, never the request headers (they hold the API key).

    A response filter that declares both `http_codes` and a `predicate` applies only when both hold (the CDK
    applies it when either does), so one shared policy can say "403 skips the stream *if* it declares a scope".
    """

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        # The CDK's handler only calls `matches` on each filter (unit_tests/test_cdk_contract.py pins that).
        filters = [
            _StatusAndPredicateFilter(f) if f.http_codes and _has_predicate(f) else f
            for f in self.response_filters or []
        ]
        self.response_filters = cast(List[HttpResponseFilter], filters)
        self._records_path: List[str] = [key for key in str(parameters.get("records_key") or "").split(".") if key]
        self._stream_name: str = str(parameters.get("name") or "")
        self._custom_stream: bool = bool(parameters.get("custom_stream"))
        self._last_page: Optional[Tuple[str, bytes]] = None
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
        where = f"{response.request.method if response.request else 'GET'} {url_without_query(response.url)}"
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
        if isinstance(node, list) and node and self._custom_stream:
            return self._repeated_page(response, where, node)
        if isinstance(node, (list, dict)):
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


    def _repeated_page(self, response: requests.Response, where: str, records: List[Any]) -> Optional[ErrorResolution]:
        """A custom stream whose endpoint ignores the paging parameters its `pagination` sends (say `page` on an
        offset-paged endpoint) gets the same full page for every page number, and its paginator would ask for the
        next one forever. The same records answered to a different request end the read with one sentence."""
        url = response.request.url if response.request is not None else response.url
        fingerprint = hashlib.sha256(orjson.dumps(records)).digest()
        with self._lock:
            previous, self._last_page = self._last_page, (str(url), fingerprint)
        if previous is None or previous[1] != fingerprint or previous[0] == str(url):
            return None
        return ErrorResolution(
            response_action=ResponseAction.FAIL,
            failure_type=FailureType.config_error,
            error_message=(
                f"Codefresh answered {where} with the same {len(records)} records as the page before, so the endpoint "
                f"does not page the way the pagination of custom stream '{self._stream_name}' asks: set its pagination "
                "in custom_streams to the paging the endpoint uses (offset, page or cursor), or to none."
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
