"""What a user sees when Codefresh answers with an error, for every stream (the error policy is shared).

The error lands on the stream's own request (for pipeline_triggers, the pipelines listing its records come from);
parents answer normally. A sync expected to fail reads one build or report only, because a failing sync may stop
before it sends every request the mocker expects.
"""

from __future__ import annotations

from typing import List

import pytest
from airbyte_cdk.models import FailureType, SyncMode
from airbyte_cdk.test.entrypoint_wrapper import read
from airbyte_cdk.test.models.outcome import ExpectedOutcome

from source_codefresh import SourceCodefresh
from unit_tests import builders as b
from unit_tests.conftest import (
    API,
    API_KEY,
    any_params,
    catalog,
    config,
    error,
    log_lines,
    records_of,
    request,
    response,
    run_read,
    sent_requests,
    serialized_messages,
    user,
)
from unit_tests.stream_cases import (
    ALL_STREAMS,
    PER_BUILD_STREAMS,
    RECENT_ISO,
    SCOPED_STREAMS,
    case,
    first_only,
    recent,
    stream_failure,
)

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

LIST_STREAMS = [name for name in ALL_STREAMS if name not in PER_BUILD_STREAMS]


# --- 401: the key is rejected ------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_rejected_key_fails_the_sync_saying_so_without_showing_the_key(http_mocker, stream):
    c = case(stream, partitions=1)
    c.mock(http_mocker, first_only(lambda page: error(401, "Unauthorized: invalid API key")))

    output = run_read(stream, expect_failure=True, **c.config)

    assert not records_of(output)
    failure = stream_failure(output, stream)
    assert failure.failure_type == FailureType.config_error
    assert "rejected the API key" in failure.message
    assert "Bearer" in failure.message  # how to paste the key
    for message in serialized_messages(output):
        assert API_KEY not in message
        assert API_KEY.split(".")[-1] not in message


# --- 403: the key lacks a scope --------------------------------------------------------------------------------------


def _answer_user(http_mocker, c, status: int = 200) -> None:
    """GET /user, which the policy asks after a 403 on a scoped stream (unless the case already reads it)."""
    if not any(req.path == "user" for req, _ in c.parents):
        http_mocker.get(request("user"), response(user()) if status == 200 else error(status, "Forbidden"))


def _forbid_own_requests(http_mocker, c) -> List[str]:
    """403 for every request to the stream's own paths, however many are sent (the test counts them)."""
    paths = sorted({req.path for req, _ in c.own})
    for path in paths:
        http_mocker.requests.register_uri(
            "GET",
            f"{API}/{path}",
            status_code=403,
            headers={"Content-Type": "application/json"},
            json={"status": 403, "code": "1003", "name": "FORBIDDEN", "message": "Forbidden: missing scope"},
        )
    return paths


@pytest.mark.parametrize("stream", SCOPED_STREAMS)
def test_missing_scope_skips_the_stream_with_one_request_and_one_log_line(http_mocker, stream):
    c = case(stream)
    for req, body in c.parents:
        http_mocker.get(req, response(body))
    own_paths = _forbid_own_requests(http_mocker, c)
    _answer_user(http_mocker, c)

    output = run_read(stream, **c.config)

    assert not records_of(output)
    assert not output.errors
    lines = [line for line in log_lines(output) if f"'{c.scope}'" in line]
    assert len(lines) == 1, lines
    assert f"'{stream}'" in lines[0]
    # No further request once the stream is skipped (other builds, reports, windows), so no further line either.
    own_sent = [r for r in sent_requests(http_mocker) if r["path"] in own_paths]
    assert len(own_sent) == 1, [r["path"] for r in own_sent]
    assert not [line for line in log_lines(output) if "Ignoring response" in line]


@pytest.mark.parametrize("stream", [s for s in SCOPED_STREAMS if s not in ("accounts", "account_settings")])
def test_a_restricted_key_fails_the_sync_in_one_sentence_instead_of_skipping(http_mocker, stream):
    # Codefresh answers 403 to everything, GET /user included, for a key it restricted for unusual activity.
    c = case(stream, partitions=1)
    c.mock(http_mocker, first_only(lambda page: error(403, "Forbidden")))
    _answer_user(http_mocker, c, status=403)

    output = run_read(stream, expect_failure=True, **c.config)

    assert not records_of(output)
    failure = stream_failure(output, stream)
    assert failure.failure_type == FailureType.config_error
    assert "restricted the key" in failure.message and "GET /user" in failure.message
    assert not [line for line in log_lines(output) if "Skipping stream" in line]


