"""The error policy's parts: Retry-After (retries.py), the named handlers composed per requester
(error_handlers.py, as declared in the manifest's `definitions.error_handlers`), the JSON body checks (answers.py)
and what a 403 means (access.py)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import yaml
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.declarative.models.declarative_component_schema import CustomErrorHandler
from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import ManifestComponentTransformer
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
from airbyte_cdk.sources.declarative.parsers.model_to_component_factory import ModelToComponentFactory
from airbyte_cdk.sources.declarative.requesters.error_handlers import CompositeErrorHandler
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh import access
from source_codefresh.access import AlreadySkipped, KeyRestricted, ReadAccess, ScopeGatedRequester, one_read
from source_codefresh.answers import ApiAnswers, CustomStreamAnswers
from source_codefresh.retries import RetryAfterBackoffStrategy, parse_retry_after
from source_codefresh.source import manifest_path
from unit_tests.responses import make_response

# --- Retry-After -----------------------------------------------------------------------------------------------------


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


# --- named handlers, composed ----------------------------------------------------------------------------------------

_HANDLERS = ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(manifest_path().read_text()))["definitions"][
    "error_handlers"
]


def policy(*names: str, **parameters: Any) -> Any:
    """An ErrorPolicy of the manifest's named handlers `names`, for a stream with `parameters`, as the CDK builds it."""
    definition = {
        "type": "CustomErrorHandler",
        "class_name": "source_codefresh.error_handlers.ErrorPolicy",
        "error_handlers": [_HANDLERS[name] for name in names],
        "$parameters": {"name": "analytics_reports", "records_key": "data", **parameters},
    }
    propagated = ManifestComponentTransformer().propagate_types_and_parameters("", definition, {})
    return ModelToComponentFactory().create_component(CustomErrorHandler, propagated, config={"api_key": "k"})


def _failure(handler: Any, response: requests.Response) -> AirbyteTracedException:
    """A failure is raised by the handler, with the policy's sentence and nothing of the answer's raw body."""
    with pytest.raises(AirbyteTracedException) as failed:
        handler.interpret_response(response)
    return failed.value


def test_a_named_handler_speaks_only_for_the_error_answers_it_names():
    # A report without data is skipped; a 200 that quotes the same words is a report (the CDK's filter would match
    # the words on any answer); a 500 without them, a 429 and a dropped connection are the base's to retry.
    reports = policy("empty_report_skipped", "base")
    no_data = make_response({"message": "Could not get analytics report"}, 500)
    assert reports.interpret_response(no_data).response_action == ResponseAction.IGNORE
    quoting = make_response({"data": [{"title": "Could not get analytics report"}]}, 200)
    assert reports.interpret_response(quoting).response_action == ResponseAction.SUCCESS
    for other in (make_response({"message": "boom"}, 500), make_response({}, 429), requests.ConnectionError("x")):
        assert reports.interpret_response(other).response_action == ResponseAction.RETRY


def test_a_named_failure_is_the_answer_not_the_base_policys():
    # A custom stream's 404 names its entry; the base's 404 (check base_url) is never reached.
    failure = _failure(policy("custom_stream_entry", "custom_stream_base", name="mine"), make_response({}, 404))
    assert failure.failure_type == FailureType.config_error
    assert "check the path of custom stream 'mine'" in failure.message and "base_url" not in failure.message
    assert "Check base_url" in _failure(policy("base"), make_response({}, 404)).message


def test_the_retries_are_the_base_policys():
    # The CDK's composite takes max_retries from its first handler and max_time from its longest (600 s by default).
    composed = policy("missing_scope", "deleted_build", "still_computing", "base")
    assert (composed.max_retries, composed.max_time) == (20, 300)
    plain = CompositeErrorHandler(error_handlers=composed.error_handlers, parameters={})
    assert (plain.max_retries, plain.max_time) != (20, 300)
    with pytest.raises(ValueError, match="ends with its base policy"):
        policy("base", "deleted_build")


def test_a_skipped_analytics_window_and_a_report_still_computing():
    reports = policy("rejected_request_skipped", "empty_report_skipped", "still_computing", "base")
    rejected = reports.interpret_response(make_response({"message": "dateRange too long"}, 400))
    assert rejected.response_action == ResponseAction.IGNORE and "dateRange too long" in rejected.error_message
    assert reports.interpret_response(make_response({}, 432)).response_action == ResponseAction.RETRY
    # Without those handlers, a 400 stops the stream and a 432 is a client error no rule names.
    for status in (400, 432):
        assert "which retrying will not change" in _failure(policy("base"), make_response({}, status)).message


# --- the 2xx checks and the statuses no rule names (answers.py) ------------------------------------------------------


def _handler(records_key: str | None = "docs") -> ApiAnswers:
    return ApiAnswers(config={}, parameters={"records_key": records_key, "name": "pipelines"})


def _custom_handler(records_key: str = "docs") -> CustomStreamAnswers:
    return CustomStreamAnswers(config={}, parameters={"records_key": records_key, "name": "mine"})


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


