"""Pipeline runs, the one write (source_codefresh/pipeline_runs.py): which failures of the run POST are retried, and
what PipelineRunRetriever does with the others; what it saves in the state before watching a build, and how a retried
attempt given that state follows the build instead of posting. Never a second POST.

The requesters are fakes that answer from a script and count what was sent; the same paths against the sandbox
(a real server, faults included) are in integration_tests/test_pipeline_runs.py.
"""

from __future__ import annotations

import itertools
import socket
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import pytest
import requests
import urllib3
from airbyte_cdk.models import FailureType
from airbyte_cdk.sources.message import InMemoryMessageRepository
from airbyte_cdk.sources.streams.http.error_handlers.response_models import ResponseAction
from airbyte_cdk.sources.types import StreamSlice
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_codefresh.pipeline_runs import (
    RUN_ANNOTATION_KEY,
    NoBlindRetryErrorHandler,
    PipelineRunRetriever,
    _request_never_sent,
)
from source_codefresh.spec import SpecDefaults
from source_codefresh.state import StartedRunsCursor
from unit_tests import builders as b
from unit_tests.conftest import any_params, error, records_of, request, response, run_read, sent_requests
from unit_tests.responses import make_response
from unit_tests.stream_cases import stream_failure

API = "https://g.codefresh.io/api"
PIPELINE = "demo/hello-world"

# --- NoBlindRetryErrorHandler: the run POST's error policy ------------------------------------------------------------


def _decide(response_or_exception: Any) -> ResponseAction:
    return NoBlindRetryErrorHandler(config={}, parameters={}).interpret_response(response_or_exception).response_action


def test_an_accepted_run_is_a_success():
    assert _decide(make_response("b1", 200, url=f"{API}/pipelines/run/demo%2Fhello-world")) == ResponseAction.SUCCESS


def test_a_rate_limited_run_is_retried_codefresh_rejected_it_before_starting_anything():
    assert _decide(make_response({"message": "Too many requests"}, 429)) in (
        ResponseAction.RATE_LIMITED,
        ResponseAction.RETRY,
    )


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_not_retried_the_build_may_have_started(status):
    assert _decide(make_response({"message": "Bad gateway"}, status)) == ResponseAction.IGNORE


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_client_error_is_handed_to_the_retriever_unretried(status):
    assert _decide(make_response({"message": "no"}, status)) == ResponseAction.IGNORE


def _connection_error(reason: Exception) -> requests.exceptions.ConnectionError:
    """What requests raises when urllib3 gives up on a connection: ConnectionError(MaxRetryError(reason=...))."""
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/api/pipelines/run", reason))


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ConnectTimeout("connect timed out"),
        _connection_error(urllib3.exceptions.NewConnectionError(None, "Connection refused")),
        _connection_error(urllib3.exceptions.NameResolutionError("g.codefresh.io", None, OSError("no DNS"))),
        _connection_error(urllib3.exceptions.ConnectTimeoutError(None, "connect timed out")),
    ],
    ids=["connect-timeout", "refused", "name-resolution", "urllib3-connect-timeout"],
)
def test_a_connection_that_never_sent_the_request_is_retried(error):
    assert _request_never_sent(error)
    assert _decide(error) == ResponseAction.RETRY


@pytest.mark.parametrize(
    "error",
    [
        requests.exceptions.ReadTimeout("read timed out"),
        _connection_error(urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())),
        requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.")),
        requests.exceptions.ChunkedEncodingError("cut off"),
        requests.exceptions.ConnectionError("no reason given"),
    ],
    ids=["read-timeout", "reset-after-send", "aborted", "cut-off-answer", "unknown"],
)
def test_a_request_that_may_have_reached_codefresh_is_not_retried(error):
    assert not _request_never_sent(error)
    assert _decide(error) == ResponseAction.IGNORE


