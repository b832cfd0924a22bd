"""Plain list endpoints: one GET whose records come in one list (the whole answer, or under one key of it), on one
page or in limit/offset or page/limit pages, each record as the API sends it.

Each `PlainEndpoint` is the one home of such an endpoint's example: its path, how it pages, where its records are and
one page of records as the evidence shows them (docs/api-notes.md). From that entry
- the sandbox serves the endpoint (`routes()`): `SandboxConfig.plain_records` records, copies of the example in its
  order with the `key` field made unique in each copy, so that the listing has more than one page;
- `expected()` counts them under the stream's name, which is what every integration test and script compares a read
  with (sandbox_sync.py, the standard suite, the schema checks, PyAirbyte, the fault scenarios);
- the unit tests mock the endpoint with the example as its one page and expect it back as the records
  (unit_tests/stream_cases.py).
So a new plain stream is its stream and schema in manifest.yaml, one entry here, its evidence in docs/api-notes.md
and a changelog line (CONTRIBUTING.md, "Adding a stream"). Endpoints whose behaviour the sandbox must model (builds,
images, audit, analytics, progress, GitOps, and the earlier streams) have modules of their own.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from .common import Collection, Request, Response, capped_limit, offset_window, raw_json, route

PAGINGS = ("none", "offset", "page")


@dataclass(frozen=True)
class PlainEndpoint:
    stream: str  # the stream that reads it: its count in `expected()` has this name
    path: str  # under /api, e.g. "/helm/boards"
    example: Tuple[Mapping[str, Any], ...]  # one page of records, as the API answers them
    key: str  # the field that tells records apart (dotted when nested): unique in every copy
    records_key: str = ""  # the answer's key that holds the list, dotted when nested ("": the answer is the list)
    paging: str = "none"  # none | offset (`limit`, `offset`) | page (`page` from 1, `limit`)

    def answer(self, records: List[Mapping[str, Any]]) -> Any:
        """The answer holding `records`, as the API would send it (the unit tests' one page)."""
        body: Any = records
        for key in reversed(self.records_key.split(".") if self.records_key else []):
            body = {key: body}
        return body


# One entry per plain stream, in the order of the manifest's streams.
ENDPOINTS: List[PlainEndpoint] = []


def _key_path(endpoint: PlainEndpoint) -> List[str]:
    return endpoint.key.split(".")


def _unique(value: Any, number: int) -> Any:
    """Record `number`'s form of a key value: a 24-hex id stays one, a text gets `-number`, a number moves on."""
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{24}", value):
        return hashlib.sha1(f"{value}:{number}".encode()).hexdigest()[:24]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"a plain endpoint's key must be text or a number, not {value!r}")
    return value + 1_000_000 * number if isinstance(value, int) else f"{value}-{number}"


def records(endpoint: PlainEndpoint, count: int) -> List[Dict[str, Any]]:
    """`count` records: the example's, then copies of them in the same order with the key made unique."""
    if endpoint.paging not in PAGINGS:
        raise ValueError(f"{endpoint.stream}: paging must be one of {', '.join(PAGINGS)}, not {endpoint.paging!r}")
    out: List[Dict[str, Any]] = []
    path = _key_path(endpoint)
    for number in range(count):
        record = copy.deepcopy(dict(endpoint.example[number % len(endpoint.example)]))
        if number >= len(endpoint.example):
            node = record
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = _unique(node[path[-1]], number)
        out.append(record)
    return out


def generate(cfg: Any, data: Any) -> None:
    data.plain = {endpoint.stream: Collection(records(endpoint, cfg.plain_records)) for endpoint in ENDPOINTS}


def _handler(endpoint: PlainEndpoint) -> Any:
    keys = endpoint.records_key.split(".") if endpoint.records_key else []
    prefix = "".join(f'{{"{key}":' for key in keys).encode() + b"["
    suffix = b"]" + b"}" * len(keys)

    def handle(req: Request) -> Response:
        items = req.data.plain[endpoint.stream]
        total = len(items)
        if endpoint.paging == "offset":
            window = offset_window(req, total)
        elif endpoint.paging == "page":
            limit = capped_limit(req)
            first = (req.int_arg("page", 1, minimum=1) - 1) * limit
            window = range(min(first, total), min(first + limit, total))
        else:
            window = range(total)
        return raw_json(items.wrap(prefix, window, suffix))

    return handle


def routes() -> List[Any]:
    return [route("GET", endpoint.path, _handler(endpoint)) for endpoint in ENDPOINTS]
