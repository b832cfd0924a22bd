"""Focused tests of each custom component in source_codefresh/components.py."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests

from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from airbyte_cdk.sources.types import Record, StreamSlice
from source_codefresh import components
from source_codefresh.components import (
    BuildStepsExtractor,
    CodefreshErrorHandler,
    CursorBackedPageIncrement,
    CursorStartsAfterState,
    EnvelopeExtractor,
    PerBuildRetriever,
    RetryAfterBackoffStrategy,
    parse_retry_after,
    response_json,
)


def _response(body, status: int = 200, headers=None, url: str = "https://g.codefresh.io/api/workflow?page=1"):
    response = requests.Response()
    response.status_code = status
    response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    response.url = url
    response.request = requests.Request("GET", url).prepare()
    return response


# --- CursorBackedPageIncrement -------------------------------------------------------------------------------------


def test_each_listing_starts_at_page_one_with_its_own_session():
    strategy = CursorBackedPageIncrement(config={}, parameters={}, page_size=100)
    first, second = strategy.initial_token, strategy.initial_token
    assert first["page"] == second["page"] == 1
    assert first["session_id"] != second["session_id"]


def test_next_page_keeps_the_session_and_adds_one():
    strategy = CursorBackedPageIncrement(config={}, parameters={}, page_size=100)
    token = {"page": 3, "session_id": "s-1"}
    page = _response({"workflows": {"docs": [{"id": "a"}]}, "pagination": {"page": 3, "nextPage": True}})
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
    assert strategy.next_page_token(_response(body), count, None, {"page": 2, "session_id": "s"}) is None


def test_page_size_is_an_integer():
    assert CursorBackedPageIncrement(config={}, parameters={}, page_size="50").get_page_size() == 50


# --- Retry-After ---------------------------------------------------------------------------------------------------


def test_retry_after_in_seconds():
    assert parse_retry_after("7") == 7.0


def test_retry_after_as_http_date():
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


@pytest.mark.parametrize("value", [None, "", "soon"])
def test_retry_after_absent_or_unreadable(value):
    assert parse_retry_after(value) is None


def test_backoff_follows_retry_after_and_is_capped():
    strategy = RetryAfterBackoffStrategy(config={}, parameters={}, max_wait_seconds=60)
    assert strategy.backoff_time(_response({}, 429, {"Retry-After": "5"}), 1) == 5.0
    assert strategy.backoff_time(_response({}, 429, {"Retry-After": "3600"}), 1) == 60.0
    # Zero would read as "no wait given"; the smallest wait is one second.
    assert strategy.backoff_time(_response({}, 429, {"Retry-After": "0"}), 1) == 1.0


def test_backoff_defers_to_the_next_strategy_without_retry_after():
    strategy = RetryAfterBackoffStrategy(config={}, parameters={})
    assert strategy.backoff_time(_response({}, 429), 1) is None
    assert strategy.backoff_time(requests.ConnectionError("reset"), 1) is None


# --- CodefreshErrorHandler -----------------------------------------------------------------------------------------


def _handler(records_key: str | None = "docs") -> CodefreshErrorHandler:
    return CodefreshErrorHandler(config={}, parameters={"records_key": records_key, "name": "pipelines"})


def test_expected_json_is_a_success():
    assert _handler().interpret_response(_response({"docs": []})).response_action == ResponseAction.SUCCESS


def test_html_login_page_fails_at_once_and_says_what_was_received():
    page = _response(b"<!DOCTYPE html><html><title>Sign in</title></html>", headers={"Content-Type": "text/html"})
    resolution = _handler().interpret_response(page)
    assert resolution.response_action == ResponseAction.FAIL
    assert resolution.failure_type == FailureType.config_error
    assert "text/html" in resolution.error_message and "<!DOCTYPE html>" in resolution.error_message
    assert "base_url" in resolution.error_message


def test_cut_off_json_is_retried():
    resolution = _handler().interpret_response(_response(b'{"docs": [{"id": "a"}, {"i'))
    assert resolution.response_action == ResponseAction.RETRY
    assert resolution.failure_type == FailureType.transient_error
    assert "does not parse" in resolution.error_message


def test_json_without_the_envelope_fails_naming_it():
    resolution = _handler().interpret_response(_response({"message": "moved"}))
    assert resolution.response_action == ResponseAction.FAIL
    assert "'docs'" in resolution.error_message and "message" in resolution.error_message


def test_nested_envelope_is_checked():
    handler = _handler("workflows.docs")
    good = _response({"workflows": {"docs": []}, "pagination": {}})
    assert handler.interpret_response(good).response_action == ResponseAction.SUCCESS
    assert handler.interpret_response(_response({"workflows": {}})).response_action == ResponseAction.FAIL


def test_root_records_may_be_an_object_or_a_list_but_not_a_string():
    handler = _handler(None)
    assert handler.interpret_response(_response([])).response_action == ResponseAction.SUCCESS
    assert handler.interpret_response(_response({"_id": "u"})).response_action == ResponseAction.SUCCESS
    assert handler.interpret_response(_response("text")).response_action == ResponseAction.FAIL


def test_error_statuses_keep_the_manifest_policy():
    assert _handler().interpret_response(_response({}, 502)).response_action == ResponseAction.RETRY


# --- CursorStartsAfterState ----------------------------------------------------------------------------------------


def test_iso_state_moves_one_millisecond():
    migration = CursorStartsAfterState(cursor_field="created", datetime_format="iso", config={}, parameters={})
    state = {"created": "2026-10-05T12:34:56.789Z"}
    assert migration.should_migrate(state)
    assert migration.migrate(state) == {"created": "2026-10-05T12:34:56.790Z"}


def test_epoch_millisecond_state_moves_one_millisecond():
    migration = CursorStartsAfterState(cursor_field="createdAt", datetime_format="%ms", config={}, parameters={})
    assert migration.migrate({"createdAt": 1759667696789}) == {"createdAt": 1759667696790}


@pytest.mark.parametrize("state", [{}, {"other": "x"}, {"state_type": "date-range", "created": "x"}])
def test_states_without_a_plain_cursor_are_left_alone(state):
    migration = CursorStartsAfterState(cursor_field="created", datetime_format="iso", config={}, parameters={})
    assert not migration.should_migrate(state)


# --- BuildStepsExtractor -------------------------------------------------------------------------------------------


def _revision(steps):
    return {"_id": "r", "context": {"workflowMetadata": {}, "stepsMetadata": steps}, "metadata": {}}


def test_steps_come_from_the_last_revision_without_the_pseudo_step():
    first = _revision({"old": {"status": "running"}})
    last = _revision(
        {
            "Initializing Process": {"type": "builtin", "status": "success", "totalTime": 900},
            "Initializing": {"type": "builtin", "status": "success"},
            "build": {"type": "build", "status": "success", "totalTime": 61000, "currentAttempt": 1},
        }
    )
    records = list(BuildStepsExtractor(config={}, parameters={}).extract_records(_response([first, last])))
    assert [record["name"] for record in records] == ["Initializing Process", "build"]
    assert records[1] == {"name": "build", "type": "build", "status": "success", "totalTime": 61000, "currentAttempt": 1}


@pytest.mark.parametrize("body", [[], [{"context": {}}], [{"context": {"stepsMetadata": None}}]])
def test_a_build_without_revision_or_steps_has_no_steps(body):
    assert list(BuildStepsExtractor(config={}, parameters={}).extract_records(_response(body))) == []


# --- response_json and EnvelopeExtractor ---------------------------------------------------------------------------


def test_the_answer_is_parsed_once_and_kept_on_the_response(mocker):
    page = _response({"docs": [{"_id": "a"}]})
    loads = mocker.spy(components.orjson, "loads")
    assert response_json(page) is response_json(page)
    assert loads.call_count == 1


def test_a_body_that_is_not_json_raises_and_is_not_kept():
    page = _response(b"<html>login</html>")
    for _ in range(2):
        with pytest.raises(ValueError):
            response_json(page)


@pytest.mark.parametrize(
    "records_key, body, expected",
    [
        ("docs", {"docs": [{"_id": "a"}, {"_id": "b"}], "count": 2}, [{"_id": "a"}, {"_id": "b"}]),
        ("workflows.docs", {"workflows": {"docs": [{"id": "a"}]}, "pagination": {}}, [{"id": "a"}]),
        ("", [{"_id": "a"}], [{"_id": "a"}]),
        ("", {"_id": "a"}, [{"_id": "a"}]),
        ("", {}, []),
        ("docs", {"message": "Forbidden"}, []),
        ("workflows.docs", {"workflows": None}, []),
    ],
    ids=["envelope", "nested envelope", "root list", "root object", "empty object", "missing key", "null on the way"],
)
def test_envelope_extractor_matches_dpath_without_wildcards(records_key, body, expected):
    extractor = EnvelopeExtractor(
        config={}, parameters={"records_key": records_key}, records_key="{{ parameters.records_key }}"
    )
    assert list(extractor.extract_records(_response(body))) == expected


def test_envelope_extractor_yields_nothing_for_a_body_that_is_not_json():
    extractor = EnvelopeExtractor(config={}, parameters={}, records_key="docs")
    assert list(extractor.extract_records(_response(b"not json"))) == []


# --- PerBuildRetriever ---------------------------------------------------------------------------------------------


class _Listing:
    """Stands in for the builds listing: the builds of the slice, in order, and the slices it was asked for."""

    def __init__(self, builds):
        self.builds, self.slices = builds, []

    def read_records(self, records_schema, stream_slice=None):
        self.slices.append(stream_slice)
        yield from (Record(data=build, stream_name="builds", associated_slice=stream_slice) for build in self.builds)


class _Requester:
    """Answers GET /builds/{id} from a dict of id -> (status, body); records which builds were asked for."""

    def __init__(self, answers, fail_on=None):
        self.answers, self.asked, self.fail_on = answers, [], fail_on

    def send_request(self, stream_slice=None, **kwargs):
        build_id = stream_slice.partition["parent_id"]
        self.asked.append((build_id, stream_slice.extra_fields.get("created")))
        if build_id == self.fail_on:
            raise RuntimeError(f"build {build_id} failed")
        status, body = self.answers[build_id]
        return _response(body, status=status, url=f"https://g.codefresh.io/api/builds/{build_id}")


class _Selector:
    def select_records(self, response, stream_state, records_schema, stream_slice=None, next_page_token=None):
        yield Record(data={**response_json(response), "build_created": stream_slice.extra_fields["created"]},
                     stream_name="build_details", associated_slice=stream_slice)


def _per_build(builds, answers, workers=3, fail_on=None):
    listing, requester = _Listing(builds), _Requester(answers, fail_on)
    retriever = PerBuildRetriever(
        listing=listing, requester=requester, record_selector=_Selector(), config={"num_workers": workers},
        parameters={}, max_concurrency="{{ config.num_workers }}", name="build_details",
    )
    return retriever, listing, requester


def test_per_build_records_come_in_listing_order_as_plain_data_filed_under_the_window():
    builds = [{"id": f"b{i}", "created": f"2026-11-0{i % 9 + 1}T00:00:00.000Z"} for i in range(20)]
    retriever, listing, requester = _per_build(builds, {b["id"]: (200, {"id": b["id"]}) for b in builds})
    window = StreamSlice(partition={}, cursor_slice={"start_time": "2026-11-01", "end_time": "2026-11-20"})

    records = list(retriever.read_records({}, window))

    assert [r["id"] for r in records] == [b["id"] for b in builds]
    assert all(type(r) is dict for r in records)  # the CDK files them under `window`, which its cursor tracks
    assert records[3]["build_created"] == builds[3]["created"]
    assert listing.slices == [window]
    assert sorted(requester.asked) == sorted((b["id"], b["created"]) for b in builds)


def test_per_build_skips_builds_the_error_policy_ignored():
    builds = [{"id": "b1", "created": "c1"}, {"id": "gone", "created": "c2"}, {"id": "b3", "created": "c3"}]
    answers = {"b1": (200, {"id": "b1"}), "gone": (404, {"message": "not found"}), "b3": (200, {"id": "b3"})}
    retriever, _, _ = _per_build(builds, answers)

    assert [r["id"] for r in retriever.read_records({}, StreamSlice(partition={}, cursor_slice={}))] == ["b1", "b3"]


def test_per_build_failure_stops_the_window_and_drops_builds_not_started():
    builds = [{"id": f"b{i}", "created": "c"} for i in range(200)]
    retriever, _, requester = _per_build(builds, {b["id"]: (200, {"id": b["id"]}) for b in builds}, workers=2, fail_on="b1")

    with pytest.raises(RuntimeError, match="build b1 failed"):
        list(retriever.read_records({}, StreamSlice(partition={}, cursor_slice={})))
    # At most 2 x workers builds were in flight when the failure surfaced; the rest of the listing was never fetched.
    assert len(requester.asked) <= 2 * 2 + 2


def test_per_build_leaves_the_listing_records_untransformed():
    class _Transforming:
        def __init__(self):
            self.record_selector = type("Selector", (), {"transformations": ["AddFields build_id"]})()

        def read_records(self, records_schema, stream_slice=None):
            return iter(())

    listing = _Transforming()
    PerBuildRetriever(listing=listing, requester=_Requester({}), record_selector=_Selector(), config={}, parameters={})
    assert listing.record_selector.transformations == []