# Real connections: the exceptions requests raises on this machine, not ones built by hand.


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def hangs_up_after_reading() -> Iterator[str]:
    """A server that reads the request and closes the connection without answering (a proxy that died)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/api/pipelines/run/demo%2Fhello-world"
    thread.join(timeout=5)
    server.close()


def test_a_refused_connection_really_raised_counts_as_never_sent():
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        requests.post(f"http://127.0.0.1:{_free_port()}/api/pipelines/run/x", json={}, timeout=5)
    assert _request_never_sent(raised.value)


def test_a_connection_closed_after_the_request_was_read_really_raised_counts_as_maybe_sent(hangs_up_after_reading):
    with pytest.raises(requests.exceptions.ConnectionError) as raised:
        requests.post(hangs_up_after_reading, json={}, timeout=5)
    assert not _request_never_sent(raised.value)


# --- PipelineRunRetriever ---------------------------------------------------------------------------------------------


class _RunRequester:
    """The run POST: answers from a script (a response, or None for "no answer" after an ignored exception)."""

    def __init__(self, answer: Optional[requests.Response]) -> None:
        self.answer = answer
        self.sent: List[Tuple[str, Mapping[str, Any]]] = []

    def send_request(self, stream_slice: StreamSlice, request_body_json: Mapping[str, Any], **_: Any) -> Any:
        self.sent.append((stream_slice.partition["pipeline"], request_body_json))
        return self.answer


class _BuildRequester:
    """GET /builds/{id}: the statuses of successive polls; keeps the run's saved state at each poll."""

    def __init__(self, statuses: List[str]) -> None:
        self.statuses = list(statuses)
        self.polled: List[str] = []
        self.cursor: Optional[StartedRunsCursor] = None
        self.state_when_polled: List[Mapping[str, Any]] = []

    def send_request(self, stream_slice: StreamSlice, **_: Any) -> requests.Response:
        build_id = stream_slice.partition["build_id"]
        self.polled.append(build_id)
        if self.cursor is not None:
            self.state_when_polled.append(dict(self.cursor.state))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        # As Codefresh answers: a build that ended has its `finished` time.
        finished = "2026-11-30T06:10:00.000Z" if status in ("success", "error", "terminated", "denied") else None
        return make_response(
            {"id": build_id, "status": status, "pipelineName": PIPELINE, "finished": finished},
            url=f"{API}/builds/{build_id}",
        )


class _AnnotationRequester:
    """GET /annotations: per lookup, the build id carrying the asked run id (or None), plus an unrelated annotation."""

    def __init__(self, found: List[Optional[str]]) -> None:
        self.found = list(found)
        self.lookups: List[Mapping[str, Any]] = []

    def send_request(self, stream_slice: StreamSlice, request_params: Mapping[str, Any], **_: Any) -> requests.Response:
        self.lookups.append(dict(request_params))
        build_id = self.found.pop(0) if self.found else None
        annotations = [{"entityId": "someone-else", "key": RUN_ANNOTATION_KEY, "value": "source-codefresh-other"}]
        if build_id:
            annotations.append({"entityId": build_id, "key": RUN_ANNOTATION_KEY, "value": request_params["value"]})
        return make_response(annotations, url=f"{API}/annotations")


class _Run:
    """One read of the stream's one partition through the fakes: `outcome` is the records or the raised error;
    `states` the stream states the cursor emitted, in order."""

    def __init__(
        self,
        post_answer: Optional[requests.Response],
        statuses: Optional[List[str]] = None,
        found: Optional[List[Optional[str]]] = None,
        run: Optional[Dict[str, Any]] = None,
        state: Optional[Mapping[str, Any]] = None,
    ) -> None:
        run = run or {"pipeline": PIPELINE}
        self.runs, self.builds, self.annotations = (
            _RunRequester(post_answer),
            _BuildRequester(statuses or ["success"]),
            _AnnotationRequester(found or []),
        )
        self.repository = InMemoryMessageRepository()
        self.cursor = StartedRunsCursor("pipeline_runs", self.repository, state or {}, [run["pipeline"]])
        config: Dict[str, Any] = {"pipeline_runs": [run]}
        SpecDefaults().transform(config)  # as the CDK hands the config to the components
        self.builds.cursor = self.cursor
        retriever = PipelineRunRetriever(
            run_requester=self.runs,  # type: ignore[arg-type]
            build_requester=self.builds,  # type: ignore[arg-type]
            annotation_requester=self.annotations,  # type: ignore[arg-type]
            config=config,
            parameters={},
            cursor=self.cursor,
            poll_interval_seconds=0,
        )
        try:
            self.outcome: Any = list(
                retriever.read_records({}, StreamSlice(partition={"run_index": "0"}, cursor_slice={}))
            )
        except AirbyteTracedException as error:
            self.outcome = error
        self.states = [dict(m.state.stream.stream_state.__dict__) for m in self.repository.consume_queue() if m.state]


