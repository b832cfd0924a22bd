"""Every request's URL policy and answer limits (source_codefresh/transport.py), against real local servers: what is
refused before a byte is sent, redirects, a gzip bomb, an endless and a dripping body, a slow reader, and the
debug lines of the CDK without bodies and signatures."""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator

from codefresh_sandbox import HARNESS_ENV
from source_codefresh.transport import (
    LOOPBACK_SWITCH,
    AnswerLimitExceeded,
    GuardedAuthenticator,
    RefusedUrl,
    get_user,
    quiet_http_log,
    url_problem,
)

KEY = "transport-test-key.0123456789abcdef0123456789abcdef"
# unit_tests/conftest.py makes time.sleep instant; these servers and readers really wait.
pause = threading.Event().wait


def test_the_harness_switch_is_the_one_the_connector_reads():
    assert HARNESS_ENV == {LOOPBACK_SWITCH: "1"}


# --- the URL policy -------------------------------------------------------------------------------------------------


@pytest.fixture
def production(monkeypatch):
    """No test harness: what a user's machine does."""
    monkeypatch.delenv(LOOPBACK_SWITCH, raising=False)


@pytest.fixture
def resolves(monkeypatch) -> Dict[str, List[str]]:
    """Host names resolved from this table (nothing else resolves), so the policy sees what a DNS server says."""
    table: Dict[str, List[str]] = {}

    def getaddrinfo(host: str, *args: Any, **kwargs: Any) -> List[Any]:
        if host not in table:
            raise socket.gaierror("not in the test's table")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 443)) for address in table[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr("source_codefresh.transport._resolved", {})
    return table


@pytest.mark.parametrize(
    "url, private_ok, refused_because",
    [
        ("https://140.82.114.4/api", False, None),
        ("https://10.1.2.3/api", True, None),  # the configured API host may be on a private network
        ("https://10.1.2.3/logs/a.json", False, "private network address"),
        ("https://[fd00::1]/logs/a.json", False, "private network address"),
        ("https://169.254.169.254/latest/meta-data/", True, "link-local"),
        ("https://[fe80::1]/x", True, "link-local"),
        ("https://127.0.0.1:8443/api", True, "this machine's own address"),
        ("https://[::1]/api", True, "this machine's own address"),
        ("https://[::ffff:127.0.0.1]/api", True, "this machine's own address"),
        ("https://0.0.0.0/api", True, "reserved"),
        ("http://140.82.114.4/api", True, "does not use https"),
        ("http://127.0.0.1:8080/api", True, "does not use https"),
        ("ftp://140.82.114.4/a", True, "uses 'ftp', not https"),
        ("http://[::1/api", True, "not a valid URL"),
        ("https://140.82.114.4:1:2/api", True, "not a valid URL"),
        ("https:///api", True, "no host name"),
    ],
)
def test_the_url_policy(production, resolves, url, private_ok, refused_because):
    problem = url_problem(url, private_ok=private_ok)
    assert (problem is None) if refused_because is None else (refused_because in (problem or "")), problem


@pytest.mark.parametrize(
    "addresses, refused_because",
    [(["127.0.0.1"], "this machine's own address"), (["169.254.169.254"], "link-local"), (["10.9.9.9"], "private")],
)
def test_a_host_name_is_judged_by_the_addresses_it_resolves_to(production, resolves, addresses, refused_because):
    resolves["logs.example.com"] = addresses
    problem = url_problem("https://logs.example.com/a.json?Signature=s3cr3t", private_ok=False)
    assert problem is not None and refused_because in problem and "names a host that" in problem
    assert "s3cr3t" not in problem


def test_the_test_harness_may_use_plain_http_to_this_machine_only(monkeypatch, resolves):
    monkeypatch.setenv(LOOPBACK_SWITCH, "1")
    resolves["localhost"] = ["127.0.0.1"]
    assert url_problem("http://127.0.0.1:8080/api", private_ok=True) is None
    assert url_problem("http://localhost:8080/api", private_ok=True) is None
    assert "does not use https" in (url_problem("http://140.82.114.4/api", private_ok=True) or "")
    assert "link-local" in (url_problem("https://169.254.169.254/", private_ok=True) or "")
    monkeypatch.setenv(LOOPBACK_SWITCH, "yes")  # only "1" turns it on
    assert url_problem("http://127.0.0.1:8080/api", private_ok=True) is not None


def test_the_probe_of_check_refuses_a_base_url_outside_the_policy(production):
    with pytest.raises(RefusedUrl) as refused:
        get_user({"api_key": KEY, "base_url": "http://127.0.0.1:9/api"}, (1, 1))
    assert "does not use https" in refused.value.message and KEY not in refused.value.message


# --- real servers behind the guard --------------------------------------------------------------------------------


class _Server:
    """A local HTTP server answering each path with a function of the handler; counts requests and headers."""

    def __init__(self, routes: Dict[str, Any]) -> None:
        self.seen: List[Dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                try:
                    routes[self.path.split("?")[0]](self)
                except OSError:
                    pass  # the client hung up: how a limit ends an answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _send(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def _endless(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b'{"id": "x"},' * 10_000
    while True:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def _steady(handler: BaseHTTPRequestHandler) -> None:
    """300 kB in ten pieces, 0.05 s apart: half a second of the server's time."""
    handler.send_response(200)
    handler.send_header("Content-Length", "300000")
    handler.end_headers()
    for _ in range(10):
        handler.wfile.write(b"x" * 30_000)
        handler.wfile.flush()
        pause(0.05)


def _drip(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        pause(0.2)


BOMB = gzip.compress(b"[" + b" " * (8 * 1024 * 1024) + b"]")  # 8 MB of JSON in about 8 kB


@pytest.fixture
def server(monkeypatch) -> Iterator[_Server]:
    monkeypatch.setenv(LOOPBACK_SWITCH, "1")
    local = _Server(
        {
            "/ok": lambda h: _send(h, b'{"ok": true}'),
            "/fast": lambda h: _send(h, b"x" * 300_000),
            "/bomb": lambda h: _send(h, BOMB, **{"Content-Encoding": "gzip"}),
            "/endless": _endless,
            "/drip": _drip,
            "/steady": _steady,
            "/away": lambda h: _send(h, b"", 302, Location=local.url("/ok", host="localhost")),
            "/private": lambda h: _send(h, b"", 302, Location="http://10.255.255.1/logs/a.json?Signature=s3cr3t"),
        }
    )
    yield local
    local.close()


class _Key(DeclarativeAuthenticator):
    @property
    def auth_header(self) -> str:
        return "Authorization"

    @property
    def token(self) -> str:
        return KEY


def _session(server: _Server, **limits: Any) -> requests.Session:
    session = requests.Session()
    session.auth = GuardedAuthenticator(
        config={"api_root": server.url("/api")}, parameters={"name": "pipelines"}, authenticator=_Key(), **limits
    )
    return session


def test_a_request_outside_the_policy_is_refused_before_it_is_sent(server, production):
    with pytest.raises(RefusedUrl) as refused:
        _session(server).get(server.url("/ok"))
    assert refused.value.failure_type == FailureType.config_error
    assert refused.value.message.startswith("Stream 'pipelines': the connector never sent the request to http://")
    assert server.seen == []


def test_a_redirect_is_checked_against_the_same_policy_before_it_is_followed(server):
    with pytest.raises(RefusedUrl) as refused:
        _session(server).get(server.url("/private"))
    assert "never followed the redirect" in refused.value.message and "does not use https" in refused.value.message
    assert "s3cr3t" not in refused.value.message


def test_a_redirect_to_another_host_that_the_policy_allows_does_not_carry_the_key(server):
    answer = _session(server).get(server.url("/away"))
    assert answer.json() == {"ok": True}
    first, second = server.seen
    assert first["authorization"] == KEY and "authorization" not in second


@pytest.mark.parametrize("stream", [False, True], ids=["read whole", "streamed"])
@pytest.mark.parametrize("path", ["/bomb", "/endless"])
def test_an_answer_past_the_cap_ends_with_one_sentence_counted_after_decompression(server, path, stream):
    started = time.monotonic()
    with pytest.raises(AnswerLimitExceeded) as exceeded:
        answer = _session(server, max_answer_mb=1).get(server.url(path), stream=stream)
        for _ in answer.iter_content(65536):
            pass
    assert time.monotonic() - started < 30
    assert exceeded.value.failure_type == FailureType.system_error
    assert exceeded.value.message.startswith(f"Stream 'pipelines': the answer to GET {server.url(path)} passed 1 MB")


def test_an_answer_that_drips_ends_at_its_deadline(server):
    started = time.monotonic()
    with pytest.raises(AnswerLimitExceeded) as exceeded:
        _session(server, answer_seconds=1).get(server.url("/drip"))
    assert time.monotonic() - started < 10  # 20 seconds of dripping, cut after one
    assert exceeded.value.failure_type == FailureType.transient_error
    assert "was not complete after 1 seconds" in exceeded.value.message


def test_the_deadline_counts_the_servers_time_not_the_readers(server):
    answer = _session(server, answer_seconds=1).get(server.url("/steady"), stream=True)
    received = 0
    for chunk in answer.iter_content(30_000):
        received += len(chunk)
        pause(0.3)  # a reader that waits on the platform: 3 seconds in all, for half a second of the server's
    assert received == 300_000


def test_answers_within_the_limits_pass_untouched(server):
    session = _session(server, max_answer_mb=1, answer_seconds=5)
    assert session.get(server.url("/ok")).json() == {"ok": True}
    assert len(session.get(server.url("/fast")).content) == 300_000


# --- the CDK's debug lines ----------------------------------------------------------------------------------------


def test_the_cdks_lines_about_requests_leave_out_bodies_and_foreign_queries():
    requester = type("Requester", (), {"logger": logging.getLogger("airbyte.HttpRequester.transport_test")})()
    quiet_http_log(requester, {"api_root": "https://g.codefresh.io/api"})
    records: List[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    requester.logger.addHandler(handler)
    requester.logger.setLevel(logging.DEBUG)
    signed = "https://storage.googleapis.com/logs/a.json?X-Goog-Signature=s3cr3t"
    requester.logger.debug("Receiving response", extra={"body": '{"password": "pw"}', "url": signed})
    requester.logger.debug("Acquiring call for endpoint %s", signed)
    requester.logger.debug("Acquiring call for endpoint https://g.codefresh.io/api/workflow?page=2")

    body_line, budget_line, api_line = records
    assert "pw" not in str(body_line.__dict__["body"]) and "not logged" in str(body_line.__dict__["body"])
    assert body_line.__dict__["url"] == "https://storage.googleapis.com/logs/a.json"
    assert "s3cr3t" not in budget_line.getMessage()
    assert api_line.getMessage().endswith("workflow?page=2")  # the API's own queries are useful and not secret