def test_a_second_read_through_the_same_source_fails_again_on_a_restricted_key(http_mocker):
    # What one read learned (this stream failed) must not turn the next read of the same source into an empty stream.
    c = case("teams", partitions=1)
    c.mock(http_mocker, first_only(lambda page: error(403, "Forbidden")))
    _answer_user(http_mocker, c, status=403)
    cfg, cat = config(**c.config), catalog("teams", SyncMode.full_refresh)
    source = SourceCodefresh(catalog=cat, config=cfg, state=None)

    for _ in range(2):
        output = read(source, cfg, cat, None, expected_outcome=ExpectedOutcome.EXPECT_EXCEPTION)
        assert not records_of(output)
        assert "restricted the key" in stream_failure(output, "teams").message


def test_forbidden_current_user_fails_the_sync(http_mocker):
    http_mocker.get(request("user"), error(403, "Forbidden"))

    output = run_read("current_user", expect_failure=True)

    assert not records_of(output)
    failure = stream_failure(output, "current_user")
    assert failure.failure_type == FailureType.config_error
    # GET /user needs no scope: a 403 there means Codefresh restricted the key.
    assert "restricted the key" in failure.message


# --- 404 -------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", LIST_STREAMS)
def test_not_found_on_a_listing_fails_as_a_config_error_pointing_at_base_url(http_mocker, stream):
    c = case(stream, partitions=1)
    c.mock(http_mocker, first_only(lambda page: error(404, "Not Found")))

    output = run_read(stream, expect_failure=True, **c.config)

    assert not records_of(output)
    failure = stream_failure(output, stream)
    assert failure.failure_type == FailureType.config_error
    assert "base_url" in failure.message


@pytest.mark.parametrize("stream", PER_BUILD_STREAMS)
def test_a_build_deleted_after_it_was_listed_is_skipped_with_one_log_line(http_mocker, stream):
    c = case(stream)
    deleted = c.own_path()
    c.mock(http_mocker, first_only(lambda body: error(404, "Build not found")))
    kept_build = b.oid(1, "b")

    output = run_read(stream, **c.config)

    assert not output.errors
    records = records_of(output)
    assert records and {r.get("build_id", r.get("id")) for r in records} == {kept_build}
    lines = [line for line in log_lines(output) if deleted in line]
    assert len(lines) == 1, lines
    assert f"'{stream}'" in lines[0]


# --- the request ceiling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_minute, waits", [(120, True), (None, False)], ids=["120 per minute", "default 6000"])
def test_the_request_ceiling_spreads_requests_over_time(http_mocker, slept, per_minute, waits):
    builds = [b.build(i, recent(10 + i)) for i in range(1, 7)]  # one listing and six builds: seven requests
    http_mocker.get(any_params("workflow"), response(b.cursor_page(builds, 1, False, "workflows")))
    for i, build in enumerate(builds, start=1):
        http_mocker.get(request(f"builds/{build['id']}"), response(b.build_detail(i, build["created"])))
    overrides = {"max_requests_per_minute": per_minute} if per_minute else {}

    records = records_of(run_read("build_details", start_date=RECENT_ISO, **overrides))

    assert len(records) == 6
    if waits:
        # Two requests in any second: the last five wait at least two seconds in all.
        assert sum(slept) >= 2.0, slept
    else:
        assert sum(slept) == 0, slept


@pytest.mark.parametrize("stream", ["accounts", "account_settings"])
def test_forbidden_parent_without_a_scope_fails_its_child_instead_of_skipping(http_mocker, stream):
    # The child declares a scope, its parent (GET /user) does not: the parent's 403 is not a missing scope.
    http_mocker.get(request("user"), error(403, "Forbidden"))

    output = run_read(stream, expect_failure=True)

    assert not records_of(output)
    assert stream_failure(output, stream).failure_type == FailureType.config_error


# --- retries spent: one sentence that says what to do, not the CDK's "see logs" -----------------------------------


@pytest.mark.parametrize("stream", ["teams", "builds", "build_details", "images"])
@pytest.mark.parametrize(
    "status, says",
    [
        (
            503,
            [
                "kept failing through every retry (up to 5 minutes; last: ",
                "status.codefresh.io",
                "run the sync again later",
            ],
        ),
        (
            429,
            [
                "kept rate limiting this API key (HTTP 429) through every retry (up to 5 minutes); ",
                "lower max_requests_per_minute",
            ],
        ),
    ],
)
def test_a_request_whose_retries_are_spent_fails_the_stream_saying_what_to_do(http_mocker, slept, stream, status, says):
    c = case(stream, partitions=1)
    c.mock(http_mocker, first_only(lambda page: error(status, "Service Unavailable")))

    output = run_read(stream, expect_failure=True, **c.config)

    assert not records_of(output)
    failure = stream_failure(output, stream)
    assert failure.failure_type == FailureType.transient_error
    assert failure.message.startswith(f"Stream '{stream}':"), failure.message
    for words in says:
        assert words in failure.message, failure.message
    assert "Exhausted available request attempts" not in failure.message and API_KEY not in failure.message
    # Every retry of the policy (max_retries: 20) waited before the stream failed; max_time runs on the real clock.
    assert len([seconds for seconds in slept if seconds]) == 20, slept
