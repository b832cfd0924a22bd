"""Pipeline runs against the sandbox: one POST per configured run, never two, whatever fails on the way, even across
attempts (a retried attempt gets the state the failed one left, as Airbyte hands it over)."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Dict, List, Optional

import pytest
from airbyte_cdk.models import AirbyteStateMessage, AirbyteStateMessageSerializer, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, discover, read
from airbyte_cdk.test.models.outcome import ExpectedOutcome

from codefresh_sandbox import SANDBOX_API_KEY, SandboxConfig, SandboxServer
from codefresh_sandbox.expected import connector_command
from source_codefresh import SourceCodefresh
from source_codefresh.pipeline_runs import PipelineRunRetriever

RUN_POST = {"method": "POST", "path": "^/api/pipelines/run/"}
HELLO = {
    "pipeline": "demo/hello-world",
    "branch": "main",
    "variables": [{"name": "REPORT_DAYS", "value": "7"}, {"name": "TOKEN", "value": "s3cr3t-value"}],
}
FAILING = {"pipeline": "demo/failing-build"}
TERMINATED = {"pipeline": "demo/terminated-build"}


@pytest.fixture
def sandbox():
    server = SandboxServer(SandboxConfig(builds=30, pipelines=20)).start()
    yield server
    server.stop()


def config(server: SandboxServer, runs: Optional[List[Dict[str, Any]]]) -> Dict[str, Any]:
    cfg: Dict[str, Any] = {"api_key": SANDBOX_API_KEY, "base_url": server.base_url, "pipeline_runs_poll_seconds": 1}
    if runs is not None:
        cfg["pipeline_runs"] = runs
    return cfg


CATALOG = (
    CatalogBuilder()
    .with_stream(
        ConfiguredAirbyteStreamBuilder()
        .with_name("pipeline_runs")
        .with_sync_mode(SyncMode.full_refresh)
        .with_primary_key([["id"]])
    )
    .build()
)


def read_runs(
    server: SandboxServer, runs: List[Dict[str, Any]], state: Optional[List[AirbyteStateMessage]] = None
) -> EntrypointOutput:
    cfg = config(server, runs)
    return read(
        SourceCodefresh(catalog=CATALOG, config=cfg, state=state),
        cfg,
        CATALOG,
        state,
        expected_outcome=ExpectedOutcome.ALLOW_ANY,
    )


def last_state(output: EntrypointOutput) -> List[AirbyteStateMessage]:
    """The stream's last state message: what Airbyte hands to the next attempt."""
    return [output.state_messages[-1].state]


def by_pipeline(output: EntrypointOutput) -> Dict[str, Dict[str, Any]]:
    return {message.record.data["pipeline"]: message.record.data for message in output.records}


def error_messages(output: EntrypointOutput) -> List[str]:
    return [message.trace.error.message for message in output.errors]


def test_each_configured_run_is_posted_once_and_emitted_with_its_final_status(sandbox):
    output = read_runs(sandbox, [HELLO, FAILING, TERMINATED])

    assert sandbox.stats()["posts"] == {"demo/hello-world": 1, "demo/failing-build": 1, "demo/terminated-build": 1}
    runs = by_pipeline(output)
    assert {name: run["status"] for name, run in runs.items()} == {
        "demo/hello-world": "success",
        "demo/failing-build": "error",
        "demo/terminated-build": "terminated",
    }
    assert not output.errors, "a failed or terminated build is data, not a sync error"
    hello = runs["demo/hello-world"]
    assert hello["timed_out"] is False and hello["requested_branch"] == "main"
    assert hello["requested_variable_names"] == ["REPORT_DAYS", "TOKEN"]
    assert "s3cr3t-value" not in str([m.record.data for m in output.records]), "variable values are never emitted"
    assert sandbox.data.get_build(hello["id"]) is not None, "the record is the build that was started"
    assert hello["run_id"] in str(hello.get("annotations")), "the build carries the run's unique annotation"


