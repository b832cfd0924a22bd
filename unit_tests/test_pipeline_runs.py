"""Pipeline runs (source_codefresh/pipeline_runs.py): when polling stops, and what a 404 of the recovery lookup
means. The run itself (one POST, never two) is covered against the sandbox in integration_tests/test_pipeline_runs.py.
"""

from __future__ import annotations

import pytest

from airbyte_cdk.models import FailureType
from source_codefresh.pipeline_runs import RUNNING_BUILD_STATUSES, build_has_ended
from unit_tests import builders as b
from unit_tests.conftest import any_params, error, records_of, request, response, run_read, sent_requests
from unit_tests.stream_cases import stream_failure

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

BUILD_ID = b.oid(7, "run")
RUN = {"pipeline": "demo/approve-and-deploy", "wait_timeout_minutes": 30}


def _build(status: str) -> dict:
    return {"id": BUILD_ID, "status": status, "pipelineName": RUN["pipeline"], "created": "2026-11-30T06:00:00.000Z"}


RUN_URL = "https://g.codefresh.io/api/pipelines/run/demo%2Fapprove-and-deploy"


def _run(http_mocker, statuses):
    # The POST body carries a fresh run id: answered by requests_mock directly (HttpMocker matches bodies exactly).
    http_mocker._mocker.post(RUN_URL, json=BUILD_ID)
    http_mocker.get(request(f"builds/{BUILD_ID}"), [response(_build(status)) for status in statuses])
    return run_read("pipeline_runs", pipeline_runs=[RUN], pipeline_runs_poll_seconds=1)


@pytest.mark.parametrize("status", sorted(RUNNING_BUILD_STATUSES))
def test_running_statuses_keep_polling(status):
    assert not build_has_ended(status)


@pytest.mark.parametrize("status", ["success", "error", "terminated", "denied", "approved", "failure", "archived"])
def test_any_other_status_ends_polling(status):
    assert build_has_ended(status)


def test_a_build_without_a_status_yet_is_still_starting():
    assert not build_has_ended(None)


def test_a_denied_approval_stops_polling_at_once_instead_of_waiting_for_the_timeout(http_mocker, slept):
    # pending -> running -> waiting for approval -> denied: four polls, not thirty minutes of them.
    output = _run(http_mocker, ["pending", "running", "pending-approval", "denied"])

    (run,) = records_of(output)
    assert (run["status"], run["timed_out"], run["polls"]) == ("denied", False, 4)
    assert len(sent_requests(http_mocker, f"builds/{BUILD_ID}")) == 4
    assert sum(slept) < 10, slept


def test_terminating_is_still_running(http_mocker):
    output = _run(http_mocker, ["running", "terminating", "terminated"])

    (run,) = records_of(output)
    assert (run["status"], run["polls"]) == ("terminated", 3)


def test_a_404_from_the_annotation_lookup_means_no_build_was_found_not_a_wrong_base_url(http_mocker):
    # The run request got a 5xx: the build may have started. The lookup answers 404 ("none"): the stream fails
    # saying it cannot tell, and never posts again.
    http_mocker._mocker.post(RUN_URL, status_code=502, json={"status": 502, "message": "Bad Gateway"})
    http_mocker.get(any_params("annotations"), error(404, "Not Found"))

    output = run_read("pipeline_runs", expect_failure=True, pipeline_runs=[RUN], pipeline_runs_poll_seconds=1)

    assert not records_of(output)
    failure = stream_failure(output, "pipeline_runs")
    assert "no build carrying run id" in failure.message
    assert "base_url" not in failure.message
    assert failure.failure_type == FailureType.transient_error
    assert len([r for r in sent_requests(http_mocker) if r["path"].startswith("pipelines/run/")]) == 1
