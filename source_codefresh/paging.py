"""Paging: the ordered pages of /workflow (builds) and /images, whichever way the server pages them."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import InitVar, dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import orjson
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.extractors.record_selector import extracted_record_count
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
    with every listing (every stream slice, and every restart of a slice). A page holding the same records as the
    page before means the server ignores the paging parameters; the sync then fails with one sentence instead of
    looping or stopping short. The page token carries everything one listing needs (`page`, `session_id`, the
    records so far, the previous page's fingerprint), so concurrent listings never share state.
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
        # Count the records the API returned, not the ones a client-side filter kept.
        if extracted_record_count(response, default=last_page_size) == 0:
            return None
        try:
            body = response_json(response)
        except ValueError:
            return None
        token = last_page_token_value if isinstance(last_page_token_value, Mapping) else self.initial_token
        page = int(token["page"])
        records = [record for record in self._records.extract_records(response) if isinstance(record, Mapping)]
        fingerprint = page_fingerprint(records)
        if records and fingerprint == token.get("previous_page"):
            raise AirbyteTracedException(
                message=repeated_page_message(url_without_query(response.request.url), page),
                internal_message=f"page {page} repeated page {page - 1} (same record ids)",
                failure_type=FailureType.system_error,
            )
        received = int(token.get("records") or 0) + len(records)
        following = {
            "page": page + 1,
            "session_id": token["session_id"],
            "records": received,
            "previous_page": fingerprint,
        }
        pagination = body.get("pagination") if isinstance(body, Mapping) else None
        if isinstance(pagination, Mapping) and "nextPage" in pagination:
            # Cursor pages: the server says whether there is more (`true`/`false`, or a page number in old answers).
            return following if pagination["nextPage"] else None
        # Offset pages: no word from the server; ask for what follows the records received so far.
        return {**following, "offset": received}

    def get_page_size(self) -> Optional[int]:
        return int(self.page_size)


def page_fingerprint(records: Sequence[Mapping[str, Any]]) -> str:
    """A short digest of a page's record ids (`id`, else `_id`, else the whole record), in order."""
    digest = hashlib.blake2b(digest_size=12)
    for record in records:
        key = record.get("id", record.get("_id"))
        digest.update(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) if key is None else str(key).encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


def repeated_page_message(url: str, page: int) -> str:
    return (
        f"Codefresh answered page {page} of {url} with the same records as page {page - 1}, so it ignores the "
        f"paging parameters this connector sends (page, offset, limit) and the listing cannot be read completely; "
        f"please report this at {ISSUE_TRACKER} with the output of scripts/probe_api.py."
    )
