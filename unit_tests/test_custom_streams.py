"""Custom streams (the `custom_streams` setting): which entries are refused and with what sentence, what discover
shows for the others, and what a read sends and emits (mocked HTTP). The sandbox tests are
integration_tests/test_custom_streams.py."""

from __future__ import annotations

import logging
from typing import Any, Dict, List

import pytest
from airbyte_cdk.models import FailureType, Status, SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder
from airbyte_cdk.test.entrypoint_wrapper import read
from airbyte_cdk.test.mock_http import HttpResponse
from airbyte_cdk.test.mock_http.request import ANY_QUERY_PARAMS
from airbyte_cdk.test.models.outcome import ExpectedOutcome

from source_codefresh import SourceCodefresh
from source_codefresh.source import builtin_stream_names, config_problem
from unit_tests.conftest import API_KEY, config, error_traces, request, response, sent_requests, serialized_messages

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

REGISTRIES = {"name": "registries", "path": "registries", "primary_key": "_id", "pagination": "none"}


def entry(**fields: Any) -> Dict[str, Any]:
    return {**REGISTRIES, **fields}


# limit/offset pages, with a nested primary key and a nested cursor
PIPELINE_NAMES = entry(
    name="pipeline_names",
    path="pipelines/names",
    records_key="docs",
    primary_key="metadata.id",
    pagination="offset",
    cursor_field="metadata.updated_at",
)
# Codefresh's ordered pages (like builds), filtered by params
FAILED_BUILDS = entry(
    name="failed_builds",
    path="workflow",
    records_key="workflows.docs",
    primary_key="id",
    pagination="cursor",
    params=[{"name": "status", "value": "error"}, {"name": "status", "value": "terminated"}],
)


def problem_of(*entries: Any) -> str:
    return config_problem(config(custom_streams=list(entries))) or ""


# --- refused entries: one sentence naming the entry and what to change ---------------------------------------------

# Every GET of Codefresh's OpenAPI document (openapi.json) that changes something, and paths that only exist as writes.
SIDE_EFFECT_PATHS = [
    "builds/rebuild/5f1a2b3c4d5e6f7a8b9c0d1e",
    "workflow/5f1a2b3c4d5e6f7a8b9c0d1e/pending-approval/approve",
    "workflow/5f1a2b3c4d5e6f7a8b9c0d1e/pending-approval/deny",
    "environments/env1/start",
    "environments/env1/stop",
    "environments/env1/pause",
    "environments/env1/unpause",
    "environments/env1/terminate",
    "environments/all/terminate",
    "environments/env1/rename/other",
    "kubernetes/rollback/my-release/3",
    "contexts/github/prepare",
    "user/context",
    "user/firebaseAuth",
    "user/changeaccount/5f0000000000000000000a02",
    "team/group/synchronize/name/acme/type/okta",
    "progress/5f1a2b3c4d5e6f7a8b9c0d1e",
    "progress/download/5f1a2b3c4d5e6f7a8b9c0d1e",
    "admin/accounts",
    "admin/runtime-environments",
    "pipelines/run/5f1a2b3c4d5e6f7a8b9c0d1e",
    "pipelines/debug/x",
    "compositions/c1/run",
    "compositions/c1/duplicate",
    "builds/b1/update",
    "accounts/a1/update",
    "accounts/a1/u1/adduser",
    "accounts/a1/u1/admin",
    "registries/test",
    "runtime/testit",
    "custom_clusters/register",
    "auth/key",
    "auth/key/k1",
    "registry/auth/token",
    "kubernetes/chart/install",
    "team/t1/u1/assignUserToTeam",
    "team/t1/u1/deleteUserFromTeam",
    "runner-installation/i1",
    "Builds/Rebuild/b1",
]


@pytest.mark.parametrize("path", SIDE_EFFECT_PATHS)
def test_a_path_that_changes_something_is_refused(path):
    problem = problem_of(entry(name="danger", path=path))
    assert problem.startswith("custom_streams entry 1 ('danger'): path ") and " is refused because " in problem
    assert problem.count(". ") == 0 and problem.endswith("."), problem  # one sentence


def test_a_refused_path_says_why_and_what_to_do():
    assert problem_of(entry(name="restarts", path="builds/rebuild/b1")) == (
        "custom_streams entry 1 ('restarts'): path 'builds/rebuild/b1' is refused because a GET of "
        "builds/rebuild/{id} starts the build again: the connector only reads, so point path at an endpoint that "
        "only reads."
    )
    assert "built-in contexts stream" in problem_of(entry(path="contexts"))


