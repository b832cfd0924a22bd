"""A hostile proxy in front of a sandbox: it forwards every request to the sandbox, except those its case answers
itself, badly (a gzip bomb, an endless or dripping body, pages that repeat, answers of the wrong shape, build-log
URLs and archives made to leak, loop or exhaust memory). One case is one function; the next hostile answer is one
more entry of `CASES`.

    with SandboxServer(SandboxConfig(**SMALL_ACCOUNT)) as sandbox, HostileProxy(sandbox, "api_gzip_bomb") as proxy:
        config = {"api_key": SANDBOX_API_KEY, "base_url": proxy.base_url}
        proxy.answered                      # how many answers the case gave itself

RUNS says how the connector meets each case (the streams it reads, the config it is given, the sandbox's size), with
the hostile configs besides: integration_tests/test_hostile.py asserts what comes out, scripts/hostile_table.py
measures it.

Build-log cases rewrite the `location.url` of every `/progress/{id}` answer: to an address the connector must refuse,
or to the proxy's own `/logs/...`, where the case serves its archive (signed like the sandbox's, `?Signature=...`).
Only the request line and status are logged, and only with `verbose`; headers never (they hold the API key).
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qs, urlencode, urlsplit

from .common import SANDBOX_API_KEY
from .data import SMALL_ACCOUNT, SandboxConfig
from .server import SandboxServer

MB = 1024 * 1024
# The signature every archive URL of the proxy carries: a test looks for it in the connector's output.
LOG_SIGNATURE = "hostile-proxy-signature-0f9e8d7c6b5a"
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class Exchange:
    """One request the proxy received: what a case reads, and how it answers."""

    def __init__(self, handler: "_Handler") -> None:
        self._handler = handler
        self.proxy: HostileProxy = handler.server.proxy
        parts = urlsplit(handler.path)
        self.method = handler.command
        self.path = parts.path
        self.query = parts.query
        self.params: Dict[str, List[str]] = parse_qs(parts.query, keep_blank_values=True)
        self.headers = handler.headers

    def upstream(self, path: Optional[str] = None, params: Optional[Mapping[str, Any]] = None) -> Tuple[int, Any]:
        """The sandbox's answer to this request (or to `path`/`params` instead), as (status, parsed JSON)."""
        status, _, body = self.proxy.forward(
            self.method,
            path or self.path,
            urlencode(params, doseq=True) if params is not None else self.query,
            self.headers,
        )
        return status, json.loads(body or b"null")

    def send(self, status: int, body: Any = b"", headers: Optional[Mapping[str, str]] = None) -> None:
        """A complete answer: `body` as bytes, or any other value as JSON."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_stream(status, [data], headers, length=len(data))

    def send_stream(
        self,
        status: int,
        chunks: Iterable[bytes],
        headers: Optional[Mapping[str, str]] = None,
        length: Optional[int] = None,
    ) -> None:
        """An answer written as `chunks` come: with a Content-Length of `length`, else chunked. Stops quietly when the
        client goes away (that is how a connector ends an answer it refuses)."""
        handler = self._handler
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length" if length is not None else "Transfer-Encoding", str(length or "chunked"))
        handler.end_headers()
        try:
            for chunk in chunks:
                if length is None:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                else:
                    handler.wfile.write(chunk)
                handler.wfile.flush()
            if length is None:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            handler.close_connection = True


@dataclass(frozen=True)
class Case:
    """A bad answer: the requests whose path `path` matches (a regex searched in the path) get `answer`'s instead of
    the sandbox's. `answer` returns False to let the request through after all."""

    name: str
    what: str
    path: str
    answer: Callable[[Exchange], Optional[bool]]


# ---------------------------------------------------------------------------------------------------------------------
# API answers
# ---------------------------------------------------------------------------------------------------------------------
_BOMB: Dict[int, bytes] = {}


def gzip_bomb(megabytes: int = 400) -> bytes:
    """`{"docs": [{"metadata": {"id": "bomb"}, "spec": "AAA..."}]}` with `megabytes` MB of text, gzip-compressed to
    about a thousandth of that (built once per size, never held uncompressed)."""
    if megabytes not in _BOMB:
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
        parts = [packer.compress(b'{"docs": [{"metadata": {"id": "bomb"}, "spec": "')]
        block = b"A" * MB
        parts.extend(packer.compress(block) for _ in range(megabytes))
        parts.append(packer.compress(b'"}]}') + packer.flush())
        _BOMB[megabytes] = b"".join(parts)
    return _BOMB[megabytes]