def test_a_custom_stream_without_its_records_key_is_told_to_fix_it():
    failure = _failure(_custom_handler("items"), make_response({"docs": [], "count": 0}))
    assert failure.failure_type == FailureType.config_error
    assert "no 'items' list (top-level keys: ['count', 'docs'])" in failure.message
    assert "set its records_key in custom_streams" in failure.message


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


# --- what a 403 means: the scope gate and the restricted-key question (access.py) ------------------------------------


def test_the_first_request_to_an_endpoint_goes_alone_and_the_others_follow_its_answer():
    read = ReadAccess()
    assert read.admit("audit", "audit") is True  # the first request: sent alone
    waited = []
    waiter = threading.Thread(target=lambda: waited.append(read.admit("audit", "audit")))
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive(), "a second request waits for the first answer"
    read.mark_skipped("audit")  # the first answer was a 403 for a missing scope
    read.done("audit", "audit")
    waiter.join(timeout=5)
    assert waited == [None], "not sent: the stream is skipped"
    assert read.admit("audit", "audit") is None
    assert read.admit("teams", "team") is True  # other streams are not concerned


def test_once_the_first_answer_came_the_endpoints_requests_go_in_parallel():
    read = ReadAccess()
    assert read.admit("builds", "workflow") is True
    read.done("builds", "workflow")
    assert [read.admit("builds", "workflow") for _ in range(3)] == [False, False, False]
    # A second endpoint of the same stream has its own first request.
    assert read.admit("builds", "builds/{id}") is True


def test_the_key_is_asked_about_once_while_restricted_and_a_good_answer_is_trusted_for_a_minute(mocker):
    statuses = [200, 403, 200]
    asked = mocker.patch.object(access, "_user_status", side_effect=lambda config: statuses.pop(0))
    clock = mocker.patch.object(access.time, "monotonic", return_value=1000.0)
    read = ReadAccess()
    config = {"api_key": "k", "api_root": "https://g.codefresh.io/api"}

    assert read.key_is_restricted(config) is False
    assert read.key_is_restricted(config) is False and asked.call_count == 1  # trusted for a minute
    clock.return_value = 1061.0
    assert read.key_is_restricted(config) is True and asked.call_count == 2  # asked again, now refused
    assert read.key_is_restricted(config) is True and asked.call_count == 2  # for the rest of the read


def test_an_unanswered_question_counts_as_not_restricted(mocker):
    mocker.patch.object(access, "_user_status", return_value=None)
    assert ReadAccess().key_is_restricted({"api_key": "k"}) is False


def test_the_components_of_one_read_share_what_it_learns_and_only_they():
    with one_read():
        first, second = access.this_read(), access.this_read()
    assert first is second
    with one_read():
        assert access.this_read() is not first
    assert access.this_read() is not access.this_read()  # outside a read (a check): each component its own


class _Answering:
    """A stand-in for the HttpRequester behind the gate: its error policy's verdict on each request, in turn."""

    def __init__(self, *verdicts: Any) -> None:
        self.verdicts, self.sent = list(verdicts), 0

    def send_request(self, **request: Any) -> Any:
        self.sent += 1
        verdict = self.verdicts.pop(0)
        if callable(verdict):
            verdict = verdict()
        if isinstance(verdict, BaseException):
            raise verdict
        return verdict


def _restricted() -> KeyRestricted:
    return KeyRestricted(message="restricted", internal_message="restricted", failure_type=FailureType.config_error)


def test_a_restricted_key_fails_each_stream_once_and_the_others_without_a_request():
    with one_read():
        builds = ScopeGatedRequester(requester=_Answering(_restricted()), config={}, parameters={"name": "builds"})
        teams = ScopeGatedRequester(requester=_Answering(), config={}, parameters={"name": "teams"})
    with pytest.raises(KeyRestricted):
        builds.send_request()
    assert builds.send_request() is None and builds.requester.sent == 1  # the stream failed: nothing more is sent
    with pytest.raises(KeyRestricted, match="restricted"):  # another stream: the same sentence, without a request
        teams.send_request()
    assert teams.send_request() is None and teams.requester.sent == 0


def test_a_request_in_flight_when_its_stream_failed_for_a_restricted_key_gets_no_answer():
    with one_read():
        read = access.this_read()
        # A builds' request of build_details, answered 403 after the stream's listing failed it.
        details = ScopeGatedRequester(
            requester=_Answering(lambda: read.first_failure("build_details") and _restricted()),
            config={},
            parameters={"name": "build_details", "endpoint": "builds/{id}"},
        )
    assert details.send_request() is None


def test_a_403_of_a_stream_already_skipped_is_no_answer_and_no_line():
    skip = policy("missing_scope", "base", scope="account admin")
    first = skip.interpret_response(make_response({}, 403))
    assert first.response_action == ResponseAction.IGNORE and "lacks the 'account admin' scope" in first.error_message
    with pytest.raises(AlreadySkipped):
        skip.interpret_response(make_response({}, 403))
    with one_read():
        gate = ScopeGatedRequester(requester=_Answering(AlreadySkipped("s")), config={}, parameters={"name": "s"})
    assert gate.send_request() is None


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
