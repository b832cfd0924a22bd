"""CursorBackedPageIncrement: ordered pages of one listing under one session id (source_codefresh/paging.py)."""

from __future__ import annotations

import pytest

from source_codefresh.paging import CursorBackedPageIncrement
from unit_tests.responses import make_response


def test_each_listing_starts_at_page_one_with_its_own_session():
    strategy = CursorBackedPageIncrement(config={}, parameters={}, page_size=100)
    first, second = strategy.initial_token, strategy.initial_token
    assert first["page"] == second["page"] == 1
    assert first["session_id"] != second["session_id"]


def test_next_page_keeps_the_session_and_adds_one():
    strategy = CursorBackedPageIncrement(config={}, parameters={}, page_size=100)
    token = {"page": 3, "session_id": "s-1"}
    page = make_response({"workflows": {"docs": [{"id": "a"}]}, "pagination": {"page": 3, "nextPage": True}})
    assert strategy.next_page_token(page, 1, None, token) == {"page": 4, "session_id": "s-1"}


@pytest.mark.parametrize(
    "body, count",
    [
        ({"workflows": {"docs": [{"id": "a"}]}, "pagination": {"page": 2, "nextPage": False}}, 1),
        ({"workflows": {"docs": []}, "pagination": {"page": 2, "nextPage": True}}, 0),
        ({"docs": [{"_id": "a"}]}, 1),  # no pagination block: nothing says there is more
    ],
    ids=["nextPage false", "empty page", "no pagination block"],
)
def test_listing_ends(body, count):
    strategy = CursorBackedPageIncrement(config={}, parameters={}, page_size=100)
    assert strategy.next_page_token(make_response(body), count, None, {"page": 2, "session_id": "s"}) is None


def test_page_size_is_an_integer():
    assert CursorBackedPageIncrement(config={}, parameters={}, page_size="50").get_page_size() == 50
