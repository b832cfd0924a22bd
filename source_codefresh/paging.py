"""Paging: the cursor-backed pages of /workflow (builds) and /images."""

from __future__ import annotations

import uuid
from dataclasses import InitVar, dataclass
from typing import Any, Mapping, Optional, Union

import requests
from airbyte_cdk.sources.declarative.extractors.record_selector import extracted_record_count
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import (
    PaginationStrategy,
)
from airbyte_cdk.sources.types import Config, Record, StreamSlice

from source_codefresh.responses import response_json


@dataclass
class CursorBackedPageIncrement(PaginationStrategy):
    """Pages 1, 2, 3 ... of one listing, all sent with one `X-Pagination-Session-Id`.

    Codefresh keeps a server-side cursor per pagination session: pages must be read in order, and readers that do not
    send their own session id share one cursor per API key (docs/api-notes.md, section 4). The page token is
    therefore `{"page": n, "session_id": <uuid>}`; a fresh session starts with every listing (every stream slice, and
    every restart of a slice), and the requester sends `page` and the header from the token. The listing ends when
    `pagination.nextPage` is false or a page has no records.
    """

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    page_size: Union[int, str] = 100

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
            pagination = response_json(response).get("pagination") or {}
        except (ValueError, AttributeError):
            return None
        if not pagination.get("nextPage"):
            return None
        token = last_page_token_value if isinstance(last_page_token_value, Mapping) else self.initial_token
        return {"page": int(token["page"]) + 1, "session_id": token["session_id"]}

    def get_page_size(self) -> Optional[int]:
        return int(self.page_size)
