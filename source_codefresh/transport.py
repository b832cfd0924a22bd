"""Every request the connector sends, to the API and to the build-log storage: where it may go, and what an answer
may cost.

- One URL policy (`url_problem`) for base_url, every request, every redirect and every build-log URL: https only, and
  never an address of this machine (loopback), of its link (link-local: the cloud metadata service at
  169.254.169.254) or a reserved one. A private address (10.0.0.0/8, fc00::/7, ...) is accepted for the API host the
  user configured (an on-premises installation lives on a private network), and for a host Codefresh names (the log
  storage, a redirect) only when the API host is on a private network too. A host name is checked by the addresses it
  resolves to. The test harness, and only it, may use plain http to a loopback address: the environment variable
  `SOURCE_CODEFRESH_TEST_LOOPBACK=1` (CONTRIBUTING.md), which no config can set.
- A cap on every answer's body, counted after decompression (a gzip bomb stops at the cap, not after it), and a
  deadline from its headers to its last byte: a server that sends one byte a second is cut off at the deadline
  instead of being waited for by a read timeout that every byte restarts.

Both apply through `GuardedAuthenticator`, which wraps a requester's authenticator (requests calls the authenticator
on every request it prepares, retries included): it checks the URL, and registers a response hook that checks a
redirect's target before it is followed and bounds the body before anything reads it (the hook runs before requests
reads a body, also for the API's answers that are not streamed).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
import threading
import time
from dataclasses import InitVar, dataclass
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import urljoin, urlsplit

import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator, NoAuth
from airbyte_cdk.sources.types import Config
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.responses import url_without_query
from source_codefresh.spec import default

LOOPBACK_SWITCH = "SOURCE_CODEFRESH_TEST_LOOPBACK"
MB = 1024 * 1024
_RESOLVED_SECONDS = 300  # how long a host name's addresses are reused by the policy


def loopback_allowed() -> bool:
    """Only under the test harness (an environment variable, never a config field)."""
    return os.environ.get(LOOPBACK_SWITCH) == "1"


def api_root(config: Mapping[str, Any]) -> str:
    return str(config.get("api_root") or config.get("base_url") or default("base_url")).strip().rstrip("/")


# ---------------------------------------------------------------------------------------------------------------------
# The URL policy
# ---------------------------------------------------------------------------------------------------------------------
_resolved: Dict[str, Tuple[float, List[str]]] = {}
_resolved_lock = threading.Lock()


def _addresses(host: str) -> List[str]:
    """The addresses `host` stands for (itself when it is one); none when it does not resolve (the request then
    fails by itself, or goes through the proxy the environment names)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    now = time.monotonic()
    with _resolved_lock:
        cached = _resolved.get(host)
    if cached and cached[0] > now:
        return cached[1]
    try:
        found = sorted({str(info[4][0]).split("%", 1)[0] for info in socket.getaddrinfo(host, None)})
    except (OSError, UnicodeError):
        found = []
    with _resolved_lock:
        if len(_resolved) > 1000:
            _resolved.clear()
        _resolved[host] = (now + _RESOLVED_SECONDS, found)
    return found


def _address_problem(text: str, private_ok: bool) -> Optional[str]:
    address = ipaddress.ip_address(text)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return None if loopback_allowed() else f"is this machine's own address ({address})"
    if address.is_link_local:
        return f"is a link-local address ({address}), where cloud machines keep their credentials"
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return f"is a reserved address ({address})"
    if not address.is_global and not private_ok:
        return f"is a private network address ({address}) while the Codefresh API is not on a private network"
    return None


def is_private_host(host: str) -> bool:
    """Whether `host` is on a private network (not the public internet; not this machine)."""
    addresses = [ipaddress.ip_address(a) for a in _addresses(host)]
    return any(not a.is_global and not a.is_loopback for a in addresses)


