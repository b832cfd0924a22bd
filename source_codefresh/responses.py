"""Reading an answer: its JSON parsed once and shared by the error policy, the extractors and the paginators, and
the short descriptions of an answer that error messages quote (never the request headers: they hold the API key)."""

from __future__ import annotations

from typing import Any, Optional

import orjson
import requests

_PARSED_JSON = "_source_codefresh_json"


def response_json(response: requests.Response) -> Any:
    """The answer's JSON, parsed once (orjson) and kept on the response for the next component that reads it.

    The error handler checks every 2xx body, then the extractor and the paginator read it: three parses per page
    before. Raises `orjson.JSONDecodeError` (a `ValueError`) when the body is not JSON; nothing is kept then."""
    parsed = getattr(response, _PARSED_JSON, _PARSED_JSON)
    if parsed is _PARSED_JSON:
        parsed = orjson.loads(response.content or b"null")
        setattr(response, _PARSED_JSON, parsed)
    return parsed


def url_without_query(url: Optional[str]) -> str:
    return (url or "").split("?", 1)[0]


def where(response: requests.Response) -> str:
    """The request an answer answers, as messages name it: `GET <url without its query>`."""
    return f"{response.request.method if response.request else 'GET'} {url_without_query(response.url)}"


def preview(content: bytes, length: int = 60) -> str:
    return " ".join(content[:length].decode("utf-8", errors="replace").split())
