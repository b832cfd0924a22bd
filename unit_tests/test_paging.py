"""CursorBackedPageIncrement: ordered pages of one listing under one session id, whether the server answers cursor
pages (`pagination.nextPage`) or offset pages (no pagination object) (source_codefresh/paging.py)."""

from __future__ import annotations

import pytest
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.paging import CursorBackedPageIncrement, page_fingerprint
from unit_tests.responses import make_response

IMAGES_URL = "https://g.codefresh.io/api/images?limit=100&page=2"


def images_strategy() -> CursorBackedPageIncrement:
    return CursorBackedPageIncrement(config={}, parameters={"records_key": "docs"}, page_size=100)


def builds_strategy() -> CursorBackedPageIncrement:
    return CursorBackedPageIncrement(config={}, parameters={"records_key": "workflows.docs"}, page_size=100)


def images(first: int, count: int):
    return [{"_id": f"img-{i}"} for i in range(first, first + count)]


def test_each_listing_starts_at_page_one_with_its_own_session():
    strategy = images_strategy()
    first, second = strategy.initial_token, strategy.initial_token
    assert first == {"page": 1, "session_id": first["session_id"]}  # page 1 sends no offset
    assert second["page"] == 1 and first["session_id"] != second["session_id"]


@pytest.mark.parametrize("next_page", [True, 4], ids=["boolean (Codefresh)", "page number"])
def test_cursor_pages_follow_next_page_with_the_same_session_and_no_offset(next_page):
    strategy = builds_strategy()
    token = {"page": 3, "session_id": "s-1", "records": 200}
    page = make_response({"workflows": {"docs": [{"id": "a"}]}, "pagination": {"page": 3, "nextPage": next_page}})

    following = strategy.next_page_token(page, 1, None, token)

    assert (following["page"], following["session_id"], following["records"]) == (4, "s-1", 201)
    assert "offset" not in following


@pytest.mark.parametrize(
    "body, count",
    [
        ({"workflows": {"docs": [{"id": "a"}]}, "pagination": {"page": 2, "nextPage": False}}, 1),
        ({"workflows": {"docs": []}, "pagination": {"page": 2, "nextPage": True}}, 0),
        ({"workflows": {"docs": []}}, 0),
    ],
    ids=["nextPage false", "empty page", "empty page without pagination object"],
)
def test_listing_ends(body, count):
    strategy = builds_strategy()
    assert strategy.next_page_token(make_response(body), count, None, {"page": 2, "session_id": "s"}) is None


def test_offset_pages_ask_for_what_follows_the_records_received_so_far():
    strategy = images_strategy()
    token = strategy.initial_token
    sent = []
    for first in (0, 100, 200):
        token = strategy.next_page_token(make_response({"docs": images(first, 100)}, url=IMAGES_URL), 100, None, token)
        sent.append((token["page"], token["offset"]))
    assert sent == [(2, 100), (3, 200), (4, 300)]
    assert len({token["session_id"]}) == 1


def test_a_short_page_without_pagination_object_is_not_the_end():
    # A server that caps `limit` at 50 (or ignores it) answers short pages long before the end.
    strategy = images_strategy()
    token = {"page": 1, "session_id": "s"}

    token = strategy.next_page_token(make_response({"docs": images(0, 50)}, url=IMAGES_URL), 50, None, token)

    assert (token["page"], token["offset"]) == (2, 50)
    assert strategy.next_page_token(make_response({"docs": []}, url=IMAGES_URL), 0, None, token) is None


@pytest.mark.parametrize(
    "envelope",
    [lambda docs: {"docs": docs}, lambda docs: {"docs": docs, "pagination": {"page": 2, "nextPage": True}}],
    ids=["offset pages", "cursor pages that always say nextPage"],
)
def test_a_page_that_repeats_the_page_before_fails_with_one_sentence(envelope):
    strategy = images_strategy()
    token = strategy.initial_token
    token = strategy.next_page_token(make_response(envelope(images(0, 25)), url=IMAGES_URL), 25, None, token)

    with pytest.raises(AirbyteTracedException) as failure:
        strategy.next_page_token(make_response(envelope(images(0, 25)), url=IMAGES_URL), 25, None, token)

    message = failure.value.message
    assert message.startswith(
        "Codefresh answered page 2 of https://g.codefresh.io/api/images with the same records as page 1"
    )
    assert "ignores the paging parameters" in message and "report" in message
    assert "?" not in message.split(" with ")[0]  # the URL without its query
    assert message.count(". ") == 0  # one sentence


def test_pages_that_overlap_are_not_a_repeat():
    # Offset pages of a newest-first listing shift by one when an image is added between two requests.
    strategy = images_strategy()
    token = strategy.next_page_token(
        make_response({"docs": images(0, 100)}, url=IMAGES_URL), 100, None, strategy.initial_token
    )
    token = strategy.next_page_token(make_response({"docs": images(99, 100)}, url=IMAGES_URL), 100, None, token)
    assert token["offset"] == 200


def test_page_fingerprint_uses_record_ids_and_their_order():
    assert page_fingerprint([{"id": "a", "status": "running"}]) == page_fingerprint([{"id": "a", "status": "success"}])
    assert page_fingerprint([{"_id": "a"}, {"_id": "b"}]) != page_fingerprint([{"_id": "b"}, {"_id": "a"}])
    assert page_fingerprint([{"name": "x"}]) != page_fingerprint([{"name": "y"}])  # no id: the whole record


def test_page_size_is_an_integer():
    assert CursorBackedPageIncrement(config={}, parameters={}, page_size="50").get_page_size() == 50