@pytest.mark.parametrize(
    "path",
    [
        "https://attacker.example/collect",
        "http://attacker.example/api/registries",
        "//attacker.example/registries",
        "HTTPS://attacker.example",
        "javascript:alert(1)",
        "@attacker.example/registries",
        "registries@attacker.example",
        "\\\\attacker.example\\registries",
        "registries/../../..//attacker.example",
    ],
)
def test_a_path_that_names_a_host_is_refused(path):
    problem = problem_of(entry(path=path))
    assert problem.startswith("custom_streams entry 1 ('registries'): path "), problem
    assert "URL or names a host" in problem or "'..'" in problem, problem


@pytest.mark.parametrize(
    "path,says",
    [
        ("registries?limit=5", "move its parameters to params"),
        ("registries#x", "'#' fragment"),
        ("builds%2Frebuild%2Fb1", "percent-encoded"),
        ("pipelines/acme%2Fnightly", "use its id"),
        ("%2e%2e/user", "percent-encoded"),
        ("a/../registries", "'..'"),
        ("./registries", "'.'"),
        ("registries//x", "empty"),
        ("builds/{id}", "placeholder"),
        ("{{ config.api_key }}", "placeholder"),
        ("reg istries", "contains ' '"),
        ("regístries", "contains 'í'"),
        ("registries;x=1", "contains ';'"),
        ("", "path is missing"),
    ],
)
def test_a_path_that_is_not_plain_is_refused(path, says):
    problem = problem_of(entry(path=path))
    assert problem.startswith("custom_streams entry 1 ('registries'): ") and says in problem, problem


@pytest.mark.parametrize("name", sorted(builtin_stream_names()))
def test_the_name_of_a_built_in_stream_is_refused(name):
    assert problem_of(entry(name=name)) == (
        f"custom_streams entry 1 ('{name}'): '{name}' is the name of a built-in stream; give the custom stream "
        f"another name, e.g. custom_{name}."
    )


def test_the_clash_check_knows_every_stream_discover_shows():
    every_stream = config(pipeline_runs=[{"pipeline": "demo/hello-world"}], sync_build_logs=True)
    source = SourceCodefresh(config=every_stream)
    discovered = {stream.name for stream in source.discover(logging.getLogger(), every_stream).streams}
    assert builtin_stream_names() == discovered
    assert problem_of(entry(name="Builds")).startswith("custom_streams entry 1 ('Builds'): 'Builds' is the name")


@pytest.mark.parametrize(
    "entries,says",
    [
        ([entry(), entry(path="clusters")], "entry 2 ('registries'): the name 'registries' is already used by entry 1"),
        ([entry(name="9lives")], "the name must start with a letter"),
        ([entry(name="my stream")], "for example my_stream"),
        ([{k: v for k, v in REGISTRIES.items() if k != "name"}], "entry 1 has no name"),
        ([entry(pagination=None)], "pagination is missing; set it to none"),
        ([entry(pagination="cursor_backed")], "'cursor_backed' is not a pagination"),
        ([entry(primary_key="")], "has no primary_key"),
        ([entry(primary_key="tags[0]")], "primary_key 'tags[0]' is not a field name"),
        ([entry(records_key="docs.*")], "records_key 'docs.*' is not a field name"),
        ([entry(cursor_field="metadata..updated_at")], "cursor_field 'metadata..updated_at' is not a field name"),
        ([entry(recordsKey="docs")], "has an unknown field 'recordsKey'"),
        ([entry(params=[{"name": "limit", "value": "500"}])], "params may not set 'limit'"),
        ([entry(params=[{"name": "paginationReset", "value": "true"}])], "params may not set 'paginationReset'"),
        ([entry(params=[{"name": "decrypt", "value": "true"}])], "params may not set 'decrypt'"),
        ([entry(params=[{"name": "decryptVariables", "value": "true"}])], "params may not set 'decryptVariables'"),
        # Codefresh's query parser reads these as `decrypt`, `decryptVariables` and `limit`.
        (
            [entry(params=[{"name": "decrypt[]", "value": "true"}])],
            "params may not set 'decrypt[]', which makes Codefresh",
        ),
        ([entry(params={"decrypt[]": "true"})], "params may not set 'decrypt[]', which makes Codefresh"),
        ([entry(params={"status": {"in": "error"}})], "must be text"),
        (
            [entry(params=[{"name": "DecryptVariables[0]", "value": "true"}])],
            "params may not set 'DecryptVariables[0]', which",
        ),
        (
            [entry(params=[{"name": "decrypt.on", "value": "true"}])],
            "params may not set 'decrypt.on', which makes Codefresh",
        ),
        (
            [entry(params=[{"name": "limit[]", "value": "5"}])],
            "params may not set 'limit[]': the connector pages by itself",
        ),
        ([entry(params=[{"name": "public", "value": True}])], "numbers and true/false too"),
        ([entry(params=[{"name": "status", "value": {"in": "error"}}])], "must be text"),
        ([entry(params=[{"name": "status"}])], "must be text"),
        ([entry(params=[{"name": "a b", "value": "x"}])], "the query parameter name 'a b' is not valid"),
        ([entry(params="status=error")], "params must be a list of query parameters"),
        ([entry(params=["status=error"])], "params must be a list of query parameters"),
        (["registries"], "entry 1 is not an object"),
    ],
)
def test_a_malformed_entry_gets_one_sentence_naming_it(entries, says):
    problem = problem_of(*entries)
    assert problem.startswith("custom_streams entry ") and says in problem, problem
    assert problem.endswith(".") and "\n" not in problem