def url_problem(url: str, private_ok: bool) -> Optional[str]:
    """Why the connector must not fetch `url`, as a clause ("uses plain http", "is ..."); None when it may.
    `private_ok`: whether a private network address is acceptable for this URL's host."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError as error:  # `http://[::1/api`, two ports
        return f"is not a valid URL ({error})"
    if not host or port == 0:
        return "has no host name"
    if (
        parts.scheme == "http"
        and loopback_allowed()
        and all(ipaddress.ip_address(a).is_loopback for a in _addresses(host) or ["0.0.0.0"])
    ):
        return None  # the test harness's plain http to this machine
    if parts.scheme != "https":
        return "does not use https" if parts.scheme == "http" else f"uses '{parts.scheme}', not https"
    for address in _addresses(host):
        problem = _address_problem(address, private_ok)
        if problem:
            return f"names a host that {problem}" if address != host.strip("[]") else problem
    return None


class RefusedUrl(AirbyteTracedException):
    """A request or redirect the URL policy refused (before anything was sent to that URL)."""


class AnswerLimitExceeded(AirbyteTracedException):
    """An answer that passed its size cap or its deadline; `what` says which, as a clause."""

    def __init__(self, what: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.what = what


# ---------------------------------------------------------------------------------------------------------------------
# Bounded answers
# ---------------------------------------------------------------------------------------------------------------------
class _Deadlines:
    """One thread for the process: at an answer's deadline it shuts that answer's connection down, so that a read
    blocked in the middle of a dripping answer returns at once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: Dict[int, "BoundedBody"] = {}
        self._thread: Optional[threading.Thread] = None

    def watch(self, body: "BoundedBody") -> None:
        with self._cond:
            self._due[id(body)] = body
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="source-codefresh-deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def forget(self, body: "BoundedBody") -> None:
        with self._cond:
            self._due.pop(id(body), None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, body in list(self._due.items()):
                    if body.deadline <= now:
                        del self._due[key]
                        body.expire()
                earliest = min((body.deadline for body in self._due.values()), default=None)
                self._cond.wait(None if earliest is None else max(0.0, earliest - now))


_DEADLINES = _Deadlines()


class BoundedBody:
    """A response's `raw` (urllib3's), handing out at most `limit` bytes after decompression, and nothing once the
    server has taken `seconds` to send them. Everything else is the wrapped object's."""

    def __init__(self, raw: Any, limit: int, seconds: float, exceeded: Callable[[str, bool], AnswerLimitExceeded]):
        self._raw = raw
        self._limit = limit
        self._seconds = seconds
        self._exceeded = exceeded
        self.deadline = time.monotonic() + seconds
        self.received = 0
        self._expired = False
        self._socket: Any = getattr(getattr(raw, "connection", None), "sock", None)
        if self._socket is not None:
            _DEADLINES.watch(self)

    def expire(self) -> None:
        """The deadline passed: end any read in progress (a connection already back in its pool is left alone)."""
        self._expired = True
        if getattr(self._raw, "connection", None) is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError, AttributeError):
                pass

    def stream(self, amt: Optional[int] = 2**16, decode_content: Optional[bool] = None) -> Iterator[bytes]:
        try:
            for chunk in self._raw.stream(amt, decode_content=decode_content):
                self._count(len(chunk))
                # The deadline counts the server's time only: while the reader holds a chunk (a build log's reader
                # waits while the platform takes earlier records), the clock stops.
                _DEADLINES.forget(self)
                handed = time.monotonic()
                yield chunk
                self.deadline += time.monotonic() - handed
                if self._socket is not None:
                    _DEADLINES.watch(self)
        except AnswerLimitExceeded:
            raise
        except Exception:
            if self._expired:
                raise self._too_slow() from None
            raise
        finally:
            _DEADLINES.forget(self)
        if self._expired:
            raise self._too_slow()

    def read(self, amt: Optional[int] = None, decode_content: Optional[bool] = None, **kwargs: Any) -> bytes:
        if amt is None:
            return b"".join(self.stream(decode_content=decode_content))
        try:
            data = self._raw.read(amt, decode_content=decode_content, **kwargs)
        except Exception:
            if self._expired:
                raise self._too_slow() from None
            raise
        self._count(len(data))
        return bytes(data)

    def _count(self, size: int) -> None:
        self.received += size
        if self._expired:
            raise self._too_slow()
        if self.received > self._limit:
            self.close()
            raise self._exceeded(f"passed {self._limit // MB:,} MB once decompressed", False)

    def _too_slow(self) -> AnswerLimitExceeded:
        self.close()
        read = f" ({self.received:,} bytes read)" if self.received else ""
        what = f"was not complete after {self._seconds:g} seconds{read}"
        return self._exceeded(what, True)

    def close(self) -> None:
        _DEADLINES.forget(self)
        self._raw.close()

    def release_conn(self) -> None:
        _DEADLINES.forget(self)
        self._raw.release_conn()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


