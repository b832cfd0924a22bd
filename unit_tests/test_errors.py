"""The error policy's Python parts: Retry-After and the JSON body checks (source_codefresh/errors.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.streams.http.error_handlers.response_models import (
    ResponseAction,
)
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.errors import (
    CodefreshErrorHandler,
    RetryAfterBackoffStrategy,
    parse_retry_after,
)
from unit_tests.responses import make_response


def test_retry_after_in_seconds():
    assert parse_retry_after("7") == 7.0


def test_retry_after_as_http_date():
    now = datetime(2026, 11, 23, 12, 0, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "-inf"])
def test_retry_after_absent_or_unreadable(value):
    assert parse_retry_after(value) is None


def test_a_retry_after_that_is_not_a_finite_number_defers_to_the_next_strategy():
    strategy = RetryAfterBackoffStrategy(config={}, parameters={})
    assert strategy.backoff_time(make_response({}, 429, {"Retry-After": "NaN"}), 1) is None


def test_backoff_follows_retry_after_and_is_capped():
    strategy = RetryAfterBackoffStrategy(config={}, parameters={}, max_wait_seconds=60)
    assert 5.0 <= strategy.backoff_time(make_response({}, 429, {"Retry-After": "5"}), 1) <= 6.0
    assert strategy.backoff_time(make_response({}, 429, {"Retry-After": "3600"}), 1) == 60.0
    assert 59.5 <= strategy.backoff_time(make_response({}, 429, {"Retry-After": "59.5"}), 1) <= 60.0
    # Zero would read as "no wait given"; the smallest wait is one second.
    assert 1.0 <= strategy.backoff_time(make_response({}, 429, {"Retry-After": "0"}), 1) <= 2.0


def test_readers_told_to_wait_one_second_come_back_spread_over_the_next_second_never_sooner():
    strategy = RetryAfterBackoffStrategy(config={}, parameters={}, max_wait_seconds=300)
    waits = [strategy.backoff_time(make_response({}, 429, {"Retry-After": "1"}), 1) for _ in range(1000)]

    assert min(waits) >= 1.0 and max(waits) <= 2.0  # never less than asked, at most max_jitter_seconds more
    assert min(waits) < 1.1 and max(waits) > 1.9  # spread over the whole second, not in lock-step
    assert len(set(waits)) > 80
    assert all(round(wait, 2) == wait for wait in waits)  # hundredths, as the CDK logs them


def test_jitter_can_be_set_or_turned_off():
    no_jitter = RetryAfterBackoffStrategy(config={}, parameters={}, max_jitter_seconds=0)
    assert {no_jitter.backoff_time(make_response({}, 429, {"Retry-After": "2"}), 1) for _ in range(50)} == {2.0}
    wide = RetryAfterBackoffStrategy(config={}, parameters={}, max_jitter_seconds="5")
    waits = [wide.backoff_time(make_response({}, 429, {"Retry-After": "2"}), 1) for _ in range(500)]
    assert min(waits) >= 2.0 and max(waits) <= 7.0 and max(waits) > 6.0


def test_backoff_defers_to_the_next_strategy_without_retry_after():
    strategy = RetryAfterBackoffStrategy(config={}, parameters={})
    assert strategy.backoff_time(make_response({}, 429), 1) is None
    assert strategy.backoff_time(requests.ConnectionError("reset"), 1) is None


def _handler(records_key: str | None = "docs") -> CodefreshErrorHandler:
    return CodefreshErrorHandler(config={}, parameters={"records_key": records_key, "name": "pipelines"})


def _failure(handler: CodefreshErrorHandler, response: requests.Response) -> AirbyteTracedException:
    """A failure is raised by the handler, with the policy's sentence and nothing of the answer's raw body."""
    with pytest.raises(AirbyteTracedException) as failed:
        handler.interpret_response(response)
    return failed.value


def test_expected_json_is_a_success():
    assert _handler().interpret_response(make_response({"docs": []})).response_action == ResponseAction.SUCCESS


def test_html_login_page_fails_at_once_and_says_what_was_received():
    page = make_response(b"<!DOCTYPE html><html><title>Sign in</title></html>", headers={"Content-Type": "text/html"})
    failure = _failure(_handler(), page)
    assert failure.failure_type == FailureType.config_error
    assert "text/html" in failure.message and "<!DOCTYPE html>" in failure.message
    assert "base_url" in failure.message


def test_cut_off_json_is_retried():
    resolution = _handler().interpret_response(make_response(b'{"docs": [{"id": "a"}, {"i'))
    assert resolution.response_action == ResponseAction.RETRY
    assert resolution.failure_type == FailureType.transient_error
    assert "does not parse" in resolution.error_message


def test_json_without_the_envelope_fails_naming_it():
    failure = _failure(_handler(), make_response({"message": "moved"}))
    assert "'docs'" in failure.message and "message" in failure.message


def test_nested_envelope_is_checked():
    handler = _handler("workflows.docs")
    good = make_response({"workflows": {"docs": []}, "pagination": {}})
    assert handler.interpret_response(good).response_action == ResponseAction.SUCCESS
    assert "'workflows.docs'" in _failure(handler, make_response({"workflows": {}})).message


def test_root_records_may_be_an_object_or_a_list_but_not_a_string():
    handler = _handler(None)
    assert handler.interpret_response(make_response([])).response_action == ResponseAction.SUCCESS
    assert handler.interpret_response(make_response({"_id": "u"})).response_action == ResponseAction.SUCCESS
    assert "top-level keys: str" in _failure(handler, make_response("text")).message


@pytest.mark.parametrize("records_key, body", [(None, [{"_id": "a"}, 1, "two"]), ("docs", {"docs": [None]})])
def test_records_that_are_not_objects_fail_the_stream_with_one_sentence(records_key, body):
    failure = _failure(_handler(records_key), make_response(body))
    assert failure.failure_type == FailureType.system_error
    assert "records that are not objects" in failure.message and "'pipelines'" in failure.message
    custom = _failure(_custom_handler(records_key or ""), make_response(body))
    assert custom.failure_type == FailureType.config_error and "set its records_key" in custom.message


@pytest.mark.parametrize("status", [405, 409, 414, 418, 422])
def test_a_client_error_no_rule_names_fails_at_once_without_the_body_or_the_query(status):
    answer = make_response(
        {"password": "leaked-pw"}, status, url="https://g.codefresh.io/api/registries?q=abc&token=t0ken"
    )
    failure = _failure(_custom_handler(), answer)
    assert failure.failure_type == FailureType.config_error
    assert f"HTTP {status}" in failure.message and "custom stream 'mine'" in failure.message
    built_in = _failure(_handler(), answer)
    assert built_in.failure_type == FailureType.system_error and "report" in built_in.message
    for text in (failure.message, failure.internal_message, built_in.message, built_in.internal_message):
        assert "leaked-pw" not in text and "t0ken" not in text


@pytest.mark.parametrize("status", [408, 501, 505])
def test_any_other_status_no_rule_names_is_retried(status):
    resolution = _handler().interpret_response(make_response({}, status))
    assert resolution.response_action == ResponseAction.RETRY and f"HTTP {status}" in resolution.error_message


def test_error_statuses_keep_the_manifest_policy():
    assert _handler().interpret_response(make_response({}, 502)).response_action == ResponseAction.RETRY


# --- what a 403 means: the scope gate and the restricted-key question (SyncState) --------------------------------


def test_the_first_request_to_an_endpoint_goes_alone_and_the_others_follow_its_answer():
    import threading

    from source_codefresh.errors import SyncState

    sync = SyncState()
    assert sync.admit("audit", "audit") is True  # the first request: sent alone
    waited = []
    waiter = threading.Thread(target=lambda: waited.append(sync.admit("audit", "audit")))
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive(), "a second request waits for the first answer"
    sync.mark_skipped("audit")  # the first answer was a 403 for a missing scope
    sync.done("audit", "audit")
    waiter.join(timeout=5)
    assert waited == [None], "not sent: the stream is skipped"
    assert sync.admit("audit", "audit") is None
    assert sync.admit("teams", "team") is True  # other streams are not concerned


def test_once_the_first_answer_came_the_endpoints_requests_go_in_parallel():
    from source_codefresh.errors import SyncState

    sync = SyncState()
    assert sync.admit("builds", "workflow") is True
    sync.done("builds", "workflow")
    assert [sync.admit("builds", "workflow") for _ in range(3)] == [False, False, False]
    # A second endpoint of the same stream has its own first request.
    assert sync.admit("builds", "builds/{id}") is True


def test_a_skip_is_said_once():
    from source_codefresh.errors import SyncState

    sync = SyncState()
    assert sync.mark_skipped("build_details") is True
    assert sync.mark_skipped("build_details") is False


def test_the_key_is_asked_about_once_while_restricted_and_a_good_answer_is_trusted_for_a_minute(mocker):
    from source_codefresh import errors

    statuses = [200, 403, 200]
    asked = mocker.patch.object(errors, "_user_status", side_effect=lambda config: statuses.pop(0))
    clock = mocker.patch.object(errors.time, "monotonic", return_value=1000.0)
    sync = errors.SyncState()
    config = {"api_key": "k", "api_root": "https://g.codefresh.io/api"}

    assert sync.key_is_restricted(config) is False
    assert sync.key_is_restricted(config) is False and asked.call_count == 1  # trusted for a minute
    clock.return_value = 1061.0
    assert sync.key_is_restricted(config) is True and asked.call_count == 2  # asked again, now refused
    assert sync.key_is_restricted(config) is True and asked.call_count == 2  # for the rest of the sync


def test_an_unanswered_question_counts_as_not_restricted(mocker):
    from source_codefresh import errors

    mocker.patch.object(errors, "_user_status", return_value=None)
    assert errors.SyncState().key_is_restricted({"api_key": "k"}) is False


def test_each_sync_has_its_own_state():
    from source_codefresh.errors import sync_state

    first, second = {"api_key": "k"}, {"api_key": "k"}
    assert sync_state(first) is sync_state(first)
    assert sync_state(first) is not sync_state(second)


# --- custom streams ---------------------------------------------------------------------------------------------------


def _custom_handler(records_key: str = "docs") -> CodefreshErrorHandler:
    return CodefreshErrorHandler(
        config={}, parameters={"records_key": records_key, "name": "mine", "custom_stream": True}
    )


def test_a_custom_stream_without_its_records_key_is_told_to_fix_it():
    failure = _failure(_custom_handler("items"), make_response({"docs": [], "count": 0}))
    assert failure.failure_type == FailureType.config_error
    assert "no 'items' list (top-level keys: ['count', 'docs'])" in failure.message
    assert "set its records_key in custom_streams" in failure.message


# --- messages never repeat a secret -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base_url", ["http://user:s3cret-pw@codefresh.example.com/api", "https://user:s3cret-pw@codefresh.example.com/api"]
)
def test_a_base_url_with_credentials_is_refused_without_repeating_them(base_url):
    from source_codefresh.source import config_problem

    problem = config_problem({"api_key": "k", "base_url": base_url}) or ""
    assert "without credentials" in problem and "s3cret-pw" not in problem, problem


@pytest.mark.parametrize(
    "base_url",
    [
        "user:s3cret-pw@g.codefresh.io/api",  # no scheme: urlsplit finds no user name at all
        "ftp://user:s3cret-pw@g.codefresh.io/api",
        "https//user:s3cret-pw@g.codefresh.io/api",
        "https://user:s3cret-pw@/api",
    ],
)
def test_a_malformed_base_url_is_refused_without_quoting_it(base_url):
    from source_codefresh.source import config_problem

    problem = config_problem({"api_key": "k", "base_url": base_url}) or ""
    assert problem.startswith("base_url is not a URL") and "s3cret-pw" not in problem, problem


def test_the_default_restricted_key_message_is_the_manifests_word_for_word():
    # The default serves a requester built without the manifest's handler; both must tell the user the same thing.
    from pathlib import Path

    import yaml

    from source_codefresh.errors import _DEFAULT_RESTRICTED_MESSAGE

    manifest = yaml.safe_load((Path(__file__).parent.parent / "manifest.yaml").read_text())
    assert manifest["definitions"]["error_handler"]["restricted_key_message"] == _DEFAULT_RESTRICTED_MESSAGE
