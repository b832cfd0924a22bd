"""The GitOps streams against the sandbox's GraphQL API (a real GraphQL engine over the schema written from the
evidence): every record exactly once across page boundaries under each reading of the API, an account without GitOps
(empty, one request per stream), a key without GitOps access (a config error per stream, one request each). Every
body the connector sent is parsed: a query of root fields on the allowlist; the sandbox saw no mutation."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

import pytest
from graphql import OperationDefinitionNode, parse
from graphql.language import FieldNode

from codefresh_sandbox import SMALL_ACCOUNT, SandboxConfig, SandboxServer
from integration_tests.syncs import read_streams, records
from source_codefresh.graphql import QUERY_FIELDS
from unit_tests.stream_cases import GITOPS_STREAMS

# Pages: 80 releases and 60 promotions are two pages of 50; 40 workflows are 2 pages of 20 where every list pages.
SIZES = dict(SMALL_ACCOUNT, gitops_promotions=60)


def check_read_only(bodies: List[Dict[str, Any]], server: SandboxServer) -> None:
    """Every body is one query whose root fields are on the allowlist, and the sandbox counted no mutation."""
    assert bodies, "no GraphQL request was sent"
    for body in bodies:
        (operation,) = [d for d in parse(body["query"]).definitions if isinstance(d, OperationDefinitionNode)]
        fields = [s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)]
        assert operation.operation.value == "query" and fields and set(fields) <= set(QUERY_FIELDS), body["query"]
        assert len(fields) == len(operation.selection_set.selections)
    counted = server.stats()["graphql"]
    assert counted["mutation"] == counted["subscription"] == counted["unparsable"] == 0


def truth(server: SandboxServer) -> Dict[str, List[Tuple[Any, ...]]]:
    """The key of every record a full read of each GitOps stream must give, from the sandbox's data."""
    g = server.data.gitops
    meta = lambda item, *keys: tuple(item["metadata"][k] for k in keys)  # noqa: E731
    return {
        "gitops_runtimes": [meta(r, "name") for r in g.runtimes],
        "gitops_clusters": [meta(c, "runtime", "name") for c in g.clusters],
        "gitops_git_sources": [meta(s, "runtime", "name") for s in g.git_sources],
        "gitops_components": [meta(c, "runtime", "name") for c in g.components],
        "gitops_pipelines": [meta(p, "runtime", "namespace", "name") for p in g.pipelines],
        "gitops_workflows": [meta(w, "uid") for w in g.workflows],
        "gitops_workflow_nodes": [(w["metadata"]["uid"], n["id"]) for w in g.workflows for n in w["status"]["nodes"]],
        "gitops_releases": [
            tuple(r["applicationMetadata"][k] for k in ("runtime", "namespace", "name")) + (r["historyId"],)
            for r in g.releases
        ],
        "gitops_promotions": [(p["id"],) for p in g.promotions],
    }


KEYS = {
    "gitops_runtimes": ("name",),
    "gitops_clusters": ("runtime", "name"),
    "gitops_git_sources": ("runtime", "name"),
    "gitops_components": ("runtime", "name"),
    "gitops_pipelines": ("runtime", "namespace", "name"),
    "gitops_workflows": ("uid",),
    "gitops_workflow_nodes": ("workflow_uid", "id"),
    "gitops_releases": ("runtime", "namespace", "application_name", "historyId"),
    "gitops_promotions": ("id",),
}


# The connector's own fields besides the keys: copies of nested ones (the cursors) and the workflow's name.
ADDED = {
    "gitops_workflows": {"created"},
    "gitops_workflow_nodes": {"workflow_name", "workflow_created"},
    "gitops_releases": {"sync_started_at"},
}


def as_answered(truth_value: Any, record_value: Any) -> Any:
    """The sandbox's value cut down to what the record selected (GraphQL answers only the selected fields)."""
    if isinstance(truth_value, dict) and isinstance(record_value, dict):
        return {k: as_answered(truth_value.get(k), v) for k, v in record_value.items()}
    if isinstance(truth_value, list) and isinstance(record_value, list) and len(truth_value) == len(record_value):
        return [as_answered(t, r) for t, r in zip(truth_value, record_value, strict=True)]
    return truth_value