def _run(
    post_answer: Optional[requests.Response],
    statuses: Optional[List[str]] = None,
    found: Optional[List[Optional[str]]] = None,
    run: Optional[Dict[str, Any]] = None,
) -> Tuple[Any, _RunRequester, _BuildRequester, _AnnotationRequester]:
    """Reads the stream's one partition; returns (the record or the raised error, and the three fakes)."""
    done = _Run(post_answer, statuses, found, run)
    return done.outcome, done.runs, done.builds, done.annotations


def test_a_run_is_posted_once_with_its_run_id_and_polled_until_the_build_ends():
    variables = [{"name": "B", "value": "2"}, {"name": "A", "value": "x"}]
    run = {"pipeline": PIPELINE, "branch": "main", "variables": variables, "options": {"noCache": True}}
    records, runs, builds, annotations = _run(make_response("b1"), ["running", "running", "success"], run=run)

    assert len(runs.sent) == 1
    pipeline, body = runs.sent[0]
    assert pipeline == PIPELINE
    assert body["branch"] == "main" and body["options"] == {"noCache": True}
    assert body["variables"] == [{"key": "B", "value": "2"}, {"key": "A", "value": "x"}]
    run_id = body["annotations"][RUN_ANNOTATION_KEY]
    [record] = records
    assert record["id"] == "b1" and record["status"] == "success" and record["run_id"] == run_id
    assert record["requested_variable_names"] == ["A", "B"] and record["timed_out"] is False
    assert builds.polled == ["b1", "b1", "b1"] and record["polls"] == 3
    assert annotations.lookups == []


def test_every_run_gets_its_own_run_id():
    first = _run(make_response("b1"))[1].sent[0][1]["annotations"][RUN_ANNOTATION_KEY]
    second = _run(make_response("b2"))[1].sent[0][1]["annotations"][RUN_ANNOTATION_KEY]
    assert first != second and first.startswith("source-codefresh-")


@pytest.mark.parametrize("post_answer", [502, 500, 503, None], ids=["502", "500", "503", "no-answer"])
def test_a_run_whose_answer_was_lost_adopts_the_build_carrying_its_run_id_and_never_posts_again(post_answer, caplog):
    answer = make_response({"message": "upstream"}, post_answer) if post_answer else None
    records, runs, builds, annotations = _run(answer, ["success"], found=["b9"])

    assert len(runs.sent) == 1
    run_id = runs.sent[0][1]["annotations"][RUN_ANNOTATION_KEY]
    assert annotations.lookups == [{"entityType": "build", "key": RUN_ANNOTATION_KEY, "value": run_id}]
    [record] = records
    assert record["id"] == "b9" and record["run_id"] == run_id and builds.polled == ["b9"]
    assert any("adopted" in line for line in caplog.messages)


def test_the_lookup_is_repeated_before_giving_up():
    records, runs, _, annotations = _run(make_response({}, 504), found=[None, None, "b7"])
    assert [record["id"] for record in records] == ["b7"]
    assert len(annotations.lookups) == 3 and len(runs.sent) == 1


def test_a_lost_run_with_no_build_found_fails_transiently_without_a_second_post_and_saves_its_run_id():
    done = _Run(None, found=[None, None, None, None])
    error, runs = done.outcome, done.runs

    assert isinstance(error, AirbyteTracedException)
    # Transient: Airbyte retries the attempt, and a retried attempt only looks (the run id is in the state).
    assert error.failure_type == FailureType.transient_error
    run_id = runs.sent[0][1]["annotations"][RUN_ANNOTATION_KEY]
    assert PIPELINE in error.message and "did not send the request again" in error.message and run_id in error.message
    assert len(runs.sent) == 1 and len(done.annotations.lookups) == 3 and done.builds.polled == []
    [saved] = done.states
    assert saved["started"]["0"]["run_id"] == run_id and saved["started"]["0"]["build_id"] is None


# --- the state: what was started is saved before it is watched, and a retried attempt follows it -------------------


def test_the_started_build_is_saved_before_the_first_poll_and_closed_after_the_record():
    done = _Run(make_response("b1"), ["running", "success"])

    run_id = done.runs.sent[0][1]["annotations"][RUN_ANNOTATION_KEY]
    saved = {
        "0": {"pipeline": PIPELINE, "run_id": run_id, "build_id": "b1", "triggered_at": done.outcome[0]["triggered_at"]}
    }
    assert done.builds.state_when_polled == [{"started": saved}, {"started": saved}]
    assert done.states == [{"started": saved}, {"__ab_no_cursor_state_message": True}]


