"""Answers that are retried (429, 5xx) and 200 answers the stream cannot read (HTML, JSON without the envelope).

As in test_streams_errors.py, the answer lands on the stream's own request (for pipeline_triggers, the pipelines
listing); a sync expected to fail reads one build or report only.
"""

from __future__ import annotations

import pytest
from airbyte_cdk.models import FailureType
from airbyte_cdk.test.mock_http import HttpResponse

from unit_tests import builders as b
from unit_tests.conftest import error, records_of, request, response, run_read, sent_requests
from unit_tests.stream_cases import ALL_STREAMS, ENVELOPE_STREAMS, canonical, case, first_only, stream_failure

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")


# --- retried ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_rate_limit_and_server_errors_are_retried(http_mocker, slept, stream):
    server_error = (500, 502, 503, 504)[ALL_STREAMS.index(stream) % 4]
    c = case(stream)
    c.mock(
        http_mocker,
        first_only(
            lambda page: [
                error(429, "Too Many Requests", {"Retry-After": "7"}),
                error(server_error, "Internal Server Error"),
                response(page),
            ]
        ),
    )

    output = run_read(stream, **c.config)

    assert canonical(records_of(output)) == canonical(c.expected)
    assert not output.errors
    # Two more requests than pages: the retries (audit' single-entry questions, pageSize=1, aside).
    pages = [r for r in sent_requests(http_mocker) if r["params"].get("pageSize") != ["1"]]
    assert len(pages) == len(c.parents) + len(c.own) + 2
    # The retry after the 429 waited what Codefresh asked for, plus the second the HTTP client adds and at most a
    # second of jitter (which never shortens the wait).
    assert any(8 <= wait <= 9 for wait in slept), slept


def test_rate_limit_wait_is_about_what_codefresh_asks_for(http_mocker, slept):
    http_mocker.get(request("team"), [error(429, "Too Many Requests", {"Retry-After": "7"}), response([b.team(0)])])

    output = run_read("teams")

    assert len(records_of(output)) == 1
    assert 7 + 1 <= sum(slept) <= 7 + 2, slept  # the HTTP client's own second, and the jitter (up to 1 s)


# --- not what the stream reads ---------------------------------------------------------------------------------------

LOGIN_PAGE = "<!DOCTYPE html><html><head><title>Sign in - Codefresh</title></head><body></body></html>"


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_html_instead_of_json_fails_as_a_config_error_saying_it_is_not_json(http_mocker, stream):
    c = case(stream, partitions=1)
    c.mock(http_mocker, first_only(lambda page: HttpResponse(LOGIN_PAGE, 200, {"Content-Type": "text/html"})))

    output = run_read(stream, expect_failure=True, **c.config)

    assert not records_of(output)
    failure = stream_failure(output, stream)
    assert failure.failure_type == FailureType.config_error
    assert "not JSON" in failure.message
    assert "base_url" in failure.message


@pytest.mark.parametrize("stream", ENVELOPE_STREAMS)
def test_json_without_the_envelope_fails_naming_the_missing_key(http_mocker, stream):
    c = case(stream, partitions=1)
    c.mock(http_mocker, first_only(lambda page: response({"message": "moved", "status": 200})))

    output = run_read(stream, expect_failure=True, **c.config)

    assert not records_of(output)
    assert f"'{c.records_key}'" in stream_failure(output, stream).message