def sandbox_items(server: SandboxServer) -> Dict[str, Dict[Tuple[Any, ...], Dict[str, Any]]]:
    """The sandbox's item behind each record key (promotions aside: two views of one internal record)."""
    g = server.data.gitops
    lists = {
        "gitops_runtimes": g.runtimes,
        "gitops_clusters": g.clusters,
        "gitops_git_sources": g.git_sources,
        "gitops_components": g.components,
        "gitops_pipelines": g.pipelines,
        "gitops_workflows": g.workflows,
        "gitops_workflow_nodes": [n for w in g.workflows for n in w["status"]["nodes"]],
        "gitops_releases": g.releases,
    }
    return {stream: dict(zip(truth(server)[stream], items, strict=True)) for stream, items in lists.items()}


def test_the_gitops_streams_are_what_the_sandbox_counts():
    with SandboxServer(SandboxConfig(**SIZES)) as server:
        counted = {k for k in server.expected() if k.startswith("gitops_") and not k.endswith("_unfinished")}
    assert counted == set(GITOPS_STREAMS) == set(KEYS)


def products(server: SandboxServer) -> Dict[str, Any]:
    return {"gitops_products": sorted({p["productName"] for p in server.data.gitops.promotions})}


def applications(server: SandboxServer) -> Dict[str, Any]:
    return {"gitops_applications": sorted({a["name"] for a in server.data.gitops.apps})}


READINGS = {
    "default": ({}, lambda server: {}),
    "before_promotions": ({"gitops_schema": "before_promotions"}, products),
    "refused_with_200": ({"gitops_schema": "before_promotions", "gitops_invalid_query_status": "200"}, products),
    "every_list_pages": ({"gitops_list_pagination": "every_list"}, lambda server: {}),
    "no_page_cap": ({"gitops_page_cap": "none"}, lambda server: {}),
    "releases_per_application": ({"gitops_releases_filter": "required"}, applications),
    "introspection_enabled": ({"gitops_introspection": "enabled"}, lambda server: {}),
}


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_every_gitops_stream_reads_every_record_once_under_each_reading(reading, sent_bodies):
    switches, config = READINGS[reading]
    with SandboxServer(SandboxConfig(**{**SIZES, **switches})) as server:
        output = read_streams(server, GITOPS_STREAMS, **config(server))
        assert not output.errors
        want = truth(server)
        for stream in GITOPS_STREAMS:
            got = [tuple(r[k] for k in KEYS[stream]) for r in records(output, stream)]
            assert len(got) == len(set(got)), f"{stream}: a record twice"
            assert sorted(got, key=repr) == sorted(want[stream], key=repr), f"{stream}: records missing or extra"
        if reading == "default":  # every field as the sandbox holds it; the connector's own fields besides
            items = sandbox_items(server)
            for stream, by_key in items.items():
                for record in records(output, stream):
                    item = by_key[tuple(record[k] for k in KEYS[stream])]
                    added = set(KEYS[stream]) | ADDED.get(stream, set())
                    answered = {k: v for k, v in record.items() if k not in added}
                    assert answered and answered == as_answered(item, answered), stream
        check_read_only(sent_bodies, server)
        asked = server.stats()["graphql"]["by_field"]
    g = server.data.gitops
    # Pages: account-wide releases in pages of 50 (each application's own pages when read per application).
    if reading == "releases_per_application":
        by_app = [sum(1 for r in g.releases if r["applicationMetadata"]["name"] == a["name"]) for a in g.apps]
        assert asked["gitopsReleases"] == 1 + sum(math.ceil(n / 50) or 1 for n in by_app)
    else:
        assert asked["gitopsReleases"] == math.ceil(len(g.releases) / 50) > 1
    if "before_promotions" in switches.values():
        per_product = [
            sum(1 for p in g.promotions if p["productName"] == name) for name in products(server)["gitops_products"]
        ]
        assert asked["productReleases"] == sum(math.ceil(n / 50) for n in per_product) and "promotions" not in asked
    else:
        assert asked["promotions"] == math.ceil(len(g.promotions) / 50) > 1
    pages_of_workflows = math.ceil(len(g.workflows) / 20) if reading == "every_list_pages" else 1
    assert asked["workflows"] == 2 * pages_of_workflows  # gitops_workflows and the nodes' parent