def _gzip_bomb(exchange: Exchange) -> None:
    exchange.send(200, gzip_bomb(), {"Content-Encoding": "gzip"})


def _endless_body(exchange: Exchange) -> None:
    item = b'{"metadata": {"id": "endless"}, "spec": "' + b"B" * (MB - 64) + b'"},'
    exchange.send_stream(200, _forever(b'{"docs": [', item))


def _forever(head: bytes, item: bytes) -> Iterator[bytes]:
    yield head
    while True:
        yield item


def _drip(exchange: Exchange) -> None:
    """A page of the right length, one byte a second."""
    body = json.dumps({"docs": [{"metadata": {"id": "drip"}}]}).encode().ljust(4096)

    def bytes_slowly() -> Iterator[bytes]:
        for byte in body:
            yield bytes([byte])
            time.sleep(1)

    exchange.send_stream(200, bytes_slowly(), length=len(body))


def _alternating_pages(exchange: Exchange) -> None:
    """GET /workflow: odd pages hold the listing's first three builds, even pages the next three, each with
    `nextPage: true`, for ever."""
    params = {key: values for key, values in exchange.params.items() if key not in ("page", "offset")}
    _, first = exchange.upstream(params={**params, "page": ["1"]})
    docs = first["workflows"]["docs"]
    page = int((exchange.params.get("page") or ["1"])[0])
    first["workflows"]["docs"] = docs[:3] if page % 2 else docs[3:6]
    first["pagination"] = {**(first.get("pagination") or {}), "nextPage": True}
    exchange.send(200, first)


def _offset_ignored(exchange: Exchange) -> None:
    """Every page is the first one: the server ignores `offset`."""
    params = {key: values for key, values in exchange.params.items() if key != "offset"}
    status, body = exchange.upstream(params=params)
    exchange.send(status, body)


def _answer(body: Any) -> Callable[[Exchange], None]:
    return lambda exchange: exchange.send(200, body)


# ---------------------------------------------------------------------------------------------------------------------
# Build logs: /progress answers that name another URL, and the archives served at the proxy's own /logs/...
# ---------------------------------------------------------------------------------------------------------------------
def _progress_naming(url_of: Callable[[Exchange, str], str]) -> Callable[[Exchange], None]:
    def answer(exchange: Exchange) -> None:
        status, body = exchange.upstream()
        location = body.get("location") if isinstance(body, dict) else None
        if status == 200 and isinstance(location, dict) and location.get("type") != "firebase":
            location["url"] = url_of(exchange, exchange.path.rsplit("/", 1)[-1])
        exchange.send(status, body)

    return answer


def _own_log(exchange: Exchange, progress: str) -> str:
    return f"{exchange.proxy.origin}/logs/{progress}.json?Expires=1999999999&Signature={LOG_SIGNATURE}"


def _archive(steps: Iterable[bytes]) -> Iterator[bytes]:
    """`{"data": {}, "steps": [<step>, <step>, ...]}` from the encoded steps, in pieces of about 1 MB."""
    yield b'{"data": {"started": 1793000000, "finished": 1793000600}, "steps": ['
    batch: List[bytes] = []
    size = 0
    for number, step in enumerate(steps):
        batch.append((b"," if number else b"") + step)
        size += len(step)
        if size >= MB:
            yield b"".join(batch)
            batch, size = [], 0
    yield b"".join(batch) + b"]}"


def _step(name: str, logs: bytes = b'["ok\\n"]', extra: bytes = b"") -> bytes:
    return (
        b'{"name": "%s", "status": "success", "creationTimeStamp": 1793000000, "finishTimeStamp": 1793000010, '
        b'"logs": %s%s}' % (name.encode(), logs, extra)
    )


def many_steps(count: int) -> Iterator[bytes]:
    return _archive(_step(f"step-{number}") for number in range(count))


def fat_step(fields: int, field_kb: int = 60) -> Iterator[bytes]:
    """One step with `fields` extra string fields of `field_kb` kB each (each under the reader's cut per field)."""
    value = b"F" * (field_kb * 1024)

    def chunks() -> Iterator[bytes]:
        yield b'{"data": {}, "steps": [{"name": "fat", "status": "success", "logs": ["ok\\n"]'
        for number in range(fields):
            yield b', "field_%d": "%s"' % (number, value)
        yield b"}]}"

    return chunks()