# ---------------------------------------------------------------------------------------------------------------------
# The authenticator that applies both
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class GuardedAuthenticator(DeclarativeAuthenticator):
    """A requester's `authenticator` (none: no credentials, as for the log storage), with the URL policy and the
    answer limits on every request it authenticates. `refused_advice` ends the sentence of a refused URL."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    authenticator: Optional[DeclarativeAuthenticator] = None
    max_answer_mb: Union[int, str] = 64
    answer_seconds: Union[float, str] = 300
    refused_advice: str = "check base_url."
    slow_advice: str = "check the network path to Codefresh and run the sync again."
    large_advice: str = "check that base_url is the Codefresh API and that no proxy in between changes its answers."

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._inner: DeclarativeAuthenticator = self.authenticator or NoAuth(parameters={})
        self._stream = str(parameters.get("reading_for") or parameters.get("name") or "")
        self._limit = int(self.max_answer_mb) * MB
        self._seconds = float(self.answer_seconds)
        self._api_host = urlsplit(api_root(self.config)).hostname or ""
        self._api_private: Optional[bool] = None

    # -- the policy --------------------------------------------------------------------------------------------
    def problem(self, url: str) -> Optional[str]:
        host = urlsplit(url).hostname or ""
        if host == self._api_host:
            return url_problem(url, private_ok=True)
        if self._api_private is None:
            self._api_private = is_private_host(self._api_host)
        return url_problem(url, private_ok=self._api_private)

    def _refuse(self, url: str, problem: str, redirected_from: str = "") -> RefusedUrl:
        how = f"followed the redirect from {redirected_from} to" if redirected_from else "sent the request to"
        message = (
            f"Stream '{self._stream}': the connector never {how} {url_without_query(url)}, because it {problem}; "
            f"{self.refused_advice}"
        )
        return RefusedUrl(message=message, internal_message=message, failure_type=FailureType.config_error)

    # -- requests' hooks -----------------------------------------------------------------------------------------
    def __call__(self, request: requests.PreparedRequest) -> Any:
        problem = self.problem(str(request.url))
        if problem:
            raise self._refuse(str(request.url), problem)
        if self._bound not in request.hooks["response"]:  # a retried request is authenticated again
            request.register_hook("response", self._bound)
        return self._inner(request)

    def _bound(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.is_redirect:
            target = urljoin(response.url, response.headers.get("location", ""))
            problem = self.problem(target)
            if problem:
                response.close()
                raise self._refuse(target, problem, redirected_from=url_without_query(response.url))
        where = f"{response.request.method if response.request else 'GET'} {url_without_query(response.url)}"

        def exceeded(what: str, slow: bool) -> AnswerLimitExceeded:
            detail = f"the answer to {where} {what}"
            message = f"Stream '{self._stream}': {detail}, so the connector stopped reading it: " + (
                self.slow_advice if slow else self.large_advice
            )
            failure = FailureType.transient_error if slow else FailureType.system_error
            return AnswerLimitExceeded(detail, message=message, internal_message=message, failure_type=failure)

        response.raw = BoundedBody(response.raw, self._limit, self._seconds, exceeded)
        return response

    # -- the wrapped authenticator's -------------------------------------------------------------------------
    def get_auth_header(self) -> Mapping[str, Any]:
        return self._inner.get_auth_header()

    def get_request_params(self) -> Mapping[str, Any]:
        return self._inner.get_request_params()

    def get_request_body_data(self) -> Union[Mapping[str, Any], str]:
        return self._inner.get_request_body_data()

    def get_request_body_json(self) -> Mapping[str, Any]:
        return self._inner.get_request_body_json()

    @property
    def auth_header(self) -> str:
        return self._inner.auth_header

    @property
    def token(self) -> str:
        return self._inner.token


_URL_WITH_QUERY = re.compile(r"""https?://[^\s'"<>?]+\?[^\s'"<>]*""")


class _QuietHttpLog(logging.Filter):
    """The CDK's lines about requests (its HTTP client's, its rate budget's; at DEBUG with `--debug`) without an
    answer's body, which holds what the records leave out (context credentials, webhook secrets), and without the
    query of a URL that is not the API's: a signed build-log URL's query is its signature."""

    def __init__(self, api_root: str) -> None:
        super().__init__()
        self._api_root = api_root.rstrip("/") + "/"

    def _quiet(self, found: "re.Match[str]") -> str:
        url = found.group(0)
        return url if url.startswith(self._api_root) else url_without_query(url)

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__  # the CDK's `extra` fields of the record
        if fields.get("body") is not None:
            fields["body"] = f"({len(str(fields['body'])):,} characters, not logged: answers may hold credentials)"
        if fields.get("url"):
            fields["url"] = _URL_WITH_QUERY.sub(self._quiet, str(fields["url"]))
        if isinstance(record.msg, str) and "?" in record.getMessage():
            record.msg, record.args = _URL_WITH_QUERY.sub(self._quiet, record.getMessage()), ()
        return True


def quiet_http_log(requester: Any, config: Mapping[str, Any]) -> None:
    """Puts the filter on the logger the CDK's HTTP client of `requester` (an HttpRequester) logs through, and on the
    one of the CDK's rate budget ("airbyte")."""
    for logger in (getattr(requester, "logger", None), logging.getLogger("airbyte")):
        if isinstance(logger, logging.Logger) and not any(isinstance(f, _QuietHttpLog) for f in logger.filters):
            logger.addFilter(_QuietHttpLog(api_root(config)))


def get_user(config: Mapping[str, Any], timeout: Tuple[float, float]) -> requests.Response:
    """GET {api_root}/user with the key, for its status only (the body is not read, no redirect is followed).
    Raises RefusedUrl when the URL policy refuses base_url, and requests' exceptions."""
    url = f"{api_root(config)}/user"
    problem = url_problem(url, private_ok=True)
    if problem:
        message = f"base_url {problem}: use {default('base_url')}, or https://<your-host>/api on premises."
        raise RefusedUrl(message=message, internal_message=message, failure_type=FailureType.config_error)
    response = requests.get(
        url,
        headers={"Authorization": str(config.get("api_key") or "")},
        timeout=timeout,
        stream=True,
        allow_redirects=False,
    )
    response.close()
    return response