def test_an_account_without_gitops_reads_every_gitops_stream_empty_with_one_request_each(sent_bodies):
    with SandboxServer(SandboxConfig(**{**SIZES, "gitops_account": "empty"})) as server:
        output = read_streams(server, GITOPS_STREAMS)
        assert not output.errors and not output.records
        assert not [m.log.message for m in output.logs if m.log.level.value in ("WARN", "ERROR")]
        # One request per stream: the per-runtime streams ask only for the runtimes, the nodes only for workflows.
        asked = server.stats()["graphql"]
        assert asked["query"] == len(GITOPS_STREAMS)
        assert asked["by_field"] == {
            "runtimes": 4,
            "gitopsReleases": 1,
            "promotions": 1,
            "workflows": 2,
            "pipelines": 1,
        }
        check_read_only(sent_bodies, server)


def test_a_key_without_gitops_access_fails_each_gitops_stream_with_a_config_error_after_one_request(sent_bodies):
    with SandboxServer(SandboxConfig(**{**SIZES, "gitops_access": "forbidden"})) as server:
        output = read_streams(server, GITOPS_STREAMS, expect_failure=True)
        failures = {
            m.trace.error.stream_descriptor.name: m.trace.error
            for m in output.errors
            if m.trace.error.stream_descriptor is not None
        }
        assert set(failures) == set(GITOPS_STREAMS) and not output.records
        for stream, failure in failures.items():
            assert failure.failure_type.value == "config_error"
            assert failure.message.startswith(
                f"Stream '{stream}': Codefresh refused this API key access to GitOps data (the GraphQL API answered "
                "'Forbidden' for "
            ), failure.message
        assert server.stats()["graphql"]["query"] <= len(GITOPS_STREAMS)
        check_read_only(sent_bodies, server)


def test_an_older_server_without_products_configured_skips_promotions_with_one_line(sent_bodies):
    with SandboxServer(SandboxConfig(**{**SIZES, "gitops_schema": "before_promotions"})) as server:
        output = read_streams(server, ["gitops_promotions", "gitops_runtimes"])
        assert not output.errors and not records(output, "gitops_promotions")
        assert len(records(output, "gitops_runtimes")) == len(server.data.gitops.runtimes)
        lines = [
            m.log.message for m in output.logs if "gitops_promotions" in m.log.message and "Skipping" in m.log.message
        ]
        assert lines == [
            "Skipping stream 'gitops_promotions': this Codefresh server has no 'promotions' query (Cannot query field "
            '"promotions" on type "Query".), as servers before v1.3808.0, and its older productReleases reads one '
            "product at a time: list your products' names in gitops_products to sync them."
        ]
        assert server.stats()["graphql"]["by_field"].get("productReleases") is None
        check_read_only(sent_bodies, server)


def test_releases_that_need_an_application_fail_with_one_sentence_until_applications_are_listed(sent_bodies):
    with SandboxServer(SandboxConfig(**{**SIZES, "gitops_releases_filter": "required"})) as server:
        output = read_streams(server, ["gitops_releases"], expect_failure=True)
        (failure,) = [m.trace.error for m in output.errors if m.trace.error.stream_descriptor is not None]
        assert failure.failure_type.value == "config_error"
        assert failure.message == (
            "Stream 'gitops_releases': Codefresh answered 'gitopsReleases needs an application: set filters.runtime, "
            "filters.namespace and filters.name.' to the account-wide gitopsReleases query; this server may answer the "
            "deployment history only per Argo CD application: list your applications' names in gitops_applications "
            "to sync it, or remove the stream from the connection."
        )
        assert server.stats()["graphql"]["query"] == 1
        check_read_only(sent_bodies, server)


def test_releases_link_deployments_to_classic_builds_that_the_builds_stream_reads(sent_bodies):
    with SandboxServer(SandboxConfig(**SIZES)) as server:
        output = read_streams(server, ["gitops_releases", "builds"])
        build_ids = {r["id"] for r in records(output, "builds")}
        linked = [b["id"] for r in records(output, "gitops_releases") for b in r["application"]["builds"]]
        assert linked and set(linked) <= build_ids
        check_read_only(sent_bodies, server)