def endless_log() -> Iterator[bytes]:
    """One step whose log text never ends."""
    yield b'{"data": {}, "steps": [{"name": "endless", "status": "success", "logs": ["'
    line = b"this line repeats for ever\\n" * 40000
    while True:
        yield line


def deep_nesting(depth: int) -> Iterator[bytes]:
    """A step with a field nested `depth` arrays deep."""
    yield b'{"data": {}, "steps": [{"name": "deep", "status": "success", "logs": ["ok\\n"], "metrics": '
    yield b"[" * depth + b"]" * depth
    yield b'}, {"name": "after", "status": "success", "logs": ["after\\n"]}]}'


def serving_log(chunks: Callable[[], Iterable[bytes]]) -> Callable[[Exchange], None]:
    """/progress answers name the proxy's /logs/..., which serves `chunks()`."""

    def answer(exchange: Exchange) -> None:
        if exchange.path.startswith("/api/progress/"):
            _progress_naming(_own_log)(exchange)
        else:
            exchange.send_stream(200, chunks())

    return answer


def _redirect_to(url: str) -> Callable[[Exchange], None]:
    def answer(exchange: Exchange) -> None:
        if exchange.path.startswith("/api/progress/"):
            _progress_naming(_own_log)(exchange)
        else:
            exchange.send(302, b"", {"Location": url})

    return answer


# A private, a link-local and a plain-http address: unroutable or refused, never reached by a correct connector.
PRIVATE_LOG_URL = "https://10.255.255.1/logs/archive.json?Signature=" + LOG_SIGNATURE
LINK_LOCAL_LOG_URL = "https://169.254.169.254/latest/meta-data/iam/security-credentials/"
PLAIN_HTTP_LOG_URL = "http://logs.example.invalid/archive.json?Signature=" + LOG_SIGNATURE
_LOGS = r"^/api/progress/|^/logs/"

CASES: Dict[str, Case] = {
    case.name: case
    for case in (
        Case("api_gzip_bomb", "GET /pipelines: 0.4 MB gzip that unpacks to 400 MB", r"^/api/pipelines$", _gzip_bomb),
        Case("api_endless_body", "GET /pipelines: a chunked body that never ends", r"^/api/pipelines$", _endless_body),
        Case("api_drip", "GET /pipelines: 4 kB at one byte a second", r"^/api/pipelines$", _drip),
        Case(
            "builds_alternating_pages",
            "GET /workflow: two pages of 3 builds in turn, nextPage always true",
            r"^/api/workflow$",
            _alternating_pages,
        ),
        Case(
            "offset_ignored",
            "pipelines, projects, step types, runtime environments: `offset` ignored (every page is the first)",
            r"^/api/(pipelines|projects|step-types|runtime-environments)$",
            _offset_ignored,
        ),
        Case(
            "non_object_items", 'GET /agents: [1, "two", null, [3]]', r"^/api/agents$", _answer([1, "two", None, [3]])
        ),
        Case(
            "progress_is_list",
            "GET /progress/{id}: a list",
            r"^/api/progress/",
            _answer([{"location": {"type": "gcs", "url": "https://x"}}]),
        ),
        Case(
            "environment_without_metadata",
            "GET /environments-v2: an item without `metadata`",
            r"^/api/environments-v2$",
            _answer({"docs": [{"_id": "e1", "spec": {"type": "helm"}}]}),
        ),
        Case(
            "log_url_private",
            "GET /progress/{id}: the archive at https://10.255.255.1 (a private address)",
            r"^/api/progress/",
            _progress_naming(lambda exchange, progress: PRIVATE_LOG_URL),
        ),
        Case(
            "log_url_link_local",
            "GET /progress/{id}: the archive at https://169.254.169.254 (the cloud metadata service)",
            r"^/api/progress/",
            _progress_naming(lambda exchange, progress: LINK_LOCAL_LOG_URL),
        ),
        Case(
            "log_url_plain_http",
            "GET /progress/{id}: the archive at a plain-http URL",
            r"^/api/progress/",
            _progress_naming(lambda exchange, progress: PLAIN_HTTP_LOG_URL),
        ),
        Case(
            "log_redirect_private",
            "log storage: 302 to plain http on a private address",
            _LOGS,
            _redirect_to("http://10.255.255.1/logs/archive.json"),
        ),
        Case("log_many_steps", "an archive of 600,000 small steps", _LOGS, serving_log(lambda: many_steps(600_000))),
        Case(
            "log_fat_step",
            "an archive with one step of 3,000 fields of 60 kB (180 MB)",
            _LOGS,
            serving_log(lambda: fat_step(3000)),
        ),
        Case("log_endless", "an archive whose one step's log never ends", _LOGS, serving_log(endless_log)),
        Case(
            "log_deep_nesting",
            "an archive with a step field nested 100,000 arrays deep",
            _LOGS,
            serving_log(lambda: deep_nesting(100_000)),
        ),
    )
}


