"""The sandbox's HTTP server: routing table, auth, paging sessions, faults, stats and control endpoints.

    server = SandboxServer(SandboxConfig(builds=2000)).start()   # ephemeral port, background thread
    server.base_url                                              # http://127.0.0.1:<port>/api
    server.set_faults([{"match": {"path": "^/api/workflow$"}, "kind": "status", "status": 502, "every": 3}])
    server.stats(); server.reset_stats(); server.advance(new_builds=5); server.expected()
    server.storage_url                                           # http://127.0.0.1:<other port>: the log storage
    server.stop()

HTTP/1.1 with keep-alive (every answer has a Content-Length), one daemon thread per connection. Request headers
are never logged: `Authorization` carries the API key. A second listener on its own port serves the build log
storage that signed URLs point at (progress.py), so the storage is a different origin from the API. The GitOps
GraphQL endpoint, `POST /2.0/api/graphql` (gitops.py), is served on the API's port like the REST API, with the same
latency and faults.
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import sys
import threading
import time
import traceback
from collections import OrderedDict
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

from . import accounts, analytics, audit, builds, images, pipelines, plain, progress, resources
from .common import (
    SANDBOX_API_KEY,
    SANDBOX_LIMITED_API_KEY,
    SANDBOX_RESTRICTED_API_KEY,
    ApiError,
    Request,
    Response,
    Route,
    dumps,
    json_response,
)
from .data import SandboxConfig, SandboxData
from .faults import FaultEngine, FaultRule

API_PREFIX = "/api"
GRAPHQL_PATH = (
    "/2.0/api/graphql"  # on the same host as the REST API [GO `graphqlPath`, TF `DEFAULT_CODEFRESH_API2_URL`]
)
CONTROL_PREFIX = "/_sandbox"
# A folder where every sandbox that stops adds its GraphQL queries and mutations (a line of JSON per sandbox, a file
# per process): the test run's tally (conftest.py prints it and fails the run on a mutation).
TALLY_ENV = "CODEFRESH_SANDBOX_TALLY"
MAX_BODY = 10 * 1024 * 1024
MAX_SESSIONS = 100_000
ROUTES: List[Route] = (
    accounts.ROUTES
    + pipelines.ROUTES
    + builds.ROUTES
    + progress.ROUTES
    + images.ROUTES
    + resources.ROUTES
    + audit.ROUTES
    + analytics.ROUTES
)

LOGIN_PAGE = (
    b'<!DOCTYPE html>\n<html><head><title>Codefresh | Login</title></head>\n<body><form method="post" '
    b'action="/login"><h1>Sign in to Codefresh</h1><input name="email"><input name="password" '
    b'type="password"><button>Log in</button></form></body></html>\n'
)
ERROR_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND_ERROR",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    429: "TOO_MANY_REQUESTS",
    432: "ReportExecutionError",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def error_response(err: ApiError) -> Response:
    return json_response(err.body(), status=err.status, headers=err.headers)


# ---------------------------------------------------------------------------------------------------------------
# cursor-backed paging sessions (/workflow, /images)
# ---------------------------------------------------------------------------------------------------------------
IGNORED_IN_SIGNATURE = {"page", "paginationReset", "paginationDirection"}


class PagingSessions:
    """One server-side cursor per (endpoint, API key, X-Pagination-Session-Id or none).

    Page 1 (re)starts a session and takes a snapshot of the matching records (later builds do not shift it);
    afterwards only the next page, the same page again or the previous page are allowed, with the same filters.
    Anything else is a 400 PAGINATION_ERROR, counted in stats()["pagination_errors"]."""

    def __init__(self, on_error: Callable[[], None]):
        self._lock = threading.Lock()
        self._sessions: "OrderedDict[Tuple[str, str, Optional[str]], List[Any]]" = OrderedDict()
        self._on_error = on_error

    @staticmethod
    def signature(query: Dict[str, List[str]]) -> Tuple[Any, ...]:
        return tuple(sorted((k, tuple(v)) for k, v in query.items() if k not in IGNORED_IN_SIGNATURE))

    def turn(self, family: str, req: Request, page: int, make_snapshot: Callable[[], Any]) -> Any:
        key = (family, req.api_key, req.session_id)
        sig = self.signature(req.query)
        snap = make_snapshot() if page == 1 else None  # outside the lock: it may scan every build
        with self._lock:
            if page == 1:
                self._sessions[key] = [1, sig, snap]
                self._sessions.move_to_end(key)
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
                return snap
            session = self._sessions.get(key)
            if page < 1:
                problem = f"page {page} is not supported: pages start at 1"
            elif session is None:
                problem = f"page {page} requested without a pagination session: request page 1 first"
            elif session[1] != sig:
                problem = f"page {page} requested with other filters than the session's page 1"
            elif page not in (session[0] - 1, session[0], session[0] + 1):
                problem = (
                    f"page {page} requested after page {session[0]}: only the next page, the same page, "
                    f"the previous page or page 1 may follow"
                )
            else:
                session[0] = page
                self._sessions.move_to_end(key)
                return session[2]
        self._on_error()
        sid = f" (session {req.session_id!r})" if req.session_id else " (the key's shared session)"
        raise ApiError(400, "PAGINATION_ERROR", "Invalid pagination: " + problem + sid, code="400")

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------------------------
class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], app: "SandboxServer", handler: Optional[type] = None):
        self.app = app
        self._conns: set = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, handler or _Handler)

    def server_bind(self) -> None:
        # skip HTTPServer.server_bind's reverse DNS lookup (socket.getfqdn)
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._conns_lock:
            (self._conns.add if alive else self._conns.discard)(conn)

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout)):
            return
        if self.app.config.verbose:
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "CodefreshSandbox/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after 5 minutes
    server: _HTTPServer

    # connection lifecycle -----------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        # Only the request line and status are ever logged, never headers (Authorization is a secret).
        if self.server.app.config.verbose:
            sys.stderr.write(f"[sandbox] {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # reading and writing ------------------------------------------------------------------------------------
    def _read_body(self) -> Optional[bytes]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
                total += size
                if total > MAX_BODY:
                    return None
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    counts_api_status = True  # the storage listener keeps its own counts

    def _send(self, resp: Response) -> None:
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(resp.length if resp.chunks is not None else len(resp.body)))
            for name, value in resp.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()  # TCP_NODELAY is on: headers and body go out at once without a copy
            if resp.chunks is not None:  # a streamed body: written as it is generated, never held whole
                for chunk in resp.chunks:
                    self.wfile.write(chunk)
            elif resp.body:
                self.wfile.write(resp.body)
            if self.counts_api_status:
                self.server.app._count_status(resp.status, len(resp.body))
        except OSError:
            self.close_connection = True

    def _drop(self) -> None:
        """Close the connection without writing anything (not even a status line)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # dispatch -----------------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        app = self.server.app
        method = self.command
        split = urlsplit(self.path)
        path = split.path
        try:
            body = self._read_body()
        except (ValueError, OSError):
            body = None
        if body is None:
            self.close_connection = True
            self._send(error_response(ApiError(400, "BAD_REQUEST", "Unreadable or too large request body")))
            return
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._send(app._control(method, path[len(CONTROL_PREFIX) :].rstrip("/"), body))
            return

        route, params = app.match(method, path)
        graphql = path == GRAPHQL_PATH
        app._count_request(
            f"{method} {GRAPHQL_PATH}"
            if graphql
            else f"{method} {API_PREFIX}{route.template}"
            if route
            else f"{method} (unmatched)"
        )
        if not graphql and path != API_PREFIX and not path.startswith(API_PREFIX + "/"):  # no latency, no faults
            self._send(error_response(ApiError(404, "NOT_FOUND_ERROR", f"Cannot {method} {path}", code="101")))
            return
        if app.latency_ms > 0:
            time.sleep(app.latency_ms / 1000.0)
        rule = app.faults.pick(method, path)
        if rule is not None and rule.kind == "slow":
            time.sleep(rule.seconds)
            rule = None
        if rule is not None and not rule.after_processing and rule.kind != "malformed":
            self._fault(rule)
            return
        if rule is not None and rule.kind == "malformed" and method != "GET" and not graphql:
            resp = Response(200, b'{"docs":[{"id":"5f')
        else:
            resp = self._process(app, method, path, split.query, route, params, body)
        if rule is not None:
            if rule.kind == "malformed":
                resp = Response(200, resp.body[: max(1, len(resp.body) // 2)])
            else:  # after_processing: the work is done, the answer is lost
                self._fault(rule)
                return
        self._send(resp)

    def _process(
        self,
        app: "SandboxServer",
        method: str,
        path: str,
        query: str,
        route: Optional[Route],
        params: Dict[str, str],
        body: bytes,
    ) -> Response:
        key = self.headers.get("Authorization")
        if path == GRAPHQL_PATH:  # its own auth answers and errors (gitops.py)
            return app.graphql(method, key, body)
        if key == SANDBOX_RESTRICTED_API_KEY:
            # The body of this 403 is the sandbox's guess (the docs give only the status): a client must not rely
            # on it; GET /user answering 403 too is what tells a restricted key from a missing scope.
            return error_response(
                ApiError(
                    403,
                    "FORBIDDEN",
                    "Forbidden: access for this API key has been restricted due to unusual activity",
                    code="1003",
                )
            )
        if key not in (SANDBOX_API_KEY, SANDBOX_LIMITED_API_KEY):
            return error_response(ApiError(401, "UNAUTHORIZED", "Unauthorized: invalid API key", code="1001"))
        if route is None:
            return error_response(ApiError(404, "NOT_FOUND_ERROR", f"Cannot {method} {path}", code="101"))
        if route.restricted and key == SANDBOX_LIMITED_API_KEY:
            return error_response(
                ApiError(
                    403,
                    "FORBIDDEN",
                    "Forbidden: the API key does not have the scope needed for this resource",
                    code="1003",
                )
            )
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError:
            return error_response(ApiError(400, "BAD_REQUEST", "The request body is not valid JSON"))
        req = Request(
            method=method,
            path=path,
            query=parse_qs(query, keep_blank_values=True),
            params=params,
            body=parsed,
            api_key=key,
            session_id=self.headers.get("X-Pagination-Session-Id"),
            data=app.data,
            app=app,
        )
        try:
            return route.handler(req)
        except ApiError as err:
            return error_response(err)
        except Exception:  # a sandbox bug: say so, without request headers
            traceback.print_exc()
            return error_response(ApiError(500, "INTERNAL_SERVER_ERROR", "Sandbox error (see its stderr)"))

    def _fault(self, rule: FaultRule) -> None:
        kind = rule.kind
        if kind == "drop":
            self._drop()
            return
        headers: Dict[str, str] = {}
        if rule.retry_after is not None:
            headers["Retry-After"] = (
                formatdate(time.time() + 2, usegmt=True) if rule.retry_after == "http-date" else rule.retry_after
            )
        if kind == "html":
            self._send(Response(200, LOGIN_PAGE, content_type="text/html; charset=utf-8", headers=headers))
            return
        if kind == "rate_limit":
            err = ApiError(
                429,
                "TOO_MANY_REQUESTS",
                "Too many requests: the API key is over its rate limit",
                code="429",
                headers=headers,
            )
        elif kind == "forbidden":
            err = ApiError(
                403,
                "FORBIDDEN",
                "Forbidden: the API key does not have the scope needed for this resource",
                code="1003",
                headers=headers,
            )
        else:
            status = rule.status
            err = ApiError(
                status,
                ERROR_NAMES.get(status, "ERROR"),
                f"Sandbox fault: HTTP {status}",
                code=str(status),
                headers=headers,
            )
        self._send(error_response(err))


class _StorageHandler(_Handler):
    """The build log storage's port: signed URLs only (progress.serve_storage); latency and faults apply."""

    counts_api_status = False

    def _dispatch(self) -> None:
        app = self.server.app
        split = urlsplit(self.path)
        try:
            self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
        if app.latency_ms > 0:
            time.sleep(app.latency_ms / 1000.0)
        rule = app.faults.pick(self.command, split.path)
        if rule is not None and rule.kind == "slow":
            time.sleep(rule.seconds)
            rule = None
        if rule is not None and rule.kind != "malformed":
            app.count_storage_request(has_authorization=self.headers.get("Authorization") is not None)
            self._fault(rule)
            return
        resp = progress.serve_storage(app, self.command, split.path, split.query, self.headers)
        if rule is not None:  # malformed: the archive cut in the middle
            body = resp.body if resp.chunks is None else b"".join(resp.chunks)
            resp = Response(resp.status, body[: max(1, len(body) // 2)], content_type=resp.content_type)
        self._send(resp)


# ---------------------------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------------------------
class SandboxServer:
    """A Codefresh API look-alike on a background thread. See the module docstring and README.md."""

    def __init__(self, config: Optional[SandboxConfig] = None, tally: bool = True):
        """`tally`: add this sandbox's GraphQL operations to the run's tally (TALLY_ENV) when it stops; False for a
        test that sends mutations itself, on purpose."""
        self.config = config or SandboxConfig()
        self._tally: Optional[Dict[str, int]] = {"query": 0, "mutation": 0} if tally else None
        self.data = SandboxData(self.config)
        self.faults = FaultEngine()
        self.latency_ms = float(self.config.latency_ms or 0)
        self._stats_lock = threading.Lock()
        self.sessions = PagingSessions(self._count_pagination_error)
        self._static: Dict[Tuple[str, str], Route] = {}
        self._dynamic: List[Route] = []
        for r in ROUTES + plain.routes():  # the plain endpoints' entries, as they are now
            if r.names:
                self._dynamic.append(r)
            else:
                self._static[(r.method, r.template.rstrip("/") or "/")] = r
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._storage_httpd: Optional[_HTTPServer] = None
        self._storage_thread: Optional[threading.Thread] = None
        self._graphql_endpoint: Any = None  # gitops.Endpoint, made on the first GraphQL request
        self.reset_stats()
        self.set_faults(list(self.config.faults or []))

    # lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> "SandboxServer":
        """Bind (port 0 = ephemeral), listen, serve on a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.config.host, self.config.port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"codefresh-sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._storage_httpd = _HTTPServer((self.config.host, self.config.storage_port), self, _StorageHandler)
        self._storage_thread = threading.Thread(
            target=self._storage_httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"codefresh-sandbox-storage:{self.storage_port}",
        )
        self._storage_thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the listening socket; add its GraphQL operations to the run's
        tally."""
        tally_dir = os.environ.get(TALLY_ENV)
        if tally_dir and self._tally and any(self._tally.values()):
            with open(os.path.join(tally_dir, f"{os.getpid()}.jsonl"), "a") as tally:
                tally.write(json.dumps(self._tally) + "\n")
            self._tally = {key: 0 for key in self._tally}
        for server_attr, thread_attr in (("_storage_httpd", "_storage_thread"), ("_httpd", "_thread")):
            httpd = getattr(self, server_attr)
            setattr(self, server_attr, None)
            if httpd is None:
                continue
            httpd.shutdown()
            httpd.close_connections()
            httpd.server_close()
            thread = getattr(self, thread_attr)
            if thread is not None:
                thread.join(timeout=5)
                setattr(self, thread_attr, None)

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._httpd.server_address[1])

    def _origin(self, port: int) -> str:
        """http://<host>:<port>, with 127.0.0.1 for a server bound to every interface."""
        host = self.config.host if self.config.host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port> (the control endpoints are under /_sandbox)."""
        return self._origin(self.port)

    @property
    def base_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def storage_port(self) -> int:
        if self._storage_httpd is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._storage_httpd.server_address[1])

    @property
    def storage_url(self) -> str:
        """http://127.0.0.1:<storage port>: the origin of the build log storage (another port than the API's)."""
        return self._origin(self.storage_port)

    # routing --------------------------------------------------------------------------------------------------
    def match(self, method: str, path: str) -> Tuple[Optional[Route], Dict[str, str]]:
        if path != API_PREFIX and not path.startswith(API_PREFIX + "/"):
            return None, {}
        sub = path[len(API_PREFIX) :].rstrip("/") or "/"
        r = self._static.get((method, sub))
        if r is not None:
            return r, {}
        for r in self._dynamic:
            if r.method == method:
                m = r.regex.match(sub)
                if m:
                    return r, {name: unquote(v) for name, v in zip(r.names, m.groups(), strict=True)}
        return None, {}

    # faults and latency ---------------------------------------------------------------------------------------
    def set_faults(self, rules: List[Dict[str, Any]]) -> None:
        """Replace the fault rules (and reset their counters). Raises ValueError for an invalid rule."""
        self.faults.set_rules(rules)
        self.data.deleted_every = self.faults.deleted_every()

    def clear_faults(self) -> None:
        self.set_faults([])

    def set_latency(self, ms: float) -> None:
        self.latency_ms = float(ms)

    def build_deleted(self, req: Request, st: Any) -> bool:
        if st.is_run or not self.data.deleted_every:
            return False
        return self.faults.build_deleted(req.method, req.path, st.index + 1)

    def analytics_gate(self, req: Request, key: Tuple[Any, ...]) -> None:
        rule = self.faults.analytics_not_ready(req.method, req.path, key)
        if rule is not None:
            headers = {"Retry-After": rule.retry_after} if rule.retry_after else None
            raise ApiError(
                432, "ReportExecutionError", "analytics report not finished yet", code="432", headers=headers
            )

    # stats ----------------------------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        with self._stats_lock:
            self._requests = 0
            self._by_route: Dict[str, int] = {}
            self._by_status: Dict[int, int] = {}
            self._response_bytes = 0
            self._posts: Dict[str, int] = {}
            self._pagination_errors = 0
            self._progress_deletes = 0
            self._storage = {"requests": 0, "with_authorization": 0}
            self._graphql: Dict[str, Any] = {"query": 0, "mutation": 0, "subscription": 0, "unparsable": 0}
            self._graphql_fields: Dict[str, int] = {}
        self.faults.reset_fired()

    def stats(self) -> Dict[str, Any]:
        """{requests, by_route, by_status, response_bytes, posts, pagination_errors, progress_deletes, faults_fired}
        of /api requests (response_bytes: the answers' bodies), storage: {requests, with_authorization} of the log
        storage's port, and graphql: {query, mutation, subscription, unparsable, by_field} of POST /2.0/api/graphql
        (operations by type, each counted before validation, so a rejected mutation counts; by_field: the root fields
        of executed queries). by_status and faults_fired have int keys here (strings in the JSON of /_sandbox/stats)."""
        with self._stats_lock:
            out = {
                "requests": self._requests,
                "by_route": dict(self._by_route),
                "by_status": dict(self._by_status),
                "response_bytes": self._response_bytes,
                "posts": dict(self._posts),
                "pagination_errors": self._pagination_errors,
                "progress_deletes": self._progress_deletes,
                "storage": dict(self._storage),
                "graphql": {**self._graphql, "by_field": dict(self._graphql_fields)},
            }
        out["faults_fired"] = self.faults.fired_counts()
        return out

    def _count_request(self, route_name: str) -> None:
        with self._stats_lock:
            self._requests += 1
            self._by_route[route_name] = self._by_route.get(route_name, 0) + 1

    def _count_status(self, status: int, body_bytes: int = 0) -> None:
        with self._stats_lock:
            self._response_bytes += body_bytes
            self._by_status[status] = self._by_status.get(status, 0) + 1

    def _count_pagination_error(self) -> None:
        with self._stats_lock:
            self._pagination_errors += 1

    def count_progress_delete(self) -> None:
        with self._stats_lock:
            self._progress_deletes += 1

    def count_storage_request(self, has_authorization: bool) -> None:
        with self._stats_lock:
            self._storage["requests"] += 1
            self._storage["with_authorization"] += int(has_authorization)

    def count_graphql(self, operations: List[str], fields: List[str]) -> None:
        with self._stats_lock:
            for op in operations:
                self._graphql[op] += 1
                if self._tally is not None and op in self._tally:
                    self._tally[op] += 1
            for name in fields:
                self._graphql_fields[name] = self._graphql_fields.get(name, 0) + 1

    def graphql(self, method: str, authorization: Optional[str], body: bytes) -> Response:
        """POST /2.0/api/graphql (gitops.py, imported here: the REST sandbox runs without graphql-core)."""
        if self._graphql_endpoint is None:
            with self._stats_lock:
                if self._graphql_endpoint is None:
                    try:
                        from .gitops import Endpoint
                    except ImportError:
                        message = "The sandbox's GraphQL endpoint needs graphql-core (requirements-dev.lock)."
                        return json_response({"errors": [{"message": message}]}, status=501)
                    self._graphql_endpoint = Endpoint(self)
        return self._graphql_endpoint.serve(method, authorization, body)

    def count_post(self, pipeline: str) -> None:
        with self._stats_lock:
            self._posts[pipeline] = self._posts.get(pipeline, 0) + 1

    # data -----------------------------------------------------------------------------------------------------
    def advance(self, **change: Any) -> Dict[str, Any]:
        """Move the sandbox on: the arguments and the answer are SandboxData.advance's."""
        return self.data.advance(**change)

    def expected(self) -> Dict[str, int]:
        return self.data.expected_counts()

    # control endpoints (no auth, never faulted) ---------------------------------------------------------------
    def _control(self, method: str, path: str, body: bytes) -> Response:
        try:
            payload = json.loads(body) if body.strip() else None
        except ValueError:
            return json_response({"error": "body is not JSON"}, status=400)
        if method == "GET" and path == "/stats":
            return Response(200, dumps(self.stats()))
        if method == "POST" and path == "/reset-stats":
            self.reset_stats()
            return json_response({"ok": True})
        if method == "GET" and path == "/faults":
            return json_response(self.faults.rules())
        if method == "POST" and path == "/faults":
            try:
                self.set_faults(payload if payload is not None else [])
            except (ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, status=400)
            return json_response({"ok": True, "rules": len(payload or [])})
        if method == "POST" and path == "/advance":
            p = payload or {}
            if not isinstance(p, dict):
                return json_response({"error": "advance takes a JSON object"}, status=400)
            try:
                out = self.advance(
                    new_builds=int(p.get("new_builds", 0)),
                    finish_running=bool(p.get("finish_running", True)),
                    minutes=float(p.get("minutes", 60)),
                    new_unfinished=int(p.get("new_unfinished", 0)),
                    keep_running=[str(i) for i in p.get("keep_running") or []],
                    spread_unfinished=bool(p.get("spread_unfinished", False)),
                    new_gitops=int(p.get("new_gitops", 0)),
                )
            except (TypeError, ValueError) as exc:
                return json_response({"error": str(exc)}, status=400)
            return json_response(out)
        if method == "POST" and path == "/latency":
            try:
                self.set_latency(float((payload or {}).get("latency_ms", 0)))
            except (TypeError, ValueError, AttributeError) as exc:
                return json_response({"error": str(exc)}, status=400)
            return json_response({"ok": True, "latency_ms": self.latency_ms})
        if method == "GET" and path == "/expected":
            return json_response(self.expected())
        return json_response({"error": f"unknown control endpoint {method} {CONTROL_PREFIX}{path}"}, status=404)
