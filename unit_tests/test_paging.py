"""CursorBackedPageIncrement: ordered pages of one listing under one session id, whether the server answers cursor
pages (`pagination.nextPage`) or offset pages (no pagination object); NoRepeatedPages: every paginator's check that
no page of a listing repeats another (source_codefresh/paging.py)."""

from __future__ import annotations

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.requesters.paginators.strategies import OffsetIncrement, PageIncrement
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.paging import CursorBackedPageIncrement, NoRepeatedPages, page_fingerprint
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


def guarded(strategy, parameters=None, **options) -> NoRepeatedPages:
    parameters = {"records_key": "docs", "name": "images", **(parameters or {})}
    return NoRepeatedPages(strategy=strategy, config={}, parameters=parameters, **options)


def read_pages(strategy, pages, stream_slice=None):
    """Hands `pages` (lists of records) to the strategy as one listing; the tokens it asked for."""
    token, tokens = strategy.initial_token, []
    for docs in pages:
        token = strategy.next_page_token(
            make_response({"docs": docs}, url=IMAGES_URL), len(docs), None, token, stream_slice=stream_slice
        )
        tokens.append(token)
    return tokens


@pytest.mark.parametrize(
    "strategy",
    [
        lambda: OffsetIncrement(config={}, page_size=25, parameters={}),
        lambda: PageIncrement(config={}, page_size=25, start_from_page=1, inject_on_first_request=True, parameters={}),
        images_strategy,
    ],
    ids=["offset", "page", "cursor-backed"],
)
def test_a_server_that_ignores_the_paging_parameters_is_stopped_at_the_second_page(strategy):
    with pytest.raises(AirbyteTracedException) as failure:
        read_pages(guarded(strategy()), [images(0, 25)] * 3)

    message = failure.value.message
    assert message.startswith(
        "Codefresh answered page 2 of https://g.codefresh.io/api/images with the same records as page 1, so it "
        "ignores the paging parameters"
    )
    assert "stream 'images'" in message and "report" in message and message.count(". ") == 0
    assert failure.value.failure_type == FailureType.system_error


def test_a_page_that_repeats_any_earlier_page_ends_the_listing():
    # Two pages in turn, each saying there is more (the builds listing of a hostile proxy).
    with pytest.raises(AirbyteTracedException) as failure:
        read_pages(guarded(images_strategy()), [images(0, 3), images(3, 3), images(0, 3)])
    assert "page 3 of" in failure.value.message and "as page 1" in failure.value.message


def test_a_custom_stream_is_told_to_fix_its_pagination():
    strategy = guarded(OffsetIncrement(config={}, page_size=2, parameters={}), {"name": "mine", "custom_stream": True})
    with pytest.raises(AirbyteTracedException) as failure:
        read_pages(strategy, [images(0, 2), images(0, 2)])
    assert failure.value.failure_type == FailureType.config_error
    assert "pagination of custom stream 'mine'" in failure.value.message


def test_slices_read_at_the_same_time_and_a_slice_read_again_are_listings_of_their_own():
    strategy = guarded(OffsetIncrement(config={}, page_size=2, parameters={}))
    january = StreamSlice(partition={}, cursor_slice={"start": "2026-01-01"})
    february = StreamSlice(partition={}, cursor_slice={"start": "2026-02-01"})
    token = strategy.initial_token
    for stream_slice in (january, february, january):  # the same first page, each its listing's first
        token = read_pages(strategy, [images(0, 2)], stream_slice)[0]
    assert token == 2
    # January read again from its first page, then on: not a repeat.
    assert read_pages(strategy, [images(0, 2), images(2, 2), images(4, 1)], january) == [2, 4, None]


def test_audit_pages_may_start_with_the_unnumbered_page_and_its_copy_as_page_one():
    def audit():
        strategy = PageIncrement(
            config={}, page_size=2, start_from_page=0, inject_on_first_request=False, parameters={}
        )
        return guarded(strategy, first_page_may_repeat=True)

    assert read_pages(audit(), [images(0, 2), images(0, 2), images(2, 2), images(4, 1)]) == [1, 2, 3, None]
    with pytest.raises(AirbyteTracedException):
        read_pages(audit(), [images(0, 2), images(2, 2), images(2, 2)])


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