# ---------------------------------------------------------------------------------------------------------------------
# The proxy
# ---------------------------------------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, proxy: "HostileProxy") -> None:
        self.proxy = proxy
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a connector that hangs up on a bad answer is the point, not an error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.proxy.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        proxy = self.server.proxy
        exchange = Exchange(self)
        case = proxy.case
        if case is not None and re.search(case.path, exchange.path) and case.answer(exchange) is not False:
            proxy.count()
            return
        length = int(self.headers.get("Content-Length") or 0)
        status, headers, body = proxy.forward(self.command, exchange.path, exchange.query, self.headers)
        if self.rfile and length:
            self.rfile.read(length)
        exchange.send(status, body, {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP})


class HostileProxy:
    """Forwards to `sandbox`, except what `case` (a name of CASES, or a Case) answers itself."""

    def __init__(self, sandbox: SandboxServer, case: "str | Case | None", verbose: bool = False) -> None:
        self.sandbox = sandbox
        self.case: Optional[Case] = CASES[case] if isinstance(case, str) else case
        self.verbose = verbose
        self.answered = 0
        self._lock = threading.Lock()
        self._server: Optional[_Server] = None

    def start(self) -> "HostileProxy":
        self._server = _Server(self)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "HostileProxy":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        assert self._server is not None, "the proxy is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.origin + "/api"

    def count(self) -> None:
        with self._lock:
            self.answered += 1

    def forward(self, method: str, path: str, query: str, headers: Any) -> Tuple[int, Dict[str, str], bytes]:
        """The sandbox's answer, whole (gzip undone), with the request's own headers."""
        connection = http.client.HTTPConnection("127.0.0.1", self.sandbox.port, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "accept-encoding")}
            connection.request(method, f"{path}?{query}" if query else path, headers=sent)
            response = connection.getresponse()
            body = response.read()
            if (response.getheader("Content-Encoding") or "").lower() == "gzip":
                body = gzip.decompress(body)
            return response.status, dict(response.getheaders()), body
        finally:
            connection.close()


# ---------------------------------------------------------------------------------------------------------------------
# How the connector meets each case, and the hostile configs
# ---------------------------------------------------------------------------------------------------------------------
# Stream names, in one place.
PIPELINES, PROJECTS, STEP_TYPES, RUNTIMES = "pipelines", "projects", "step_types", "runtime_environments"
BUILDS, BUILD_LOGS, AGENTS, ENVIRONMENTS = "builds", "build_logs", "agents", "environments"
CONTEXTS, TRIGGERS, TRIGGER_EVENTS, TEAMS = "contexts", "triggers", "trigger_events", "teams"
CUSTOM = "regs"  # a custom stream of GET /registries

ONE_BUILD = dict(SMALL_ACCOUNT, builds=1, unfinished_fraction=0.0)
LOGS = {"sync_build_logs": True}
ZERO_WIDTH_KEY = SANDBOX_API_KEY[:30] + "\u200b" + SANDBOX_API_KEY[30:]


@dataclass(frozen=True)
class Run:
    """One case as the connector meets it: the proxy's `answer` (a name of CASES, or a Case; none: the config is the
    hostile part), the streams it reads (none: `check`), the config on top of the sandbox's key and URL, the
    sandbox's size, and whether the read logs at debug level."""

    name: str
    what: str
    answer: Union[str, Case, None] = None
    streams: Tuple[str, ...] = ()
    config: Dict[str, Any] = field(default_factory=dict)
    account: Dict[str, Any] = field(default_factory=lambda: dict(SMALL_ACCOUNT))
    debug: bool = False

    @contextmanager
    def serving(self) -> Iterator[Tuple[SandboxServer, str]]:
        """A fresh sandbox, behind the proxy when the case is an answer: the sandbox, and the connector's base_url."""
        with SandboxServer(SandboxConfig(**self.account)) as sandbox:
            if self.answer is None:
                yield sandbox, sandbox.base_url
                return
            with HostileProxy(sandbox, self.answer) as proxy:
                yield sandbox, proxy.base_url

    def arguments(self, workdir: Path, base_url: str) -> List[str]:
        """Writes config.json (and catalog.json) into `workdir`; the connector's arguments (`read`, or `check`)."""
        (workdir / "config.json").write_text(
            json.dumps({"api_key": SANDBOX_API_KEY, "base_url": base_url, **self.config})
        )
        if not self.streams:
            return ["check", "--config", "config.json"]
        streams = [
            {
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite",
            }
            for name in self.streams
        ]
        (workdir / "catalog.json").write_text(json.dumps({"streams": streams}))
        return ["read", "--config", "config.json", "--catalog", "catalog.json"] + (["--debug"] if self.debug else [])


