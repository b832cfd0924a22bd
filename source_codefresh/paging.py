"""Paging: the ordered pages of /workflow (builds) and /images, whichever way the server pages them, and the one check
every paginator passes through: a page that repeats a page of the same listing ends it with one sentence."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from dataclasses import InitVar, dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.types import Config, Record, StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.extractors import EnvelopeExtractor
from source_codefresh.responses import response_json, url_without_query

ISSUE_TRACKER = "https://github.com/airbytehq/airbyte/issues (label source-codefresh)"


@dataclass
class CursorBackedPageIncrement(PaginationStrategy):
    """The pages of one listing, read in order, all sent with one `X-Pagination-Session-Id`.

    The evidence allows two readings of these endpoints (docs/api-notes.md, section 8.1), and the strategy is right
    under both:

    - cursor pages (`/workflow`, and `/images` per Codefresh's 2021 KB): `page` = 1, 2, 3 ... against a server-side
      cursor per pagination session (docs/api-notes.md, section 4); every answer carries `pagination.nextPage`, and
      the listing ends when it is false. Pages after the first send `page` only, exactly what `/workflow` is known to
      accept from Codefresh's own scripts.
    - offset pages (`/images` per the spec, the CLI and every client seen): `limit`/`offset`, and no `pagination`
      object, so nothing says whether more records follow. The next request then sends `page` + 1 *and*
      `offset` = the records received so far, which name the same records under either reading (also when the
      server caps `limit`), and the listing ends at an empty page: a short page is no proof of the end when the
      server caps or ignores `limit`, and stopping there would silently lose records.

    The first request sends `page=1` and no `offset` (0 is the default under both readings). A fresh session starts
    with every listing (every stream slice, and every restart of a slice). The page token carries everything one
    listing needs (`page`, `session_id`, the records so far), so concurrent listings never share state. A server that
    ignores the paging parameters is stopped by NoRepeatedPages, which wraps this strategy as every other.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 100

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        # The same records the stream's selector reads, to tell one page from the next by its record ids.
        self._records = EnvelopeExtractor(
            config=self.config, parameters=parameters, records_key="{{ parameters.get('records_key') or '' }}"
        )

    @property
    def initial_token(self) -> Mapping[str, Any]:
        # A property, evaluated once per listing by the paginator, so each listing gets its own session.
        return {"page": 1, "session_id": f"source-codefresh-{uuid.uuid4()}"}

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Record],
        last_page_token_value: Optional[Any],
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Mapping[str, Any]]:
        try:
            body = response_json(response)
        except ValueError:
            return None
        # The records the API returned, not the ones a client-side filter kept.
        on_this_page = sum(1 for _ in self._records.extract_records(response))
        if on_this_page == 0:
            return None
        token = last_page_token_value if isinstance(last_page_token_value, Mapping) else self.initial_token
        received = int(token.get("records") or 0) + on_this_page
        following = {"page": int(token["page"]) + 1, "session_id": token["session_id"], "records": received}
        pagination = body.get("pagination") if isinstance(body, Mapping) else None
        if isinstance(pagination, Mapping) and "nextPage" in pagination:
            # Cursor pages: the server says whether there is more (`true`/`false`, or a page number in old answers).
            return following if pagination["nextPage"] else None
        # Offset pages: no word from the server; ask for what follows the records received so far.
        return {**following, "offset": received}

    def get_page_size(self) -> Optional[int]:
        return int(self.page_size)


