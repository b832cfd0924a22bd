"""Progress family: a build's progress (logs) job, and the log storage its signed URLs point at.

    GET    /progress/{id}             object    {_id, id, account, status, created, location: {type, url}}
                                                (id = the build's `progress`); a finished build's location is
                                                `{type: "gcs", url: <signed storage URL>}`, a live one's
                                                `{type: "firebase", url: https://...firebaseio.com/...}`
    GET    /progress/download/{id}    text      the whole log as one page (a header line per step)
    DELETE /progress/{id}             object    TERMINATES the build (counted in stats()["progress_deletes"]);
                                                a source must never send it
    GET    <storage>/sandbox-build-logs/{account}/{progress}.json?X-Sandbox-...
                                      JSON      {data: {started, finished}, steps: [...] | {name: step}}, each step
                                                {name, status, creationTimeStamp, finishTimeStamp (epoch s),
                                                logs: [...] | {push-id: chunk}}

The storage is served on its own port (a different origin from the API, as Google Cloud Storage is for Codefresh
SaaS) and never looks at `Authorization`, except to count requests that carried one
(stats()["storage"]["with_authorization"]): a signed URL is fetched without the API key. Its answers:
200 (the archive, streamed), 403 `AccessDenied` (expired: `build_log_expired_every`), 403
`SignatureDoesNotMatch` (the URL was altered on the way, e.g. re-encoded), 404 `NoSuchKey` (no archive: a live
build, or `build_log_missing_every`), as XML error bodies like S3's.

Everything is generated on demand from the build's seed, so a build's log is the same on every request. A huge
log (`build_log_huge_every`, `build_log_huge_mb`) is streamed in 1 MB chunks, never held whole.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl

from .common import Request, Response, dumps, json_response, not_found, parse_iso_ms, route

STORAGE_BUCKET = "sandbox-build-logs"
_SIGNING_KEY = b"codefresh-sandbox-log-signing-key"
# A credential scope with percent-encoded slashes, as real signed URLs have: a client that re-encodes the URL breaks
# the signature and gets 403 SignatureDoesNotMatch.
_CREDENTIAL = "sandbox-logs%2F20261101%2Fauto%2Fstorage"
LOG_SHAPES = ("list", "object", "mixed")
HUGE_CHUNK_CHARS = 1024 * 1024

# ---------------------------------------------------------------------------------------------------------------
# log text
# ---------------------------------------------------------------------------------------------------------------
GREEN, RED, YELLOW, CYAN, RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[0m"
_LINES: Dict[str, List[str]] = {
    "builtin": [
        "Pulling image codefresh/cf-container-logger:1.10.4",
        "Reading pipeline volume",
        f"{CYAN}Preparing environment{RESET}",
        "Mounting volume /codefresh/volume",
    ],
    "git-clone": [
        "Cloning into '{repo}'...",
        "remote: Enumerating objects: 1432, done.",
        "Receiving objects: 100% (1432/1432), 2.31 MiB | 18.2 MiB/s, done.",
        "Switched to a new branch '{branch}'",
        "HEAD is now at {sha} {message}",
    ],
    "build": [
        "#5 [build 2/6] RUN npm ci --no-audit",
        "#7 [build 4/6] COPY . .",
        "#9 exporting layers 0.8s done",
        "Step 4/12 : RUN make build",
        " ---> Using cache",
        "Successfully tagged acme/{repo}:{sha}",
        f"{YELLOW}warning{RESET} deprecated package: request@2.88.2",
    ],
    "push": [
        "The push refers to repository [r.example.com/acme/{repo}]",
        "{sha}: digest: sha256:{digest} size: 2417",
        "Pushed tag {sha}",
    ],
    "freestyle": [
        "Executing command: npm test",
        "  ✓ parses the config (3 ms)",
        "  ✓ answers 200 — OK (12 ms)",
        f"{GREEN}PASS{RESET} test/handler.test.js",
        "Tests: 42 passed, 42 total",
        "Zeit: 4,2 s — fertig ✔",
    ],
    "deploy": [
        "helm upgrade --install {repo} ./chart --namespace staging",
        'Release "{repo}" has been upgraded.',
        "deployment.apps/{repo} successfully rolled out",
    ],
    "pending-approval": ["Waiting for approval", "Approved by ada.lovelace"],
}
_FAILED_LINE = f"{RED}✖ Step failed with exit code 1{RESET}"


def _lines_for(kind: str) -> List[str]:
    if kind in _LINES:
        return _LINES[kind]
    if "deploy" in kind or "helm" in kind:
        return _LINES["deploy"]
    return _LINES["freestyle"]


def _push_id(rng: random.Random, ms: int, n: int) -> str:
    """A Firebase push id: time-ordered, so keys sort in the order the chunks were written."""
    alphabet = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
    stamp = ms * 1000 + n
    head = ""
    for _ in range(8):
        head = alphabet[stamp % 64] + head
        stamp //= 64
    return head + "".join(alphabet[rng.getrandbits(6)] for _ in range(12))


def _step_chunks(st: Any, name: str, kind: str, status: str, j: int) -> List[str]:
    """The chunks a step's logger wrote: 1-4 lines each, every line ending in \\n except that a line is sometimes
    split over two chunks (chunks are pieces of a stream, not lines)."""
    rng = random.Random(st.seed * 31 + j)
    doc = st.doc
    values = {
        "repo": st.pipeline.repo["name"],
        "branch": doc.get("branchName") or "main",
        "sha": (doc.get("revision") or "0" * 40)[:7],
        "message": doc.get("commitMessage") or "",
        "digest": f"{rng.getrandbits(256):064x}",
    }
    pool = _lines_for(kind)
    lines = [rng.choice(pool).format(**values) for _ in range(rng.randint(2, 14))]
    if status in ("error", "failure"):
        lines.append(_FAILED_LINE)
    text = "".join(line + ("\r\n" if kind == "builtin" else "\n") for line in lines)
    chunks: List[str] = []
    at = 0
    while at < len(text):
        end = text.find("\n", at + rng.randint(1, 120))
        end = len(text) if end < 0 else end + 1
        if rng.random() < 0.15 and end - at > 4:  # a line split over two chunks
            end = at + (end - at) // 2
        chunks.append(text[at:end])
        at = end
    return chunks


def _shapes(data: Any, st: Any) -> Tuple[str, str]:
    """(steps shape, logs shape): `list` or `object` each. `mixed` draws them per build."""
    shape = getattr(data.config, "build_log_shape", "mixed")
    if shape in ("list", "object"):
        return shape, shape
    rng = random.Random(st.seed ^ 0x5EED)
    return rng.choice(LOG_SHAPES[:2]), rng.choice(LOG_SHAPES[:2])


def _is_every(n: int, st: Any) -> bool:
    return bool(n) and not st.is_run and (st.index + 1) % n == 0


def is_huge(data: Any, st: Any) -> bool:
    return _is_every(data.config.build_log_huge_every, st)


def _epoch_s(text: Optional[str]) -> Optional[int]:
    return None if text is None else parse_iso_ms(text) // 1000


def log_steps(data: Any, st: Any) -> List[Dict[str, Any]]:
    """The steps of a build's log, without the huge step's text: [{name, type, status, creationTimeStamp,
    finishTimeStamp, chunks (None for the huge step)}]. Caller holds nothing; takes the data lock itself."""
    from .builds import steps_metadata

    with data.lock:
        steps = steps_metadata(st, data.clock_ms)
    huge_at = 2 if is_huge(data, st) and len(steps) > 2 else None  # the first pipeline step after the pseudo-steps
    out = []
    process = steps.get("Initializing Process") or {}
    for j, (name, meta) in enumerate(steps.items()):
        if name in ("Initializing Process", "Initializing"):
            # The log archive lists both pseudo-steps with a type and times; in stepsMetadata `Initializing Process`
            # has no type and `Initializing` only a container id (the KB's example), so they take the process's.
            meta = {**process, "type": "builtin"}
        out.append(
            {
                "name": name,
                "type": meta["type"],
                "status": meta["status"],
                "creationTimeStamp": _epoch_s(meta["startTimestamp"]),
                "finishTimeStamp": _epoch_s(meta["finishTimestamp"]),
                "chunks": None if j == huge_at else _step_chunks(st, name, meta["type"], meta["status"], j),
            }
        )
    return out


def expected_log_text(data: Any, st: Any) -> Dict[str, Optional[str]]:
    """For tests: step name -> the step's whole log text as the archive holds it (None for a huge step)."""
    return {s["name"]: None if s["chunks"] is None else "".join(s["chunks"]) for s in log_steps(data, st)}


