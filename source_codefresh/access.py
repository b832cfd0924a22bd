"""What a 403 means, and what one read learns from it: a missing scope (skip that stream, once, with no further
request) or a key Codefresh has restricted for unusual activity (fail, saying so, rather than skip every stream and
end "successfully" with empty streams: in a full-refresh overwrite, emptied tables).

- `RestrictedKey` (error handler): on a 403, asks the key's own `GET /user`, which needs no scope; 403 there too
  fails the stream with the handler's sentence.
- `MissingScope` (error handler): otherwise, a 403 skips the stream with the handler's line, once.
- `ScopeGatedRequester`: what every stream's requests go through. The first request of a stream to each endpoint
  goes alone and the stream's others (other slices, reports, builds, often sent in parallel) wait for its answer;
  once the stream was skipped or failed, none is sent. It also puts the sentence of `source_codefresh/retries.py` on
  spent retries, and keeps answers' bodies out of the HTTP client's debug log.

They share a `ReadAccess`, one per read: SourceCodefresh.read opens it (`one_read`) and the components built for that
read take it when they are built (`this_read`)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import InitVar, dataclass
from typing import Any, Iterator, Mapping, Optional, Set, Tuple

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.requester import Requester
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ErrorResolution
from airbyte_cdk.sources.types import Config
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.error_handlers import PASS, Answer, ErrorRules, decided
from source_codefresh.retries import send_explaining_spent_retries
from source_codefresh.transport import get_user, quiet_http_log

# A 2xx answer of GET /user is trusted this long: a burst of 403s from several streams costs one question, and a key
# restricted later in the same read is still noticed.
_KEY_OK_SECONDS = 60.0
_USER_PROBE_TIMEOUT = (10, 30)


class KeyRestricted(AirbyteTracedException):
    """The key is restricted: raised once per stream (ScopeGatedRequester answers the stream's other requests with
    nothing)."""


class AlreadySkipped(Exception):
    """A 403 of a stream already skipped (a request that was in flight): nothing more to say, no line (an IGNORE
    would log one). ScopeGatedRequester reads it as no answer."""


class ReadAccess:
    """What one read has learned about its API key: whether Codefresh restricted it (from GET /user, asked at most
    once at a time), and, per stream, which endpoints answered, and whether the stream was skipped (missing scope) or
    failed (restricted key). A stream is named by `reading_for`, else `name`: a parent read for a child is the child."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._granted: Set[Tuple[str, str]] = set()
        self._first_in_flight: Set[Tuple[str, str]] = set()
        self._skipped: Set[str] = set()
        self._failed: Set[str] = set()
        self.restricted_sentence: Optional[str] = None  # what the stream that found the key restricted said
        self._probe_lock = threading.Lock()
        self._restricted = False
        self._key_ok_at: Optional[float] = None

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
        return self._mark(self._skipped, stream)

    def first_failure(self, stream: str) -> bool:
        return self._mark(self._failed, stream)

    def _mark(self, streams: Set[str], stream: str) -> bool:
        with self._cond:
            first = stream not in streams
            streams.add(stream)
            self._cond.notify_all()
            return first

    def key_is_restricted(self, config: Mapping[str, Any]) -> bool:
        """Asks GET /user whether the key itself is refused. One question at a time; a 403 there holds for the rest
        of the read, a 2xx answer for a minute. An answer that says neither (a network error, a 5xx) counts as not
        restricted: the stream is skipped as before, with its line."""
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


_THIS_READ: ContextVar[Optional[ReadAccess]] = ContextVar("source_codefresh_read_access", default=None)


@contextmanager
def one_read() -> Iterator[None]:
    """A read: the components built while it runs share one ReadAccess (the CDK builds a read's streams in `read`)."""
    token = _THIS_READ.set(ReadAccess())
    try:
        yield
    finally:
        _THIS_READ.reset(token)


def this_read() -> ReadAccess:
    """The ReadAccess of the read being built; one of its own for a component built outside a read (a check)."""
    return _THIS_READ.get() or ReadAccess()


def stream_of(parameters: Mapping[str, Any]) -> str:
    """The stream a 403 skips or fails: a parent read for a child stream (`reading_for`) is the child."""
    return str(parameters.get("reading_for") or parameters.get("name") or "")


@dataclass
class RestrictedKey(ErrorRules):
    """403 while GET /user answers 403 too: Codefresh restricted the key; the stream fails with the declared sentence
    (a KeyRestricted). Any other 403 is the next handler's."""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._access = this_read()

    def interpret_response(self, response_or_exception: Answer) -> ErrorResolution:
        named = self.named(response_or_exception)
        if named is None or not self._access.key_is_restricted(self.config):
            return PASS
        return decided(named, response_or_exception, KeyRestricted)


@dataclass
class MissingScope(ErrorRules):
    """403 of a stream whose endpoint needs a scope (the key itself is accepted): the stream is skipped with the
    declared line, once; its requests that were already in flight get no answer and no line (AlreadySkipped).
    ScopeGatedRequester sends no further request for it."""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        super().__post_init__(parameters)
        self._access = this_read()
        self._stream = stream_of(parameters)

    def interpret_response(self, response_or_exception: Answer) -> ErrorResolution:
        named = self.named(response_or_exception)
        if named is None:
            return PASS
        if not self._access.mark_skipped(self._stream):
            raise AlreadySkipped(self._stream)
        return decided(named, response_or_exception)


@dataclass
class ScopeGatedRequester:
    """The stream's requester (`requester`) behind the gate of the module's docstring: a missing scope costs one
    request and one line, a restricted key one sentence per stream. Everything but `send_request` is the wrapped
    requester's."""

    requester: Requester
    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._stream = stream_of(parameters)
        # The gate opens per endpoint: a stream may read two (a listing, then one request per listed build).
        self._endpoint = str(parameters.get("endpoint") or "")
        self._access = this_read()
        quiet_http_log(self.requester, self.config)

    def send_request(self, **request: Any) -> Optional[requests.Response]:
        access = self._access
        if access.restricted_sentence and access.first_failure(self._stream):
            # Another stream found the key restricted: fail this one saying so, without asking Codefresh again.
            said = access.restricted_sentence
            raise KeyRestricted(message=said, internal_message=said, failure_type=FailureType.config_error)
        first = access.admit(self._stream, self._endpoint)
        if first is None:
            return None
        try:
            return send_explaining_spent_retries(self.requester, self._stream, **request)
        except AlreadySkipped:
            return None
        except KeyRestricted as restricted:
            access.restricted_sentence = restricted.message
            if access.first_failure(self._stream):
                raise
            return None  # the stream already failed saying so; another of its requests got the same answer
        finally:
            if first:
                access.done(self._stream, self._endpoint)

    def __getattr__(self, name: str) -> Any:
        # What the CDK reads off an HttpRequester (its name, error handler, ...) is the wrapped one's.
        if name == "requester":
            raise AttributeError(name)
        return getattr(self.requester, name)