def test_a_retried_attempt_follows_the_saved_build_without_posting():
    saved = {
        "pipeline": PIPELINE,
        "run_id": "source-codefresh-r1",
        "build_id": "b5",
        "triggered_at": "2026-12-01T10:00:00.000Z",
    }
    done = _Run(make_response("never"), ["running", "success"], state={"started": {"0": saved}})

    assert done.runs.sent == [] and done.annotations.lookups == []
    [record] = done.outcome
    assert (record["id"], record["status"], record["run_id"], record["triggered_at"]) == (
        "b5",
        "success",
        "source-codefresh-r1",
        "2026-12-01T10:00:00.000Z",
    )
    assert done.builds.polled == ["b5", "b5"]
    assert done.states == [{"__ab_no_cursor_state_message": True}]


def test_a_retried_attempt_adopts_the_build_carrying_a_saved_run_id_without_posting():
    saved = {
        "pipeline": PIPELINE,
        "run_id": "source-codefresh-r2",
        "build_id": None,
        "triggered_at": "2026-12-01T10:00:00.000Z",
    }
    done = _Run(make_response("never"), ["success"], found=["b6"], state={"started": {"0": saved}})

    assert done.runs.sent == []
    assert done.annotations.lookups == [
        {"entityType": "build", "key": RUN_ANNOTATION_KEY, "value": "source-codefresh-r2"}
    ]
    assert [record["id"] for record in done.outcome] == ["b6"]
    assert done.states[0] == {"started": {"0": {**saved, "build_id": "b6"}}}


def test_a_saved_run_id_no_build_carries_stops_the_retries_and_starts_nothing():
    saved = {
        "pipeline": PIPELINE,
        "run_id": "source-codefresh-r3",
        "build_id": None,
        "triggered_at": "2026-12-01T10:00:00.000Z",
    }
    done = _Run(make_response("never"), found=[None, None, None], state={"started": {"0": saved}})

    error = done.outcome
    assert isinstance(error, AirbyteTracedException)
    # A config error: Airbyte does not retry it (another attempt could only look again); the next sync starts anew.
    assert error.failure_type == FailureType.config_error
    assert "source-codefresh-r3" in error.message and "Nothing was started again" in error.message
    assert done.runs.sent == [] and done.builds.polled == []
    assert done.states == [{"__ab_no_cursor_state_message": True}]


def test_a_saved_run_of_another_pipeline_is_not_followed_and_the_configured_one_starts(caplog):
    saved = {
        "pipeline": "demo/other",
        "run_id": "source-codefresh-r4",
        "build_id": "b8",
        "triggered_at": "2026-12-01T10:00:00.000Z",
    }
    done = _Run(make_response("b1"), state={"started": {"0": saved}})

    assert len(done.runs.sent) == 1 and [record["id"] for record in done.outcome] == ["b1"]
    assert any("b8" in line and "no longer followed" in line for line in caplog.messages)


@pytest.mark.parametrize(
    "state,says",
    [
        ({"started": "b1"}, "'started' is 'b1', not an object"),
        ({"started": {"0": {"pipeline": PIPELINE}}}, "'started.0' is"),
        (
            {"started": {"0": {"pipeline": PIPELINE, "run_id": "r", "triggered_at": "t", "build_id": 7}}},
            "not a started run",
        ),
    ],
)
def test_a_saved_state_that_cannot_be_read_fails_with_one_sentence(state, says):
    with pytest.raises(AirbyteTracedException) as raised:
        StartedRunsCursor("pipeline_runs", InMemoryMessageRepository(), state, [PIPELINE])
    assert raised.value.failure_type == FailureType.config_error
    assert (
        "The saved state of stream 'pipeline_runs' cannot be read" in raised.value.message
        and says in raised.value.message
    )


def test_the_retriever_refuses_to_run_without_its_checkpointing_cursor():
    with pytest.raises(ValueError, match="StartedRunsCursor"):
        PipelineRunRetriever(
            run_requester=_RunRequester(None),  # type: ignore[arg-type]
            build_requester=_BuildRequester(["success"]),  # type: ignore[arg-type]
            annotation_requester=_AnnotationRequester([]),  # type: ignore[arg-type]
            config={"pipeline_runs": [{"pipeline": PIPELINE}]},
            parameters={},
        )