def test_a_denied_approval_is_emitted_once_it_is_denied_not_after_the_timeout(sandbox):
    # demo/denied-approval: its approval step is denied and the build ends `denied`, a status that is neither
    # success, error nor terminated. Polling stops on any status that is not a running one.
    output = read_runs(sandbox, [{"pipeline": "demo/denied-approval", "wait_timeout_minutes": 5}])

    run = by_pipeline(output)["demo/denied-approval"]
    assert (run["status"], run["timed_out"], run["polls"]) == ("denied", False, 2)
    assert sandbox.stats()["posts"] == {"demo/denied-approval": 1}
    assert not output.errors


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "status", "status": 502, "after_processing": True}, id="502-after-the-build-started"),
        pytest.param({"kind": "drop", "after_processing": True}, id="dropped-after-the-build-started"),
    ],
)
def test_a_lost_answer_adopts_the_started_build_instead_of_posting_again(sandbox, fault):
    sandbox.set_faults([{"match": RUN_POST, "every": 1, "times": 1, **fault}])
    output = read_runs(sandbox, [HELLO])

    assert sandbox.stats()["posts"] == {"demo/hello-world": 1}
    assert by_pipeline(output)["demo/hello-world"]["status"] == "success"
    assert not output.errors


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "status", "status": 502}, id="502-before-processing"),
        pytest.param({"kind": "status", "status": 503}, id="503-before-processing"),
        pytest.param({"kind": "drop"}, id="dropped-before-processing"),
    ],
)
def test_when_it_cannot_tell_the_stream_fails_naming_the_pipeline_and_never_posts_again(sandbox, fault):
    sandbox.set_faults([{"match": RUN_POST, "every": 1, "times": 1, **fault}])
    output = read_runs(sandbox, [HELLO])

    assert sandbox.stats()["posts"] == {}, "the failed POST started nothing, and it was not sent again"
    assert not output.records
    messages = error_messages(output)
    assert any("demo/hello-world" in m and "did not send the request again" in m for m in messages), messages
    # The retried attempt looks for the build of the saved run id, finds none (nothing started) and stops.
    retried = read_runs(sandbox, [HELLO], state=last_state(output))
    assert sandbox.stats()["posts"] == {} and not retried.records
    assert [error.trace.error.failure_type.value for error in retried.errors][:1] == ["config_error"]
    assert sum(n for route, n in sandbox.stats()["by_route"].items() if route.startswith("POST ")) == 1


# --- across attempts: what the first attempt started, the second follows -----------------------------------------


