"""Retrying: how long to wait (Retry-After, in both of its forms, with jitter) and, once the retries of a request are
spent, one sentence that says so and what to do. How often and how long is `definitions.retry_policy`."""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import InitVar, dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Union

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.streams.http.error_handlers import BackoffStrategy
from airbyte_cdk.sources.types import Config
from airbyte_cdk.utils.traced_exception import AirbyteTracedException


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


# What the CDK says when a request's retries are spent (airbyte_cdk/sources/streams/http/http_client.py,
# `_send_with_retry`): a bare "API rate limit exceeded." after 429s, and "Exhausted available request attempts.
# Please see logs for more details. Exception: <the handler's line>" after anything else. Neither says what to do.
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


def send_explaining_spent_retries(requester: Requester, stream: str, **request: Any) -> Optional[requests.Response]:
    """`requester.send_request(**request)`, with the CDK's words for spent retries replaced by one sentence that names
    the stream and says what to do. Only these transient cases are rewritten (the sync may be run again as is);
    any other error passes unchanged."""
    try:
        return requester.send_request(**request)
    except AirbyteTracedException as error:
        message = str(error.message or "")
        reason = spent_retries_reason(message, getattr(getattr(requester, "error_handler", None), "max_time", None))
        if reason is None:
            raise
        if message == _CDK_RATE_LIMIT_SPENT:
            advice = (
                "lower max_requests_per_minute or num_workers (other tools may share the key's limit), then run the "
                "sync again."
            )
        else:
            advice = (
                "this is on Codefresh's side or the network's: check https://status.codefresh.io and run the sync "
                "again later."
            )
        text = f"Stream '{stream}': {reason}; {advice}"
        spent = AirbyteTracedException(
            message=text, internal_message=error.internal_message, failure_type=FailureType.transient_error
        )
        raise spent from error