class _Clock:
    """time.monotonic and time.sleep of pipeline_runs.py: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


@pytest.mark.parametrize("poll_seconds", [10, 150, 300])
def test_a_line_is_logged_at_least_every_minute_while_a_build_runs(mocker, caplog, poll_seconds):
    clock = _Clock()
    mocker.patch("source_codefresh.pipeline_runs.time", clock)
    logged: List[float] = []
    mocker.patch("source_codefresh.pipeline_runs.logger.info", side_effect=lambda message: logged.append(clock.now))
    runs, builds, annotations = (
        _RunRequester(make_response("b1")),
        _BuildRequester(["running"] * 12 + ["success"]),
        _AnnotationRequester([]),
    )
    retriever = PipelineRunRetriever(
        run_requester=runs,  # type: ignore[arg-type]
        build_requester=builds,  # type: ignore[arg-type]
        annotation_requester=annotations,  # type: ignore[arg-type]
        config={"pipeline_runs": [{"pipeline": PIPELINE, "wait_timeout_minutes": 360}]},
        parameters={},
        cursor=StartedRunsCursor("pipeline_runs", InMemoryMessageRepository(), {}, [PIPELINE]),
        poll_interval_seconds=poll_seconds,
    )
    started = clock.now
    [record] = list(retriever.read_records({}, StreamSlice(partition={"run_index": "0"}, cursor_slice={})))

    assert record["polls"] == 13 and clock.now - started == 12 * poll_seconds
    moments = [started] + logged + [clock.now]
    assert max(b - a for a, b in itertools.pairwise(moments)) <= 60, moments


def test_an_unknown_pipeline_is_a_config_error_naming_the_entry_without_a_lookup():
    error, runs, builds, annotations = _run(make_response({"message": "Pipeline not found"}, 404))

    assert isinstance(error, AirbyteTracedException) and error.failure_type == FailureType.config_error
    assert f"no pipeline '{PIPELINE}' (pipeline_runs entry 1)" in error.message and "project/pipeline" in error.message
    assert len(runs.sent) == 1 and annotations.lookups == [] and builds.polled == []


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_run_is_a_config_error_naming_the_scope(status):
    error, runs, _, annotations = _run(make_response({"message": "Forbidden"}, status))

    assert isinstance(error, AirbyteTracedException) and error.failure_type == FailureType.config_error
    assert f"HTTP {status}" in error.message and "pipeline:run" in error.message
    assert len(runs.sent) == 1 and annotations.lookups == []


def test_a_rejected_run_is_a_config_error_quoting_codefresh():
    error, runs, _, annotations = _run(make_response({"message": "Branch 'nope' not found"}, 400))

    assert isinstance(error, AirbyteTracedException) and error.failure_type == FailureType.config_error
    assert "Branch 'nope' not found" in error.message and "HTTP 400" in error.message
    assert len(runs.sent) == 1 and annotations.lookups == []


@pytest.mark.parametrize("body", [{"id": "b1"}, "", b"not json"], ids=["object", "empty-string", "not-json"])
def test_an_accepted_run_without_a_build_id_fails_naming_the_run_id_without_a_second_post(body):
    error, runs, builds, annotations = _run(make_response(body, 200))

    assert isinstance(error, AirbyteTracedException) and error.failure_type == FailureType.system_error
    assert runs.sent[0][1]["annotations"][RUN_ANNOTATION_KEY] in error.message
    assert len(runs.sent) == 1 and annotations.lookups == [] and builds.polled == []


# --- polling and the recovery lookup through the connector (the manifest's requesters, CDK HttpMocker) ----------------
# Polling stops once the build has finished (state.py `build_finished`: a `finished` time and a status that is not a
# running one; a `denied` approval must not poll until the timeout); a 404 of GET /annotations means "no annotation
# matches", not a wrong base_url.

BUILD_ID = b.oid(7, "run")
RUN_ENTRY = {"pipeline": "demo/approve-and-deploy", "wait_timeout_minutes": 30}
FINISHED = "2026-11-30T06:10:00.000Z"


def _build(status: str, finished: Optional[str] = None) -> dict:
    return {
        "id": BUILD_ID,
        "status": status,
        "pipelineName": RUN_ENTRY["pipeline"],
        "created": "2026-11-30T06:00:00.000Z",
        "finished": finished,
    }


RUN_URL = "https://g.codefresh.io/api/pipelines/run/demo%2Fapprove-and-deploy"


def _read_run(http_mocker, builds):
    # The POST body carries a fresh run id: answered by requests_mock directly (HttpMocker matches bodies exactly).
    http_mocker.requests.post(RUN_URL, json=BUILD_ID)
    http_mocker.get(request(f"builds/{BUILD_ID}"), [response(build) for build in builds])
    return run_read("pipeline_runs", pipeline_runs=[RUN_ENTRY], pipeline_runs_poll_seconds=1)


@pytest.mark.usefixtures("parse_manifest_once")
def test_a_denied_approval_stops_polling_at_once_instead_of_waiting_for_the_timeout(http_mocker, slept):
    # pending -> running -> waiting for approval -> denied: four polls, not thirty minutes of them.
    statuses = ["pending", "running", "pending-approval"]
    output = _read_run(http_mocker, [_build(status) for status in statuses] + [_build("denied", FINISHED)])

    (run,) = records_of(output)
    assert (run["status"], run["timed_out"], run["polls"]) == ("denied", False, 4)
    assert len(sent_requests(http_mocker, f"builds/{BUILD_ID}")) == 4
    assert sum(slept) < 10, slept


@pytest.mark.usefixtures("parse_manifest_once", "slept")
def test_terminating_is_still_running(http_mocker):
    output = _read_run(http_mocker, [_build("running"), _build("terminating"), _build("terminated", FINISHED)])

    (run,) = records_of(output)
    assert (run["status"], run["polls"]) == ("terminated", 3)


@pytest.mark.parametrize("status", ["success", "approved"])
@pytest.mark.usefixtures("parse_manifest_once", "slept")
def test_a_build_without_a_finish_time_is_polled_again_whatever_its_status(http_mocker, status):
    # A final status (or one not known yet) without a `finished` time: the record would lack the build's end.
    output = _read_run(http_mocker, [_build("running"), _build(status), _build(status, FINISHED)])

    (run,) = records_of(output)
    assert (run["status"], run["finished"], run["timed_out"], run["polls"]) == (status, FINISHED, False, 3)


@pytest.mark.usefixtures("parse_manifest_once", "slept")
def test_a_404_from_the_annotation_lookup_means_no_build_was_found_not_a_wrong_base_url(http_mocker):
    # The run request got a 5xx: the build may have started. The lookup answers 404 ("none"): the stream fails
    # saying it cannot tell, and never posts again.
    http_mocker.requests.post(RUN_URL, status_code=502, json={"status": 502, "message": "Bad Gateway"})
    http_mocker.get(any_params("annotations"), error(404, "Not Found"))

    output = run_read("pipeline_runs", expect_failure=True, pipeline_runs=[RUN_ENTRY], pipeline_runs_poll_seconds=1)

    assert not records_of(output)
    failure = stream_failure(output, "pipeline_runs")
    assert "no build carrying run id" in failure.message
    assert "base_url" not in failure.message
    assert failure.failure_type == FailureType.transient_error
    assert len([r for r in sent_requests(http_mocker) if r["path"].startswith("pipelines/run/")]) == 1


@pytest.mark.usefixtures("parse_manifest_once")
def test_a_build_that_cannot_be_watched_fails_transiently_and_the_sync_ends_with_the_build_in_its_state(
    http_mocker, slept
):
    http_mocker.requests.post(RUN_URL, json=BUILD_ID)
    http_mocker.get(request(f"builds/{BUILD_ID}"), [response(_build("running")), error(503, "Service Unavailable")])

    output = run_read("pipeline_runs", expect_failure=True, pipeline_runs=[RUN_ENTRY], pipeline_runs_poll_seconds=1)

    assert not records_of(output)
    failure = stream_failure(output, "pipeline_runs")
    # Transient: Airbyte retries the attempt, which follows this build (it is in the last state) rather than posting.
    assert failure.failure_type == FailureType.transient_error
    assert (
        f"started build {BUILD_ID}" in failure.message and "A retried attempt follows the same build" in failure.message
    )
    assert "Exhausted available request attempts" not in failure.message
    assert len([r for r in sent_requests(http_mocker) if r["path"].startswith("pipelines/run/")]) == 1
    last_state = output.state_messages[-1].state.stream.stream_state.__dict__
    assert last_state["started"]["0"]["build_id"] == BUILD_ID, "the CDK's closing state must not forget the build"