def custom(params: Optional[Dict[str, Any]] = None, **entry: Any) -> Dict[str, Any]:
    """A config's custom_streams: GET /registries as stream CUSTOM, with `params` and the entry's other fields."""
    registries = {"name": CUSTOM, "path": "registries", "primary_key": "_id", "pagination": "none"}
    listed = [{"name": name, "value": value} for name, value in (params or {}).items()]
    return {"custom_streams": [{**registries, "params": listed, **entry}]}


def _proxied(name: str, streams: Tuple[str, ...], account: Optional[Dict[str, Any]] = None, **config: Any) -> Run:
    return Run(name, CASES[name].what, name, streams, config, dict(account or SMALL_ACCOUNT))


RUNS: Dict[str, Run] = {
    run.name: run
    for run in (
        Run(
            "zero_width_key_read", "api_key with a zero-width space: read", None, (TEAMS,), {"api_key": ZERO_WIDTH_KEY}
        ),
        Run("zero_width_key_check", "api_key with a zero-width space: check", None, (), {"api_key": ZERO_WIDTH_KEY}),
        Run(
            "debug_secrets",
            "read --debug of contexts, pipelines, triggers, trigger events, registries, build logs",
            None,
            (CONTEXTS, PIPELINES, TRIGGERS, TRIGGER_EVENTS, BUILD_LOGS, CUSTOM),
            {**LOGS, **custom()},
            dict(SMALL_ACCOUNT, builds=3, unfinished_fraction=0.0),
            debug=True,
        ),
        _proxied("log_url_private", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("log_url_link_local", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("log_url_plain_http", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("log_redirect_private", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("api_gzip_bomb", (PIPELINES,)),
        _proxied("api_endless_body", (PIPELINES,)),
        _proxied("api_drip", (PIPELINES,)),
        _proxied("log_many_steps", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("log_fat_step", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("log_endless", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("log_deep_nesting", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("builds_alternating_pages", (BUILDS,)),
        _proxied(
            "offset_ignored",
            (PIPELINES, PROJECTS, STEP_TYPES, RUNTIMES),
            dict(SMALL_ACCOUNT, pipelines=250, projects=130, step_types=230, runtime_environments=120),
        ),
        Run("base_url_broken_ipv6", "base_url http://[::1/api: check", config={"base_url": "http://[::1/api"}),
        Run("base_url_two_ports", "base_url with two ports: check", config={"base_url": "http://127.0.0.1:1:2/api"}),
        Run("num_workers_negative", "num_workers -3: check", config={"num_workers": -3}),
        Run("num_workers_fraction", "num_workers 2.5: check", config={"num_workers": 2.5}),
        _proxied("non_object_items", (AGENTS,)),
        _proxied("progress_is_list", (BUILD_LOGS,), ONE_BUILD, **LOGS),
        _proxied("environment_without_metadata", (ENVIRONMENTS,)),
        Run(
            "custom_primary_key_absent",
            "a custom stream whose primary_key no record has",
            streams=(CUSTOM,),
            config=custom(primary_key="nope"),
        ),
        Run("custom_decrypt_brackets", "custom params decrypt[]: check", config=custom({"decrypt[]": "true"})),
        Run(
            "custom_decrypt_variables_index",
            "custom params decryptVariables[0]: check",
            config=custom({"decryptVariables[0]": "true"}),
        ),
        Run("custom_limit_brackets", "custom params limit[]: check", config=custom({"limit[]": "5"})),
        Run(
            "custom_params_414",
            "a custom stream with a 70,000-character param (HTTP 414)",
            streams=(CUSTOM,),
            config=custom({"q": "x" * 70_000}),
        ),
    )
}