@dataclass
class NoRepeatedPages(PaginationStrategy):
    """A stream's pagination (`strategy`), stopped with one sentence when a page repeats any page already read in the
    same listing.

    A server that ignores the paging parameters answers the first page again and again (offset pages then never get
    shorter), and one that says "more" on two alternating pages never ends: the paginator would ask for the next page
    for ever and emit the same records each time. A page is known by its record ids in order (page_fingerprint). A
    listing is one stream slice read from its first page: the strategy is shared by a stream's slices, read at the
    same time, so the pages seen are kept per slice, and forgotten when the listing ends; a slice read again from its
    first page (the same page token) starts a new listing. `first_page_may_repeat`: page 1 may repeat the first page,
    asked for without a number (audit_logs: Codefresh may number its pages from 0 or from 1)."""

    strategy: PaginationStrategy
    config: Config
    parameters: InitVar[Mapping[str, Any]]
    first_page_may_repeat: bool = False

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._records = EnvelopeExtractor(
            config=self.config, parameters=parameters, records_key="{{ parameters.get('records_key') or '' }}"
        )
        self._stream = str(parameters.get("name") or "")
        self._custom_stream = bool(parameters.get("custom_stream"))
        # listing -> page fingerprint -> (its number in the listing, its page token); the oldest listings are dropped
        # (a listing that failed half-way never ends).
        self._listings: "OrderedDict[bytes, Dict[str, Tuple[int, Any]]]" = OrderedDict()
        self._lock = threading.Lock()

    @property
    def initial_token(self) -> Optional[Any]:
        return self.strategy.initial_token

    def get_page_size(self) -> Optional[int]:
        return self.strategy.get_page_size()

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Record],
        last_page_token_value: Optional[Any],
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Any]:
        following = self.strategy.next_page_token(
            response,
            last_page_size,
            last_record,
            last_page_token_value,
            page_size_override=page_size_override,
            stream_slice=stream_slice,
        )
        records = [record for record in self._records.extract_records(response) if isinstance(record, Mapping)]
        listing = _listing_key(stream_slice)
        token = (
            last_page_token_value.get("page") if isinstance(last_page_token_value, Mapping) else last_page_token_value
        )
        with self._lock:
            pages = self._listings.setdefault(listing, {})
            self._listings.move_to_end(listing)
            while len(self._listings) > 1000:
                self._listings.popitem(last=False)
            if records:
                fingerprint = page_fingerprint(records)
                seen = pages.get(fingerprint)
                if seen is not None and seen[1] == token:  # this slice is read again from its first page
                    pages.clear()
                elif seen is not None and not (self.first_page_may_repeat and token == 1 and seen[1] is None):
                    self._listings.pop(listing, None)
                    raise self._repeated(response, len(pages) + 1, seen[0])
                pages.setdefault(fingerprint, (len(pages) + 1, token))
            if following is None:
                self._listings.pop(listing, None)
        return following

    def _repeated(self, response: requests.Response, page: int, earlier: int) -> AirbyteTracedException:
        url = url_without_query(response.request.url if response.request is not None else response.url)
        said = f"Codefresh answered page {page} of {url} with the same records as page {earlier}, so "
        if self._custom_stream:
            message = said + (
                f"the endpoint does not page the way the pagination of custom stream '{self._stream}' asks: set its "
                "pagination in custom_streams to the paging the endpoint uses (offset, page or cursor), or to none."
            )
            failure = FailureType.config_error
        else:
            message = said + (
                f"it ignores the paging parameters this connector sends (page, offset, limit) and stream "
                f"'{self._stream}' cannot be read completely; please report this at {ISSUE_TRACKER} with the output "
                "of scripts/probe_api.py."
            )
            failure = FailureType.system_error
        return AirbyteTracedException(message=message, internal_message=message, failure_type=failure)


def _listing_key(stream_slice: Optional[StreamSlice]) -> bytes:
    if stream_slice is None:
        return b""
    parts = [dict(stream_slice.partition), dict(stream_slice.cursor_slice), dict(stream_slice.extra_fields)]
    return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS, default=str)


def page_fingerprint(records: Sequence[Mapping[str, Any]]) -> str:
    """A short digest of a page's record ids (`id`, else `_id`, else the whole record), in order."""
    digest = hashlib.blake2b(digest_size=12)
    for record in records:
        key = record.get("id", record.get("_id"))
        digest.update(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) if key is None else str(key).encode())
        digest.update(b"\x1f")
    return digest.hexdigest()