def test_a_list_is_required():
    assert config_problem(config(custom_streams={"registries": REGISTRIES})) == (
        "custom_streams must be a list of entries ({name, path, records_key, primary_key, pagination}), or left empty."
    )


@pytest.mark.parametrize(
    "good",
    [
        entry(),
        entry(path="/registries"),
        entry(name="views_by_page", path="views/", records_key="docs", pagination="page"),
        {**PIPELINE_NAMES, "params": [{"name": "projectId", "value": "p1"}, {"name": "limit_to_me", "value": "1"}]},
        {**FAILED_BUILDS, "cursor_field": "created"},
        entry(name="build_annotations", path="annotations", params=[{"name": "entityType", "value": "build"}]),
        entry(name="step_names", path="step-types/names", pagination="offset"),
        entry(name="env_status", path="environments/env1/status"),
        entry(name="hermes_event", path="hermes/events/registry:dockerhub:acme:api:push:123"),
        # The object form of 0.1.x, which the config migration turns into the list when the connector starts.
        entry(params={"entityType": "build", "status": ["error", "terminated"], "limit_to_me": 1}),
    ],
)
def test_a_reading_entry_is_accepted(good):
    assert problem_of(good) == ""


def test_check_refuses_before_any_request(http_mocker):
    """No request is mocked: the HTTP mocker fails any request that is sent."""
    cfg = config(custom_streams=[entry(name="restarts", path="builds/rebuild/b1")])
    status = SourceCodefresh(config=cfg).check(logging.getLogger(), cfg)
    assert status.status == Status.FAILED
    assert status.message.startswith("custom_streams entry 1 ('restarts'): path 'builds/rebuild/b1' is refused")


@pytest.mark.parametrize("command", ["discover", "read"])
def test_discover_and_read_refuse_before_any_request(http_mocker, command):
    cfg = config(custom_streams=[entry(name="leak", path="https://attacker.example/collect")])
    catalog = CatalogBuilder().with_stream("current_user", SyncMode.full_refresh).build()
    source = SourceCodefresh(catalog=catalog, config=cfg)
    with pytest.raises(Exception) as raised:
        if command == "discover":
            source.discover(logging.getLogger(), cfg)
        else:
            list(source.read(logging.getLogger(), cfg, catalog))
    assert getattr(raised.value, "failure_type", None) == FailureType.config_error
    assert str(raised.value.message).startswith("custom_streams entry 1 ('leak'): path 'https://attacker.example")


# --- discover --------------------------------------------------------------------------------------------------------


def discovered(*entries: Dict[str, Any]) -> Dict[str, Any]:
    cfg = config(custom_streams=list(entries))
    catalog = SourceCodefresh(config=cfg).discover(logging.getLogger(), cfg)
    return {stream.name: stream for stream in catalog.streams}