_HUGE_LINE = f"{GREEN}[huge]{RESET} a very talkative step prints this line again and again — ✔\n"


def huge_log_size(data: Any) -> int:
    """The size in UTF-8 bytes of a huge step's log text."""
    return _huge_chunk_count(data) * len(_huge_text().encode("utf-8"))


def _huge_text() -> str:
    return _HUGE_LINE * (HUGE_CHUNK_CHARS // len(_HUGE_LINE))


def _huge_chunk_count(data: Any) -> int:
    return max(1, round(data.config.build_log_huge_mb * 1024 * 1024 / len(_huge_text().encode("utf-8"))))


def _archive_parts(data: Any, st: Any) -> Iterator[bytes]:
    """The archive's JSON, piece by piece (a huge step's text as one encoded 1 MB chunk, yielded again and again)."""
    steps_shape, logs_shape = _shapes(data, st)
    rng = random.Random(st.seed ^ 0x1065)
    yield b'{"data":' + dumps(
        {"started": _epoch_s(st.doc["started"]), "finished": _epoch_s(st.doc["finished"]), "status": st.doc["status"]}
    )
    yield b',"steps":' + (b"[" if steps_shape == "list" else b"{")
    for j, step in enumerate(log_steps(data, st)):
        head = {
            "name": step["name"],
            "status": step["status"],
            "creationTimeStamp": step["creationTimeStamp"],
            "finishTimeStamp": step["finishTimeStamp"],
        }
        prefix = b"," if j else b""
        if steps_shape == "object":
            prefix += dumps(step["name"]) + b":"
        yield prefix + dumps(head)[:-1] + b',"logs":' + (b"[" if logs_shape == "list" else b"{")
        if step["chunks"] is None:
            chunks: Iterator[bytes] = (dumps(_huge_text()) for _ in range(_huge_chunk_count(data)))
        else:
            chunks = (dumps(chunk) for chunk in step["chunks"])
        ms = (step["creationTimeStamp"] or 0) * 1000
        for n, chunk in enumerate(chunks):
            sep = b"," if n else b""
            yield sep + (chunk if logs_shape == "list" else dumps(_push_id(rng, ms, n)) + b":" + chunk)
        yield (b"]" if logs_shape == "list" else b"}") + b"}"
    yield (b"]" if steps_shape == "list" else b"}") + b"}"


# ---------------------------------------------------------------------------------------------------------------
# signed URLs
# ---------------------------------------------------------------------------------------------------------------
def _signature(path: str, unsigned_query: str) -> str:
    return hmac.new(_SIGNING_KEY, f"{path}?{unsigned_query}".encode(), hashlib.sha256).hexdigest()


def archive_path(data: Any, st: Any) -> str:
    return f"/{STORAGE_BUCKET}/{data.account_id}/{st.doc['progress']}.json"


def signed_url(app: Any, st: Any) -> str:
    data = app.data
    cfg = data.config
    expired = _is_every(cfg.build_log_expired_every, st)
    expires = int(time.time()) + (-3600 if expired else max(1, int(cfg.build_log_url_ttl_seconds)))
    path = archive_path(data, st)
    query = f"X-Sandbox-Credential={_CREDENTIAL}&X-Sandbox-Expires={expires}"
    base = (cfg.build_log_url_base or app.storage_url).rstrip("/")
    return f"{base}{path}?{query}&X-Sandbox-Signature={_signature(path, query)}"


# ---------------------------------------------------------------------------------------------------------------
# /api/progress handlers
# ---------------------------------------------------------------------------------------------------------------
def _job_build(req: Request) -> Any:
    st = req.data.by_progress.get(req.params["id"])
    if st is None or req.app.build_deleted(req, st):
        raise not_found(f"Progress {req.params['id']} not found")
    return st


def get_progress(req: Request) -> Response:
    st = _job_build(req)
    data = req.data
    with data.lock:
        doc = st.doc
        finished = st.finished
        job = {
            "_id": doc["progress"],
            "id": doc["progress"],
            "account": data.account_id,
            "status": doc["status"],
            "created": doc["created"],
            "updated": doc["updated"],
            "workflow": doc["id"],
        }
    if finished:
        job["location"] = {"type": "gcs", "url": signed_url(req.app, st)}
    else:
        job["location"] = {
            "type": "firebase",
            "url": f"https://codefresh-sandbox.firebaseio.com/build-logs/{doc['progress']}",
        }
    return json_response(job)


def download_progress(req: Request) -> Response:
    st = _job_build(req)
    out: List[str] = []
    for step in log_steps(req.data, st):
        out.append(f"Step: {step['name']}\n")
        out.append("".join(step["chunks"]) if step["chunks"] is not None else _huge_text())
    return Response(200, "".join(out).encode("utf-8"), content_type="text/html; charset=utf-8")


def delete_progress(req: Request) -> Response:
    """Terminates the build, as the real endpoint does (`codefresh terminate`), and counts it."""
    st = _job_build(req)
    req.app.count_progress_delete()
    data = req.data
    with data.lock:
        if not st.finished:
            st.final_status = "terminated"
            data._finish(st, data.clock_ms)
        status = st.doc["status"]
    return json_response({"_id": st.doc["progress"], "id": st.doc["progress"], "status": status})


ROUTES = [
    route("GET", "/progress/download/{id}", download_progress),
    route("GET", "/progress/{id}", get_progress),
    route("DELETE", "/progress/{id}", delete_progress),
]


# ---------------------------------------------------------------------------------------------------------------
# the storage host
# ---------------------------------------------------------------------------------------------------------------
def _storage_error(status: int, code: str, message: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    ).encode()
    return Response(status, body, content_type="application/xml")


def serve_storage(app: Any, method: str, path: str, raw_query: str, headers: Mapping[str, str]) -> Response:
    """One request to the storage port. `Authorization` is only counted, never read further."""
    app.count_storage_request(has_authorization=headers.get("Authorization") is not None)
    if method != "GET":
        return _storage_error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")
    data = app.data
    parts = path.strip("/").split("/")
    st = None
    if len(parts) == 3 and parts[0] == STORAGE_BUCKET and parts[1] == data.account_id and parts[2].endswith(".json"):
        st = data.by_progress.get(parts[2][: -len(".json")])
    if st is None:
        return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
    unsigned, _, signature = raw_query.rpartition("&X-Sandbox-Signature=")
    expires = dict(parse_qsl(unsigned)).get("X-Sandbox-Expires", "")
    if not signature or not hmac.compare_digest(signature, _signature(path, unsigned)):
        return _storage_error(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    if not expires.isdigit() or int(expires) < time.time():
        return _storage_error(403, "AccessDenied", "Request has expired")
    with data.lock:
        finished = st.finished
    if not finished or _is_every(data.config.build_log_missing_every, st):
        return _storage_error(404, "NoSuchKey", "The specified key does not exist.")
    if is_huge(data, st):
        length = sum(len(part) for part in _archive_parts(data, st))
        return Response(200, b"", content_type="application/json", chunks=_archive_parts(data, st), length=length)
    return Response(200, b"".join(_archive_parts(data, st)), content_type="application/json")


# ---------------------------------------------------------------------------------------------------------------
# expectations
# ---------------------------------------------------------------------------------------------------------------
def archived(data: Any, st: Any) -> bool:
    """Whether a build's log can be read in full: finished, not deleted, its archive there and its URL valid."""
    cfg = data.config
    return (
        st.finished
        and not data.is_deleted(st)
        and not _is_every(cfg.build_log_missing_every, st)
        and not _is_every(cfg.build_log_expired_every, st)
    )


def expected_log_steps(data: Any, st: Any) -> int:
    """How many steps a build's archive has: both pseudo-steps and every step that started."""
    return st.steps_count + 1 if st.started_ms is not None else 0
