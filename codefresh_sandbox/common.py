"""Helpers shared by the sandbox's endpoint-family modules.

- time: epoch milliseconds <-> ISO-8601 strings, parsing of the API's date bounds;
- `Gen`: the deterministic generator (one `random.Random(seed)`, Mongo-style ids, small vocabularies);
- `Request`, `Response`, `ApiError`: what a route handler receives, returns or raises;
- `Route` / `route`: how a family module declares its endpoints;
- JSON and paging helpers (offset paging and envelopes built from pre-serialized records).

Standard library only.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

SANDBOX_API_KEY = "sandbox-key.7f3a9c1e5b2d4f608a1c3e5f7b9d0a2c"
SANDBOX_LIMITED_API_KEY = "sandbox-limited.0b1c2d3e4f5061728394a5b6c7d8e9f0"
# A key Codefresh restricted for unusual activity: 403 to every request, GET /user included (rate-limiter docs).
SANDBOX_RESTRICTED_API_KEY = "sandbox-restricted.5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d"

# ---------------------------------------------------------------------------------------------------------------
# time
# ---------------------------------------------------------------------------------------------------------------
UTC = timezone.utc
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


_DAY_STRINGS: Dict[int, str] = {}


def iso(ms: Optional[int]) -> Optional[str]:
    """Epoch milliseconds -> `2026-10-05T12:34:56.789Z` (None stays None)."""
    if ms is None:
        return None
    seconds, milli = divmod(ms, 1000)
    days, seconds = divmod(seconds, 86400)
    day = _DAY_STRINGS.get(days)
    if day is None:
        day = _DAY_STRINGS[days] = date.fromordinal(719163 + days).isoformat()
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{day}T{hours:02d}:{minutes:02d}:{seconds:02d}.{milli:03d}Z"


def day_str(ms: int) -> str:
    d = _EPOCH + timedelta(milliseconds=ms)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def parse_iso_ms(text: str) -> int:
    """An ISO-8601 datetime (`Z`, offsets or naive = UTC) -> epoch ms. Raises ValueError."""
    return to_ms(datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00")))


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_bound(text: str, upper: bool) -> int:
    """A `startDate`/`endDate` value -> epoch ms. A bare date covers its whole UTC day (the lower bound is
    00:00:00.000, the upper bound 23:59:59.999); a datetime is exact. Raises ValueError."""
    text = text.strip()
    if _DATE_RE.match(text):
        start = to_ms(datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC))
        return start + DAY_MS - 1 if upper else start
    if "T" not in text and " " not in text:
        raise ValueError(text)
    return parse_iso_ms(text)


def parse_day(text: str) -> date:
    if not _DATE_RE.match(text.strip()):
        raise ValueError(text)
    return date.fromisoformat(text.strip())


def day_ms(d: date) -> int:
    return to_ms(datetime.combine(d, datetime.min.time(), tzinfo=UTC))


# ---------------------------------------------------------------------------------------------------------------
# deterministic generator
# ---------------------------------------------------------------------------------------------------------------
FIRST_NAMES = [
    "Ada",
    "Grace",
    "Linus",
    "Margaret",
    "Ken",
    "Barbara",
    "Dennis",
    "Frances",
    "Alan",
    "Radia",
    "Guido",
    "Sophie",
    "Edsger",
    "Hedy",
    "John",
    "Katherine",
    "Tim",
    "Anita",
    "Donald",
    "Shafi",
]
LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Thompson",
    "Liskov",
    "Ritchie",
    "Allen",
    "Turing",
    "Perlman",
    "Rossum",
    "Wilson",
    "Dijkstra",
    "Lamarr",
    "Backus",
    "Johnson",
    "Berners",
    "Borg",
    "Knuth",
    "Goldwasser",
]
REPO_OWNERS = ["acme", "acme-platform", "acme-data", "acme-web"]
REPO_WORDS = [
    "api",
    "gateway",
    "billing",
    "checkout",
    "search",
    "auth",
    "catalog",
    "inventory",
    "orders",
    "payments",
    "notifications",
    "frontend",
    "mobile",
    "reports",
    "scheduler",
    "ledger",
    "profile",
    "shipping",
    "analytics",
    "etl",
    "worker",
    "cache",
    "docs",
    "infra",
    "metrics",
    "portal",
]
BRANCHES = [
    "main",
    "main",
    "main",
    "develop",
    "release/1.4",
    "release/1.5",
    "feature/login",
    "feature/cart",
    "fix/timeout",
    "renovate/deps",
    "hotfix/ssl",
]
COMMIT_MESSAGES = [
    "Fix flaky test",
    "Bump dependencies",
    "Add retry to client",
    "Refactor handler",
    "Update README",
    "Merge pull request #{n} from acme/feature",
    "Improve logging",
    "Add metrics endpoint",
    "Fix null pointer in parser",
    "Tune resource limits",
    "Release v1.{n}",
    'Revert "Add cache"',
    "Speed up CI",
    "Add e2e tests",
]


class Gen:
    """Everything random in the sandbox comes from here, so the same seed always gives the same data."""

    def __init__(self, seed: int, anchor_ms: int):
        self.rng = random.Random(seed)
        self.anchor_ms = anchor_ms
        self._machine = self.rng.getrandbits(40)
        self._counter = self.rng.getrandbits(24)

    # ids ---------------------------------------------------------------------------------------------------
    def oid(self, ms: Optional[int] = None) -> str:
        """A 24-hex Mongo ObjectId: 4 bytes of seconds, 5 bytes 'machine', 3 bytes counter (so ids are unique)."""
        self._counter = (self._counter + 1) & 0xFFFFFF
        ts = (self.anchor_ms if ms is None else ms) // 1000
        return f"{ts & 0xFFFFFFFF:08x}{self._machine:010x}{self._counter:06x}"

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    # draws -------------------------------------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, seq: Sequence[Any]) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def sample(self, seq: Sequence[Any], k: int) -> List[Any]:
        return self.rng.sample(list(seq), min(k, len(seq)))

    def randint(self, a: int, b: int) -> int:
        return self.rng.randint(a, b)

    def past_ms(self, max_days: float, min_days: float = 0.0) -> int:
        """A millisecond timestamp between `max_days` and `min_days` before the anchor."""
        span = int((max_days - min_days) * DAY_MS)
        return self.anchor_ms - int(min_days * DAY_MS) - int(self.rng.random() * span)

    def person(self, i: int) -> Dict[str, str]:
        first = FIRST_NAMES[i % len(FIRST_NAMES)]
        last = LAST_NAMES[(i * 7 + i // len(FIRST_NAMES)) % len(LAST_NAMES)]
        user = f"{first.lower()}.{last.lower()}" + (str(i // len(FIRST_NAMES)) if i >= len(FIRST_NAMES) else "")
        return {
            "first": first,
            "last": last,
            "userName": user,
            "email": f"{user}@acme.example",
            "name": f"{first} {last}",
            "avatar": f"https://avatars.example.com/u/{1000 + i}?v=4",
        }

    def repo(self) -> Dict[str, str]:
        owner = self.pick(REPO_OWNERS)
        name = self.pick(REPO_WORDS) + self.pick(["", "-service", "-api", "-app", "-worker", ""])
        return {"owner": owner, "name": name}

    def commit_message(self) -> str:
        return self.pick(COMMIT_MESSAGES).replace("{n}", str(self.randint(10, 999)))


# ---------------------------------------------------------------------------------------------------------------
# HTTP types shared by the family modules and the server
# ---------------------------------------------------------------------------------------------------------------
class ApiError(Exception):
    """Raised by a handler; answered as `{"status", "code", "name", "message"}`."""

    def __init__(
        self, status: int, name: str, message: str, code: Optional[str] = None, headers: Optional[Dict[str, str]] = None
    ):
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.code = code if code is not None else str(status)
        self.headers = headers or {}

    def body(self) -> Dict[str, Any]:
        return {"status": self.status, "code": self.code, "name": self.name, "message": self.message}


def bad_request(message: str, name: str = "BAD_REQUEST") -> ApiError:
    return ApiError(400, name, message, code="400")


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND_ERROR", message, code="101")


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: Dict[str, str] = field(default_factory=dict)
    chunks: Optional[Iterable[bytes]] = None  # a streamed body (instead of `body`), `length` bytes in all
    length: int = 0


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(obj: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(status, dumps(obj), headers=headers or {})


def raw_json(body: bytes, status: int = 200) -> Response:
    return Response(status, body)


def envelope(prefix: bytes, parts: Iterable[bytes], suffix: bytes) -> bytes:
    """prefix + comma-joined parts + suffix, in one copy (pages are big: avoid bytes concatenation)."""
    parts = list(parts)
    if not parts:
        return prefix + suffix
    out: List[Any] = [b","] * (2 * len(parts) + 1)
    out[0] = prefix
    out[1::2] = parts
    out[-1] = suffix
    return b"".join(out)


def join_array(parts: Iterable[bytes]) -> bytes:
    return envelope(b"[", parts, b"]")


@dataclass
class Request:
    """What a handler sees. `query` maps each name to all its values (`dateRange` repeats)."""

    method: str
    path: str  # the full path, e.g. /api/workflow
    query: Dict[str, List[str]]
    params: Dict[str, str]  # path parameters, percent-decoded
    body: Any  # parsed JSON body (None when empty)
    api_key: str  # never log it
    session_id: Optional[str]  # X-Pagination-Session-Id
    data: Any  # the SandboxData
    app: Any  # the SandboxServer (sessions, faults, stats)

    def arg(self, name: str, default: Optional[str] = None) -> Optional[str]:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> List[str]:
        """All values of a repeated parameter; also accepts `name[]=` and comma-separated values."""
        out: List[str] = []
        for key in (name, name + "[]"):
            for v in self.query.get(key, []):
                out.extend(x for x in v.split(",") if x)
        return out

    def int_arg(self, name: str, default: int, minimum: int = 0) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"Invalid value for '{name}': {raw!r} is not an integer") from None
        if value < minimum:
            raise bad_request(f"Invalid value for '{name}': must be >= {minimum}")
        return value


Handler = Callable[[Request], Response]


@dataclass
class Route:
    method: str
    template: str  # e.g. "/builds/{id}" (relative to /api)
    handler: Handler
    restricted: bool = False  # the limited key gets 403
    regex: Any = None

    def __post_init__(self) -> None:
        pattern = re.sub(r"\{[^/}]+\}", "([^/]+)", self.template.rstrip("/") or "/")
        self.names = re.findall(r"\{([^/}]+)\}", self.template)
        self.regex = re.compile("^" + pattern + "$")


def route(method: str, template: str, handler: Handler, restricted: bool = False) -> Route:
    return Route(method, template, handler, restricted)


# ---------------------------------------------------------------------------------------------------------------
# paging helpers
# ---------------------------------------------------------------------------------------------------------------
MAX_LIMIT = 100
DEFAULT_LIMIT = 25


def capped_limit(req: Request, name: str = "limit", default: int = DEFAULT_LIMIT) -> int:
    """`limit` defaults to 25; a bigger value than 100 silently gets 100; below 1 is a 400."""
    return min(req.int_arg(name, default, minimum=1), MAX_LIMIT)


def offset_window(req: Request, total: int) -> range:
    """The record indexes of an offset page (`limit`, `offset`)."""
    limit = capped_limit(req)
    offset = req.int_arg("offset", 0, minimum=0)
    return range(min(offset, total), min(offset + limit, total))


class Collection:
    """A list of records plus their serialized JSON (computed once), so pages are joins of bytes."""

    def __init__(self, records: List[Dict[str, Any]]):
        self.records = records
        self.parts: List[bytes] = [dumps(r) for r in records]

    def __len__(self) -> int:
        return len(self.records)

    def array(self, indexes: Iterable[int]) -> bytes:
        """A JSON array of the records at `indexes`."""
        return self.wrap(b"[", indexes, b"]")

    def wrap(self, prefix: bytes, indexes: Iterable[int], suffix: bytes) -> bytes:
        """prefix + the records at `indexes`, comma-separated + suffix (e.g. an envelope around an array)."""
        parts = self.parts
        return envelope(prefix, [parts[i] for i in indexes], suffix)