def test_each_entry_is_a_stream_with_its_key_in_a_permissive_schema():
    streams = discovered(
        REGISTRIES,
        PIPELINE_NAMES,
        {**FAILED_BUILDS, "params": [{"name": "status", "value": "error"}], "cursor_field": "created"},
        entry(name="more_views", path="views/", records_key="docs", pagination="page"),
    )
    registries = streams["registries"]
    assert registries.source_defined_primary_key == [["_id"]]
    assert [mode.value for mode in registries.supported_sync_modes] == ["full_refresh"]
    schema = registries.json_schema
    assert schema["additionalProperties"] is True and schema["type"] == "object"
    assert schema["properties"] == {
        "_id": {"type": ["string", "integer", "number", "null"], "description": "Primary key: the record's _id."}
    }

    names = streams["pipeline_names"]
    assert names.source_defined_primary_key == [["metadata_id"]]
    assert names.default_cursor_field == ["metadata_updated_at"] and names.source_defined_cursor
    assert set(names.json_schema["properties"]) == {"metadata_id", "metadata_updated_at"}
    assert names.json_schema["properties"]["metadata_updated_at"]["format"] == "date-time"
    assert streams["failed_builds"].default_cursor_field == ["created"]
    assert streams["more_views"].source_defined_primary_key == [["_id"]]
    assert len(streams) == len(builtin_stream_names()) - 2 + 4  # pipeline_runs and build_logs: only when configured


def test_no_custom_streams_changes_nothing():
    assert set(discovered()) == builtin_stream_names() - {"pipeline_runs", "build_logs"}


# --- read (mocked HTTP) --------------------------------------------------------------------------------------------


def read_custom(
    stream: str,
    *entries: Dict[str, Any],
    state=None,
    expect_failure: bool = False,
    sync_mode: SyncMode = SyncMode.full_refresh,
):
    cfg = config(custom_streams=list(entries))
    catalog = CatalogBuilder().with_stream(stream, sync_mode).build()
    source = SourceCodefresh(catalog=catalog, config=cfg, state=state)
    outcome = ExpectedOutcome.EXPECT_EXCEPTION if expect_failure else ExpectedOutcome.EXPECT_SUCCESS
    return read(source, cfg, catalog, state, expected_outcome=outcome)


REGISTRY = {
    "_id": "r1",
    "name": "ecr-01",
    "provider": "ecr",
    "accessKeyId": "AKIA0",
    "secretAccessKey": "s3cr3t-ecr",
    "spec": {"auth": {"password": "pw-nested", "username": "bot"}},
    "webhooks": [{"secret": "hook-s3cr3t", "url": "u"}],
}


def test_a_read_drops_credentials_at_any_depth(http_mocker):
    http_mocker.get(request("registries"), response([REGISTRY, {"_id": "r2", "password": "pw-top", "token": "t"}]))

    output = read_custom("registries", REGISTRIES)

    records = [message.record.data for message in output.records]
    assert records == [
        {
            "_id": "r1",
            "name": "ecr-01",
            "provider": "ecr",
            "accessKeyId": "AKIA0",
            "spec": {"auth": {"username": "bot"}},
            "webhooks": [{"url": "u"}],
        },
        {"_id": "r2"},
    ]
    for line in serialized_messages(output):
        for secret in ("s3cr3t-ecr", "pw-nested", "pw-top", "hook-s3cr3t", API_KEY):
            assert secret not in line


def test_a_nested_primary_key_and_cursor_are_copied_to_the_top_level(http_mocker):
    docs = [{"metadata": {"id": f"p{i}", "updated_at": f"2026-10-0{i}T00:00:00.000Z"}} for i in (1, 2, 3)]
    http_mocker.get(request("pipelines/names", {"limit": "100", "projectId": "proj1"}), response({"docs": docs}))

    output = read_custom("pipeline_names", {**PIPELINE_NAMES, "params": [{"name": "projectId", "value": "proj1"}]})

    assert [(r.record.data["metadata_id"], r.record.data["metadata_updated_at"]) for r in output.records] == [
        ("p1", "2026-10-01T00:00:00.000Z"),
        ("p2", "2026-10-02T00:00:00.000Z"),
        ("p3", "2026-10-03T00:00:00.000Z"),
    ]
    assert output.records[0].record.data["metadata"] == docs[0]["metadata"]


