"""A mocked `GET /audit` that answers like a server under one reading of its time bounds (FIDELITY 1.6, 1.7) and of
its page numbers (FIDELITY section 2, audit).

`AuditLog(entries, reads="ms" | "iso" | "neither", wrong_form="ignore" | "400", cap=50_000, first_page=1 | 0,
page_zero="400" | "first" | "empty" | "500").install(http_mocker)` answers every request to /audit with the entries
(newest first) between `from` and `to` read in the `reads` form; a bound in the other form is ignored or answered
400; a listing stops at `cap` entries, silently, as a capped server would. Pages are numbered from `first_page`; a
request without `page` gets the first page; a page past the end is empty. Numbered from 1, page 0 is what
`page_zero` says a server might make of it: refused (400, a validated parameter), read as page 1 (mongoose-paginate-v2
clamps a page below 1), an empty page (a negative offset sliced to nothing), or a 500 (a database refusing a negative
skip). `ignores_page`: every request gets the first page. The query of every request is kept in `requests`.
`inject` answers the first listing pages (pageSize above 1) with given responses instead, so that the shared stream
tests can put an error on "the stream's own request" while the single-entry questions are answered normally.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Dict, List, Optional
from urllib.parse import parse_qs, urlsplit

from airbyte_cdk.test.mock_http import HttpResponse

from unit_tests.conftest import RecordingHttpMocker

_URL = re.compile(r"^https://g\.codefresh\.io/api/audit(\?.*)?$")


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


class AuditLog:
    def __init__(
        self,
        entries: List[Dict[str, Any]],
        reads: str = "ms",
        wrong_form: str = "ignore",
        cap: int = 50_000,
        first_page: int = 1,
        page_zero: str = "400",
        ignores_page: bool = False,
    ):
        self.entries = sorted(entries, key=lambda e: e["createdAt"], reverse=True)
        self.times = [_ms(e["createdAt"]) for e in self.entries]
        self.reads, self.wrong_form, self.cap = reads, wrong_form, cap
        self.first_page, self.page_zero, self.ignores_page = first_page, page_zero, ignores_page
        self.injected: List[HttpResponse] = []
        self.requests: List[Dict[str, List[str]]] = []

    def inject(self, answers: Any) -> "AuditLog":
        self.injected = list(answers) if isinstance(answers, list) else [answers]
        return self

    def install(self, http_mocker: RecordingHttpMocker) -> "AuditLog":
        http_mocker.requests.register_uri("GET", _URL, text=self._answer)
        return self

    def _bound(self, raw: Optional[str]) -> Optional[int]:
        """The bound as the server reads it; None when absent or ignored. Raises ValueError for a 400."""
        if raw in (None, "") or self.reads not in ("ms", "iso"):  # "neither": every bound is ignored
            return None
        digits = raw.isdigit()
        if (self.reads == "ms") == digits:
            return int(raw) if digits else _ms(raw)
        if self.wrong_form == "400":
            raise ValueError(f"Invalid date {raw!r}")
        return None

    def _answer(self, request: Any, context: Any) -> Any:
        query = parse_qs(urlsplit(request.url).query)  # not request.qs: requests_mock lower-cases it
        self.requests.append(query)
        arg = lambda name: (query.get(name) or [None])[0]  # noqa: E731
        page = self.first_page if arg("page") in (None, "") or self.ignores_page else int(arg("page"))
        size = int(arg("pageSize") or 25)
        if size > 1 and self.injected:
            answer = self.injected.pop(0)
            context.status_code = answer.status_code
            context.headers.update(answer.headers)
            return answer.body
        context.headers["Content-Type"] = "application/json"
        if page < self.first_page:
            refused = {"400": 400, "500": 500}.get(self.page_zero) if page == 0 else 400
            if refused:
                context.status_code = refused
                return json.dumps({"status": refused, "message": f"Invalid page {page}"})
            if self.page_zero == "empty":
                context.status_code = 200
                return json.dumps({"data": []})
            page = self.first_page  # "first": read as the first page
        try:
            low, high = self._bound(arg("from")), self._bound(arg("to"))
        except ValueError as exc:
            context.status_code = 400
            return json.dumps({"status": 400, "code": "400", "name": "BAD_REQUEST", "message": str(exc)})
        matching = [
            e
            for e, t in zip(self.entries, self.times, strict=True)
            if (low is None or t >= low) and (high is None or t <= high)
        ][: self.cap]
        context.status_code = 200
        skip = (page - self.first_page) * size
        return json.dumps({"data": matching[skip : skip + size]})
