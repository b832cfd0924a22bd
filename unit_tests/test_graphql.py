"""The GitOps streams' GraphQL parts (source_codefresh/graphql.py): every document the connector can send is a query of
root fields on the allowlist (parsed and validated by a real GraphQL engine against the sandbox's schema); what each
kind of GraphQL error does to a stream; the slice cursor pages; the URL. The reads against the sandbox, under each of
its readings, are integration_tests/test_gitops.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests_mock
import yaml
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.declarative.parsers.manifest_component_transformer import ManifestComponentTransformer
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
from graphql import OperationDefinitionNode, parse, validate
from graphql.language import FieldNode

from codefresh_sandbox.gitops import schema_for
from source_codefresh.graphql import QUERY_FIELDS, QueryNotAllowed, document, graphql_url
from source_codefresh.source import manifest_path
from unit_tests.conftest import API, API_KEY, error_traces, log_lines, records_of, run_read
from unit_tests.stream_cases import GITOPS_STREAMS

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")

GRAPHQL = "https://g.codefresh.io/2.0/api/graphql"
# scripts/probe_api.py, loaded as unit_tests/test_probe_api.py loads it (scripts/ is no package).
_PROBE = Path(__file__).resolve().parent.parent / "scripts" / "probe_api.py"
_spec = importlib.util.spec_from_file_location("probe_api", _PROBE)
probe_api = sys.modules.get("probe_api") or importlib.util.module_from_spec(_spec)
if "probe_api" not in sys.modules:
    sys.modules["probe_api"] = probe_api
    _spec.loader.exec_module(probe_api)
QUERY_CLASS = "source_codefresh.graphql.GraphQLQuery"


# --- every document the connector can send ---------------------------------------------------------------------------


def _components(node: Any, path: str = "") -> Iterator[Tuple[str, Dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("class_name") == QUERY_CLASS:
            yield path, node
        for key, value in node.items():
            yield from _components(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _components(value, f"{path}/{index}")


def connector_documents() -> List[Tuple[str, str, bool]]:
    """(where, document, paged) of every GraphQLQuery of the manifest, as the CDK builds it (references resolved,
    $parameters propagated): both documents of each, the first page's and the following pages'."""
    resolved = ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(manifest_path().read_text()))
    found = []
    for name, stream in resolved["definitions"]["streams"].items():
        propagated = ManifestComponentTransformer().propagate_types_and_parameters("", stream, {})
        for where, query in _components(propagated, f"/{name}"):
            for paged in (False, True):
                text = document(
                    query["root_field"],
                    query["selection"],
                    query.get("arguments") or "",
                    paged or query.get("paging", "always") == "always",
                )
                found.append((where, text, paged))
    return found


DOCUMENTS = connector_documents()


def root_fields(text: str) -> List[Tuple[str, List[str]]]:
    """(operation type, root fields) of every operation of a document."""
    out = []
    for definition in parse(text).definitions:
        assert isinstance(definition, OperationDefinitionNode), f"not an operation: {definition.kind}"
        names = [s.name.value for s in definition.selection_set.selections if isinstance(s, FieldNode)]
        assert len(names) == len(definition.selection_set.selections), "a fragment at the root"
        out.append((definition.operation.value, names))
    return out


def test_every_gitops_stream_sends_documents_built_from_the_allowlist():
    streams = {where.split("/")[1] for where, _, _ in DOCUMENTS}
    assert set(GITOPS_STREAMS) <= streams
    assert len(DOCUMENTS) >= 2 * len(GITOPS_STREAMS)
    for where, text, _ in DOCUMENTS:
        operations = root_fields(text)
        assert len(operations) == 1, where
        kind, fields = operations[0]
        assert kind == "query" and len(fields) == 1 and fields[0] in QUERY_FIELDS, (where, text)


def test_every_document_is_valid_where_the_server_has_its_query():
    """Validated by graphql-core against the sandbox's schema (written from the evidence) under each reading that
    serves the query: a selection of a field the evidence does not show would fail here first."""
    for where, text, paged in DOCUMENTS:
        field = root_fields(text)[0][1][0]
        readings = [("current", "every_list")] + ([] if paged else [("current", "evidenced_only")])
        if field == "productReleases":
            readings.append(("before_promotions", "evidenced_only"))
        for reading in readings:
            errors = validate(schema_for(*reading), parse(text))
            assert not errors, (where, reading, [e.message for e in errors])


def test_the_lists_read_whole_ask_no_pagination_until_the_answer_says_there_is_more():
    for where, text, paged in DOCUMENTS:
        if "pagination" not in text:
            assert not paged, where
            assert root_fields(text)[0][1][0] in ("runtimes", "gitSources", "components", "pipelines", "workflows")
    assert sum(1 for _, text, _ in DOCUMENTS if "pagination" not in text) >= 5


@pytest.mark.parametrize(
    "root, selection, arguments, problem",
    [
        ("sync", "phase", "", "not on the connector's list"),  # the app-proxy's side-effect "query"
        ("appRollback", "id", "", "not on the connector's list"),
        ("createPromotion", "id", "", "not on the connector's list"),
        ("runtimes", "name } } mutation { deleteRuntime { id", "", "not a plain selection"),
        ("runtimes", "name } } } { runtime(name: $x) { name", "", "not a plain selection"),
        ("runtimes", 'name @include(if: "x")', "", "not a plain selection"),
        ("runtimes", "name # } }", "", "not a plain selection"),
        ("runtimes", "", "", "not a plain selection"),
        ("runtimes", "name", "x: String) { y", "not an argument declaration"),
    ],
)
def test_a_document_off_the_allowlist_cannot_be_built(root, selection, arguments, problem):
    with pytest.raises(QueryNotAllowed, match=problem):
        document(root, selection, arguments)


def test_the_probe_asks_the_connectors_queries_and_only_guessed_names_besides():
    assert set(probe_api.EVIDENCED_LISTS) | {"promotions", "productReleases"} == set(QUERY_FIELDS)
    guessed = set(probe_api.UNEVIDENCED_LISTS) | {"__schema", probe_api.SENTINEL}
    assert set(probe_api.SAFE_QUERY_FIELDS) - set(QUERY_FIELDS) == guessed


@pytest.mark.parametrize(
    "config, url",
    [
        ({}, GRAPHQL),
        ({"base_url": "https://g.codefresh.io/api/"}, GRAPHQL),
        ({"base_url": "https://cf.example.com/api"}, "https://cf.example.com/2.0/api/graphql"),
        ({"base_url": "https://cf.example.com/codefresh/api"}, "https://cf.example.com/codefresh/2.0/api/graphql"),
        (
            {"base_url": "https://cf.example.com", "gitops_graphql_url": " https://gql.example.com/graphql "},
            "https://gql.example.com/graphql",
        ),
    ],
)
def test_the_graphql_url_is_next_to_the_rest_root_or_the_override(config, url):
    manifest = yaml.safe_load(manifest_path().read_text())
    template = manifest["definitions"]["gitops"]["http_requester"]["url"]
    api_root = str(config.get("base_url") or "https://g.codefresh.io/api").strip().rstrip("/")
    normalized = {**config, "api_root": api_root}  # as the spec's config normalization derives it
    assert InterpolatedString.create(template, parameters={}).eval(normalized) == url
    assert graphql_url(normalized) == url
    if "gitops_graphql_url" not in config:
        assert probe_api.graphql_url_of(api_root) == url  # the probe's


# --- reads with mocked answers ---------------------------------------------------------------------------------------


def slice_of(field: str, nodes: List[Dict[str, Any]], more: bool = False, cursor: Optional[str] = "c1") -> Dict:
    return {
        "data": {
            field: {
                "edges": [{"node": node} for node in nodes],
                "pageInfo": {"endCursor": cursor if nodes else None, "hasNextPage": more},
            }
        }
    }


def runtime(name: str) -> Dict[str, Any]:
    return {"metadata": {"name": name, "runtime": name}, "syncStatus": "SYNCED"}


class GraphQLServer:
    """Answers each POST with the next answer of its list (the last one again once they run out); keeps the bodies."""

    def __init__(self, mocker: requests_mock.Mocker, answers: List[Tuple[int, Any]], url: str = GRAPHQL):
        self.bodies: List[Dict[str, Any]] = []
        self._answers = answers

        def answer(request: Any, context: Any) -> Any:
            self.bodies.append(json.loads(request.body))
            status, body = self._answers[min(len(self.bodies), len(self._answers)) - 1]
            context.status_code = status
            return body

        mocker.post(url, json=answer)

    def fields(self) -> List[str]:
        return [root_fields(body["query"])[0][1][0] for body in self.bodies]


@pytest.fixture
def mocked():
    with requests_mock.Mocker() as mocker:
        yield mocker


def test_a_list_pages_by_50_on_the_end_cursor_until_there_is_no_next_page(mocked):
    server = GraphQLServer(
        mocked,
        [
            (200, slice_of("promotions", [{"__typename": "Promotion", "id": "p1"}], more=True, cursor="c1")),
            (200, slice_of("promotions", [{"__typename": "Promotion", "id": "p2"}], more=True, cursor="c2")),
            (200, slice_of("promotions", [{"__typename": "Promotion", "id": "p3"}])),
        ],
    )
    output = run_read("gitops_promotions")
    assert [r["id"] for r in records_of(output)] == ["p1", "p2", "p3"]
    assert [b["variables"]["pagination"] for b in server.bodies] == [
        {"first": 50},
        {"first": 50, "after": "c1"},
        {"first": 50, "after": "c2"},
    ]
    assert all(mocked.request_history[i].headers["Authorization"] == API_KEY for i in range(3))


def test_a_list_read_whole_declares_pagination_only_for_the_pages_after_the_first(mocked):
    server = GraphQLServer(
        mocked,
        [
            (200, slice_of("runtimes", [runtime("a")], more=True, cursor="c1")),
            (200, slice_of("runtimes", [runtime("b")])),
        ],
    )
    assert [r["name"] for r in records_of(run_read("gitops_runtimes"))] == ["a", "b"]
    assert "pagination" not in server.bodies[0]["query"] and "pagination" not in server.bodies[0]["variables"]
    assert "$pagination: SlicePaginationArgs" in server.bodies[1]["query"]
    assert server.bodies[1]["variables"] == {"pagination": {"after": "c1"}}


@pytest.mark.parametrize("second_cursor", ["c1", None])
def test_a_cursor_that_repeats_or_is_missing_ends_the_stream_with_one_sentence(mocked, second_cursor):
    server = GraphQLServer(
        mocked,
        [
            (200, slice_of("gitopsReleases", [{"historyId": 1}], more=True, cursor="c1")),
            (200, slice_of("gitopsReleases", [{"historyId": 2}], more=True, cursor=second_cursor)),
        ],
    )
    output = run_read("gitops_releases", expect_failure=True)
    assert len(server.bodies) == 2  # no third request: the listing would never end
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    what = "gave a cursor it had already given" if second_cursor else "gave no cursor to go on from"
    assert failure.message.startswith(
        f"Stream 'gitops_releases': Codefresh answered page 2 of gitopsReleases (POST {GRAPHQL}) saying more "
        f"follows, but {what}, so the listing would never end"
    )


@pytest.mark.parametrize("status", [400, 200])
def test_a_field_the_server_lacks_skips_the_stream_once_with_one_line(mocked, status):
    refused = {"errors": [{"message": 'Cannot query field "chartVersion" on type "Runtime".'}]}
    GraphQLServer(mocked, [(status, refused)])
    output = run_read("gitops_runtimes")
    assert records_of(output) == [] and not error_traces(output)
    lines = [line for line in log_lines(output) if line.startswith("Skipping stream 'gitops_runtimes'")]
    assert lines == [
        "Skipping stream 'gitops_runtimes': this Codefresh server's GitOps API lacks what the stream reads (Cannot "
        'query field "chartVersion" on type "Runtime".); it is older or newer than the API the connector knows, and '
        "the other streams are synced."
    ]


def test_a_stream_read_per_runtime_says_what_the_server_lacks_once(mocked):
    refused = {"errors": [{"message": "Unknown argument 'runtime' on field 'Query.components'."}]}
    server = GraphQLServer(mocked, [(200, slice_of("runtimes", [runtime("a"), runtime("b")])), (400, refused)])
    output = run_read("gitops_components")
    # The gate (access.ScopeGatedRequester) sends nothing more once the stream was skipped: the second runtime is
    # not asked.
    assert server.fields() == ["runtimes", "components"]
    assert sum(line.startswith("Skipping stream 'gitops_components'") for line in log_lines(output)) == 1
    assert not error_traces(output)


def test_a_key_without_gitops_access_is_a_config_error_after_one_request(mocked):
    forbidden = {
        "errors": [{"message": "Forbidden", "extensions": 403, "path": ["workflows"]}],
        "data": {"workflows": None},
    }
    server = GraphQLServer(mocked, [(200, forbidden)])
    output = run_read("gitops_workflows", expect_failure=True)
    assert len(server.bodies) == 1
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert failure.failure_type.value == "config_error"
    assert failure.message == (
        "Stream 'gitops_workflows': Codefresh refused this API key access to GitOps data (the GraphQL API answered "
        "'Forbidden' for workflows): ask your Codefresh administrator to give the key's user access to GitOps "
        "(runtimes, applications), or remove the GitOps streams from the connection."
    )


def test_an_error_of_the_root_field_fails_the_stream_with_one_sentence(mocked):
    failed = {"errors": [{"message": "Invalid cursor: abc", "path": ["pipelines"]}], "data": {"pipelines": None}}
    GraphQLServer(mocked, [(200, failed)])
    output = run_read("gitops_pipelines", expect_failure=True)
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert failure.message.startswith(
        "Stream 'gitops_pipelines': Codefresh's GitOps API answered pipelines with an error (Invalid cursor: abc): "
        "run the sync again"
    )


def test_a_refused_query_that_is_not_a_schema_difference_is_a_bug_to_report(mocked):
    GraphQLServer(mocked, [(400, {"errors": [{"message": "Syntax Error: Unexpected '}'."}]})])
    output = run_read("gitops_pipelines", expect_failure=True)
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert "refused the connector's pipelines query (Syntax Error: Unexpected '}'.); this is a bug" in failure.message


def test_an_error_of_a_nested_field_keeps_the_records_and_says_so_once(mocked):
    answer = slice_of("pipelines", [{"metadata": {"name": "ci", "runtime": "a", "namespace": "a"}, "self": None}])
    answer["errors"] = [{"message": "Sensor not found", "path": ["pipelines", "edges", 0, "node", "self"]}]
    GraphQLServer(mocked, [(200, answer)])
    output = run_read("gitops_pipelines")
    assert [r["name"] for r in records_of(output)] == ["ci"]
    assert [line for line in log_lines(output) if "Sensor not found" in line] == [
        "Stream 'gitops_pipelines': Codefresh's GitOps API answered some fields of pipelines with an error (Sensor not "
        "found); those fields are empty (null) in the records."
    ]


def test_no_graphql_api_at_the_derived_url_skips_the_stream_and_at_the_override_is_a_config_error(mocked):
    GraphQLServer(mocked, [(404, {"message": "Not Found"})])
    output = run_read("gitops_runtimes")
    assert records_of(output) == [] and not error_traces(output)
    assert any(
        line.startswith(f"Skipping stream 'gitops_runtimes': Codefresh has no GitOps GraphQL API at POST {GRAPHQL}")
        for line in log_lines(output)
    )
    override = "https://gql.example.com/graphql"
    GraphQLServer(mocked, [(404, {"message": "Not Found"})], url=override)
    output = run_read("gitops_runtimes", expect_failure=True, gitops_graphql_url=override)
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert failure.message.startswith(
        f"Codefresh has no GraphQL API at POST {override} (HTTP 404): check gitops_graphql_url"
    )


def test_an_answer_that_is_not_graphql_is_a_config_error(mocked):
    GraphQLServer(mocked, [(200, {"docs": []})])
    output = run_read("gitops_runtimes", expect_failure=True)
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert "with JSON that is not a GraphQL answer (neither `data` nor `errors`)" in failure.message


def test_answers_without_graphql_errors_follow_the_rest_policy(mocked):
    server = GraphQLServer(
        mocked, [(429, {"message": "Too Many Requests"}), (200, slice_of("runtimes", [runtime("a")]))]
    )
    assert [r["name"] for r in records_of(run_read("gitops_runtimes"))] == ["a"]
    assert len(server.bodies) == 2
    GraphQLServer(mocked, [(401, {"error": "Unauthorized: Invalid token."})])
    output = run_read("gitops_runtimes", expect_failure=True)
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert failure.message.startswith("Codefresh rejected the API key (HTTP 401).")


def test_an_override_url_with_credentials_is_refused_before_anything_is_sent(mocked):
    server = GraphQLServer(mocked, [(200, slice_of("runtimes", []))], url="https://u:p@gql.example.com/graphql")
    output = run_read("gitops_runtimes", expect_failure=True, gitops_graphql_url="https://u:p@gql.example.com/graphql")
    assert server.bodies == []
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert failure.message.startswith("Stream 'gitops_runtimes': gitops_graphql_url is not a plain https URL")


def test_promotions_fall_back_to_product_releases_per_configured_product(mocked):
    missing = {"errors": [{"message": 'Cannot query field "promotions" on type "Query".'}]}
    release = {"__typename": "ProductRelease", "releaseId": "r1", "productReleaseUpdatedAt": "2026-10-01T00:00:00Z"}
    server = GraphQLServer(mocked, [(400, missing), (200, slice_of("productReleases", [release]))])
    output = run_read("gitops_promotions", gitops_products=["checkout"])
    assert server.fields() == ["promotions", "productReleases"]
    # The whole history (the cursor's one window from 2014), also in a full refresh.
    assert server.bodies[0]["variables"]["filters"] == {"startDate": "2014-01-01T00:00:00.000Z"}
    assert server.bodies[1]["variables"] == {
        "productName": "checkout",
        "filters": {"startDate": "2014-01-01T00:00:00.000Z"},
        "pagination": {"first": 50},
    }
    (record,) = records_of(output)
    assert record["id"] == "r1" and record["updatedAt"] == "2026-10-01T00:00:00Z"
    assert "productReleaseUpdatedAt" not in record
    # Without products: one line saying what to set, no error.
    GraphQLServer(mocked, [(400, missing)])
    output = run_read("gitops_promotions")
    assert not error_traces(output) and records_of(output) == []
    assert any("list your products' names in gitops_products" in line for line in log_lines(output))


def test_releases_fall_back_to_one_application_at_a_time_when_the_account_wide_read_fails(mocked):
    failed = {"errors": [{"message": "an application is required"}], "data": {"gitopsReleases": None}}
    release = {"historyId": 3, "applicationMetadata": {"runtime": "a", "namespace": "a", "name": "web"}}
    server = GraphQLServer(mocked, [(200, failed), (200, slice_of("gitopsReleases", [release]))])
    output = run_read("gitops_releases", gitops_applications=["web"])
    assert [(r["application_name"], r["historyId"]) for r in records_of(output)] == [("web", 3)]
    assert server.bodies[0]["variables"]["filters"] == {"syncStartDateFrom": "2014-01-01T00:00:00.000Z"}
    assert server.bodies[1]["variables"]["filters"] == {"name": "web", "syncStartDateFrom": "2014-01-01T00:00:00.000Z"}
    GraphQLServer(mocked, [(200, failed)])
    output = run_read("gitops_releases", expect_failure=True)
    (failure,) = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert failure.failure_type.value == "config_error"
    assert "list your applications' names in gitops_applications" in failure.message


def test_the_rest_api_is_never_asked_by_a_gitops_stream(mocked):
    GraphQLServer(mocked, [(200, slice_of("runtimes", []))])
    run_read("gitops_runtimes")
    assert all(not item.url.startswith(API) for item in mocked.request_history)