def test_params_are_sent_as_written_with_the_session_and_page_of_cursor_paging(http_mocker):
    first = {"workflows": {"docs": [{"id": "b2"}, {"id": "b1"}]}, "pagination": {"page": 1, "nextPage": True}}
    last = {"workflows": {"docs": [{"id": "b0"}]}, "pagination": {"page": 2, "nextPage": False}}
    sent = {"status": ["error", "terminated"], "branchName": "{{ config.api_key }}", "pipeline": "7"}
    params = [
        {"name": name, "value": value}
        for name, values in sent.items()
        for value in ([values] if isinstance(values, str) else values)
    ]
    http_mocker.get(request("workflow", {**sent, "limit": "100", "page": "1"}), response(first))
    http_mocker.get(request("workflow", {**sent, "limit": "100", "page": "2"}), response(last))

    output = read_custom("failed_builds", {**FAILED_BUILDS, "params": params})

    assert [r.record.data["id"] for r in output.records] == ["b2", "b1", "b0"]
    sessions = {sent["headers"]["X-Pagination-Session-Id"] for sent in sent_requests(http_mocker, "workflow")}
    assert len(sessions) == 1


def test_a_missing_records_key_fails_with_one_sentence_saying_what_to_set(http_mocker):
    http_mocker.get(request("registries"), response([REGISTRY]))

    output = read_custom("registries", entry(records_key="items"), expect_failure=True)

    assert not output.records
    failure = next(trace for trace in error_traces(output) if "records_key" in trace.message)
    assert failure.failure_type == FailureType.config_error
    assert failure.message == (
        f"Codefresh answered GET {'https://g.codefresh.io/api'}/registries with JSON that has no 'items' list "
        "(top-level keys: list), so custom stream 'registries' reads nothing: set its records_key in custom_streams "
        "to the key that holds the records (dotted when nested), or leave it empty when the answer is the list itself."
    )


@pytest.mark.parametrize("primary_key", ["id", "metadata.id"])
def test_records_without_the_primary_key_fail_the_stream_with_one_sentence(http_mocker, primary_key):
    http_mocker.get(request("registries"), response([{"_id": "r1", "name": "ecr-01", "metadata": {}}]))

    output = read_custom("registries", entry(primary_key=primary_key), expect_failure=True)

    assert not output.records
    failure = next(trace for trace in error_traces(output) if "primary_key" in trace.message)
    assert failure.failure_type == FailureType.config_error
    assert failure.message.startswith(
        f"Custom stream 'registries' read a record without '{primary_key}', its primary_key (the record's fields: "
        "_id, metadata, "
    )
    assert failure.message.endswith("set its primary_key in custom_streams to a field every record has.")


def test_a_too_long_request_fails_at_once_naming_the_custom_stream(http_mocker, slept):
    http_mocker.get(request("registries", ANY_QUERY_PARAMS), HttpResponse("<h1>URI Too Long</h1>", 414))

    output = read_custom("registries", entry(params={"q": "x" * 9000}), expect_failure=True)

    failure = next(trace for trace in error_traces(output) if "414" in trace.message)
    assert failure.failure_type == FailureType.config_error and slept == []  # not retried
    assert "params of custom stream 'registries'" in failure.message and "x" * 50 not in failure.message


def test_a_wrong_path_fails_naming_the_custom_stream(http_mocker):
    http_mocker.get(request("registry"), response({"status": 404, "message": "not found"}, 404))

    output = read_custom("registries", entry(path="registry"), expect_failure=True)

    messages: List[str] = [trace.message for trace in error_traces(output)]
    assert any("check the path of custom stream 'registries' in custom_streams" in m for m in messages), messages


def test_a_nested_cursor_filters_an_incremental_read_by_its_top_level_copy(http_mocker):
    from unit_tests.conftest import stream_state

    docs = [{"metadata": {"id": f"p{i}", "updated_at": f"2026-10-0{i}T00:00:00.000Z"}} for i in (1, 2, 3)]
    http_mocker.get(request("pipelines/names", {"limit": "100"}), response({"docs": docs}))

    output = read_custom(
        "pipeline_names",
        PIPELINE_NAMES,
        sync_mode=SyncMode.incremental,
        state=stream_state("pipeline_names", {"metadata_updated_at": "2026-10-02T00:00:00.000Z"}),
    )

    assert [r.record.data["metadata_id"] for r in output.records] == ["p3"]
    assert output.most_recent_state.stream_state.__dict__ == {"metadata_updated_at": "2026-10-03T00:00:00.000Z"}