def test_an_attempt_killed_while_it_waits_is_resumed_by_the_next_with_its_state_and_one_post(tmp_path):
    # The first attempt runs as Airbyte runs it (the installed command, a config file) and is killed as soon as it
    # saved the build it started: no exception, no closing state, the process is gone.
    with SandboxServer(SandboxConfig(builds=30, pipelines=20, run_polls_to_finish=6)) as server:
        cfg = config(server, [HELLO])
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        (tmp_path / "catalog.json").write_text(json.dumps(CATALOG_JSON))
        first = subprocess.Popen(
            [
                *connector_command(),
                "read",
                "--config",
                str(tmp_path / "config.json"),
                "--catalog",
                str(tmp_path / "catalog.json"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        saved: List[Dict[str, Any]] = []
        assert first.stdout is not None
        for line in first.stdout:
            message = json.loads(line)
            if message.get("type") == "STATE":
                saved.append(message["state"])
                first.kill()
                break
        first.wait(timeout=60)
        assert saved, "the first attempt saved nothing before it was killed"
        build_id = saved[0]["stream"]["stream_state"]["started"]["0"]["build_id"]
        assert build_id and server.stats()["posts"] == {"demo/hello-world": 1}
        assert server.data.get_build(build_id)["status"] not in ("success", "error", "terminated"), "killed mid-run"

        second = read_runs(server, [HELLO], state=[AirbyteStateMessageSerializer.load(saved[0])])

        assert server.stats()["posts"] == {"demo/hello-world": 1}, (
            "the second attempt followed the build, posting nothing"
        )
        [run] = [message.record.data for message in second.records]
        assert (run["id"], run["status"], run["timed_out"]) == (build_id, "success", False)
        assert run["run_id"] == saved[0]["stream"]["stream_state"]["started"]["0"]["run_id"]
        assert not second.errors
        assert last_state(second)[0].stream.stream_state.__dict__ == {"__ab_no_cursor_state_message": True}


def test_a_sync_that_fails_after_the_post_hands_its_build_to_the_next_attempt(sandbox):
    # Watching fails (every poll refused): the stream fails, and the sync's last state still holds the build.
    sandbox.set_faults([{"match": {"method": "GET", "path": "^/api/builds/"}, "kind": "status", "status": 401}])
    failed = read_runs(sandbox, [HELLO, FAILING])
    assert not failed.records and failed.errors
    assert sandbox.stats()["posts"] == {"demo/hello-world": 1, "demo/failing-build": 1}
    state = last_state(failed)
    started = state[0].stream.stream_state.__dict__["started"]
    assert {run["pipeline"] for run in started.values()} == {"demo/hello-world", "demo/failing-build"}

    sandbox.set_faults([])
    retried = read_runs(sandbox, [HELLO, FAILING], state=state)

    assert sandbox.stats()["posts"] == {"demo/hello-world": 1, "demo/failing-build": 1}, "exactly one POST per run"
    runs = by_pipeline(retried)
    assert {name: (run["id"], run["status"]) for name, run in runs.items()} == {
        run["pipeline"]: (run["build_id"], "success" if run["pipeline"] == "demo/hello-world" else "error")
        for run in started.values()
    }
    assert not retried.errors
    # The next sync, given that final state, starts new builds: nothing is open any more.
    again = read_runs(sandbox, [HELLO], state=last_state(retried))
    assert sandbox.stats()["posts"]["demo/hello-world"] == 2 and not again.errors


def test_a_429_on_the_run_request_is_retried_safely(sandbox):
    sandbox.set_faults([{"match": RUN_POST, "kind": "rate_limit", "retry_after": "1", "every": 1, "times": 2}])
    output = read_runs(sandbox, [HELLO])

    assert sandbox.stats()["posts"] == {"demo/hello-world": 1}
    assert by_pipeline(output)["demo/hello-world"]["status"] == "success"


def test_polling_rides_through_server_errors(sandbox):
    sandbox.set_faults(
        [{"match": {"method": "GET", "path": "^/api/builds/"}, "kind": "status", "status": 503, "every": 2}]
    )
    output = read_runs(sandbox, [HELLO])

    assert sandbox.stats()["posts"] == {"demo/hello-world": 1}
    assert by_pipeline(output)["demo/hello-world"]["status"] == "success"


def test_an_unknown_pipeline_is_a_config_error_that_names_it(sandbox):
    output = read_runs(sandbox, [{"pipeline": "demo/no-such-pipeline"}])

    assert not output.records
    assert output.errors[0].trace.error.failure_type.value == "config_error"
    assert "demo/no-such-pipeline" in output.errors[0].trace.error.message


def test_without_pipeline_runs_the_stream_is_not_discovered_and_nothing_is_posted(sandbox):
    cfg = config(sandbox, None)
    names = [stream.name for stream in discover(SourceCodefresh(config=cfg), cfg).catalog.catalog.streams]
    assert "pipeline_runs" not in names

    catalog = CatalogBuilder()
    for name in names:
        catalog = catalog.with_stream(name, SyncMode.full_refresh)
    built = catalog.build()
    output = read(SourceCodefresh(catalog=built, config=cfg), cfg, built)
    assert output.records and not output.errors
    stats = sandbox.stats()
    assert stats["posts"] == {}
    # The only POSTs are the GitOps streams' GraphQL queries (read-only: an allowlisted query, never a mutation).
    assert [route for route in stats["by_route"] if route.startswith("POST")] == ["POST /2.0/api/graphql"]
    assert stats["graphql"]["query"] > 0 and stats["graphql"]["mutation"] == 0


def test_with_pipeline_runs_the_stream_is_discovered(sandbox):
    cfg = config(sandbox, [HELLO])
    names = [stream.name for stream in discover(SourceCodefresh(config=cfg), cfg).catalog.catalog.streams]
    assert "pipeline_runs" in names
    assert sandbox.stats()["posts"] == {}, "discover never starts a build"


@pytest.mark.parametrize("reading", ["empty_200", "not_found_404"])
def test_a_run_whose_post_failed_is_reported_under_either_answer_of_the_annotation_lookup(reading):
    # FIDELITY.md 1.12: /annotations may answer 404 when nothing matches. The run request fails before Codefresh
    # processed it, so the lookup finds nothing; under either answer the stream fails naming the pipeline (not a
    # wrong base_url) and never posts again.
    with SandboxServer(SandboxConfig(builds=30, pipelines=20, annotations_none=reading)) as s:
        s.set_faults([{"match": {"method": "POST", "path": "^/api/pipelines/run/"}, "kind": "status", "status": 502}])
        output = read_runs(s, [{"pipeline": "demo/hello-world"}])
        stats = s.stats()
        posts = sum(n for name, n in stats["by_route"].items() if name.startswith("POST "))
        assert posts == 1 and stats["posts"] == {}  # one request, refused before a build started; never sent again
        lookups = PipelineRunRetriever.lookup_attempts
        assert stats["by_route"].get("GET /api/annotations", 0) == lookups  # a 404 ends no lookup early
        if reading == "not_found_404":
            assert stats["by_status"].get(404, 0) == lookups  # every lookup really answered 404
    assert not output.records
    messages = error_messages(output)
    assert any("demo/hello-world" in m and "no build carrying run id" in m for m in messages), messages
    assert not any("base_url" in m for m in messages), messages


CATALOG_JSON = {
    "streams": [
        {
            "stream": {"name": "pipeline_runs", "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
            "sync_mode": "full_refresh",
            "destination_sync_mode": "overwrite",
            "primary_key": [["id"]],
        }
    ]
}
