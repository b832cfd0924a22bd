"""The sandbox's GitOps GraphQL API (POST /2.0/api/graphql): the selections evidenced clients send, only selected fields
back, the engine's errors, paging across pages, each switch, auth, faults, mutations rejected and counted, records that
move on with advance(), and the DORA truth (on a hand-checked set, and equal to what the API's records give)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import requests

from codefresh_sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_LIMITED_API_KEY,
    SANDBOX_RESTRICTED_API_KEY,
    SMALL_ACCOUNT,
    SandboxConfig,
    SandboxData,
    SandboxServer,
    dora,
)
from codefresh_sandbox.common import parse_iso_ms

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = SMALL_ACCOUNT

# The selections of the clients that show the API (docs/api-notes.md section 11), written out again: the sandbox's
# schema must answer each as the real one does.
EVIDENCED = {
    "runtimes [GO runtime.go List]": (
        "query Runtimes { runtimes { edges { node { metadata { name namespace } self { syncStatus healthMessage "
        "healthStatus } syncStatus healthMessage healthStatus managed cluster ingressHost runtimeVersion "
        "installationStatus installationType } } } }",
        {},
    ),
    "runtime [GO runtime.go Get]": (
        "query GetRuntime($name: String!) { runtime(name: $name) { metadata { name namespace } self { syncStatus "
        "healthMessage healthStatus } syncStatus healthStatus healthMessage cluster managed isRemoteClusterConnected "
        "ingressHost internalIngressHost ingressClass ingressController runtimeVersion installationStatus "
        "installationType repo managedClustersNum gitProvider accessMode } }",
        {"name": "eu-west"},
    ),
    "clusters [GO cluster.go]": (
        "query clusters($runtime: String, $pagination: SlicePaginationArgs) { clusters(runtime: $runtime, "
        "pagination: $pagination) { edges { node { metadata { name runtime } server info { connectionState { status "
        "message } serverVersion cacheInfo { resourcesCount apisCount } } } } pageInfo { endCursor hasNextPage } } }",
        {"runtime": "eu-west", "pagination": {"after": ""}},
    ),
    "gitSources [GO git-source.go]": (
        "query GitSources($runtime: String) { gitSources(runtime: $runtime) { edges { node { metadata { name } "
        "self { path repoURL status { syncStatus healthStatus } } } } } }",
        {"runtime": "eu-west"},
    ),
    "components [GO component.go]": (
        "query Components($runtime: String!) { components(runtime: $runtime) { edges { node { metadata { name "
        "runtime } version self { status { syncStatus healthStatus } errors { ...on SyncError { title message "
        "suggestion level } } } } } } }",
        {"runtime": "eu-west"},
    ),
    "pipelines [GO pipeline.go List]": (
        "query Pipelines($filters: PipelinesFilterArgs) { pipelines(filters: $filters) { edges { node { metadata { "
        "name namespace runtime } self { healthStatus syncStatus version } projects spec { trigger } } } } }",
        {"filters": {}},
    ),
    "workflows [GO workflow.go List]": (
        "query Workflows($filters: WorkflowsFilterArgs) { workflows(filters: $filters) { edges { node { metadata { "
        "uid name namespace runtime } projects spec { entrypoint templates { name } workflowTemplateRef { name "
        "namespace } } status { phase progress nodes { type name } } pipeline { metadata { name namespace } } } } } }",
        {"filters": {}},
    ),
    "application [STEPS get_app_status.orig.graphql]": (
        "query ApplicationsStatusesQuery($runtime: String!, $name: String!, $applicationNamespace: String) { "
        "application(runtime: $runtime, name: $name, namespace: $applicationNamespace) { metadata { runtime name "
        "namespace cluster __typename } healthStatus syncStatus syncPolicy } }",
        {"runtime": "eu-west", "name": "checkout-production", "applicationNamespace": "eu-west"},
    ),
    "gitopsReleases [STEPS getReleases.graphql]": (
        "query ApplicationTimelineListQuery($filters: GitopsReleaseFilterArgs, $pagination: SlicePaginationArgs, "
        "$sort: GitopsReleaseSortArg) { gitopsReleases(pagination: $pagination, filters: $filters, sort: $sort) { "
        "edges { node { current argoHistoryId application { status { syncStatus healthStatus } } } } pageInfo { "
        "hasNextPage hasPrevPage startCursor endCursor } } }",
        {
            "filters": {"namespace": "eu-west", "runtime": "eu-west", "name": "checkout-production"},
            "pagination": {"first": 10},
        },
    ),
    "gitopsReleases [RM application_timeline_list_query.graphql]": (
        """query ApplicationTimelineListQuery($filters: GitopsReleaseFilterArgs, $pagination: SlicePaginationArgs,
          $sort: GitopsReleaseSortArg) {
          gitopsReleases(pagination: $pagination, filters: $filters, sort: $sort) {
            edges { node {
              current historyId argoHistoryId
              childApps { name repo cluster status }
              applicationMetadata { name runtime namespace uid }
              application {
                issues { key type value } prs { type value key }
                committers { userName avatar commits { url message sha } }
                builds { id pipeline { id project projectId name } }
                status { syncStatus healthStatus healthMessage syncStartedAt syncFinishedAt commitAuthor commitAvatar
                         commitUrl commitMessage commitDate revision }
              }
              fromState { rollouts { name } } toState { rollouts { name } }
              transition {
                rollouts {
                  from { ...state } to { ...state disabled message paused pausedInconclusive ...analyses }
                  rollbacks { from { ...state } to { ...state message paused ...analyses } }
                }
                services { name from { ...service } to { ...service } }
              }
              operationState { syncResult { resources { group version kind name namespace message
                                                        syncActionOnResource status syncPhase hookPhase hookType } } }
            } }
            pageInfo { hasNextPage hasPrevPage startCursor endCursor }
          }
        }
        fragment state on ReleaseRolloutState {
          name uid currentRevision steps currentStepIndex currentStepSpec currentStrategyName phase services isComplete
          revisionInfo { replicas updatedReplicas availableReplicas unavailableReplicas weight image
                         imageDetails { image repositoryName binaryId workflowName workflowUrl ciProvider } }
        }
        fragment analyses on ReleaseRolloutState {
          prePromotionAnalysisRunStatus { name phase successful failed inconclusive error }
          postPromotionAnalysisRunStatus { name phase successful failed inconclusive error }
          stepsAnalysisRunStatuses { name phase successful failed inconclusive error }
          backgroundAnalysisRunStatus { name phase successful failed inconclusive error }
        }
        fragment service on ReleaseServiceState {
          images { name image repositoryName binaryId workflowName workflowUrl ciProvider } replicas availableReplicas
        }""",
        {
            "filters": {"name": "checkout-production", "namespace": "eu-west", "runtime": "eu-west"},
            "pagination": {"first": 20},
        },
    ),
    "promotions [CLI2 latest_query]": (
        "query Promotions($filters: ProductReleaseFiltersArgs, $pagination: SlicePaginationArgs) { promotions("
        "filters: $filters, pagination: $pagination) { pageInfo { hasNextPage hasPrevPage startCursor endCursor } "
        "edges { node { __typename ... on ProductRelease { releaseId releaseName productName promotionFlowName error "
        "{ message code } status environmentsStatuses { __typename environmentName status } createdAt triggerCommit "
        "{ sha } initiator { name avatarUrl } version } ... on Promotion { id productName promotionFlowName status "
        "environments { __typename name status } createdAt triggerCommitInfo { commitSha commitAuthor avatarURL } "
        "promotionAppVersion failure { message } } } } } }",
        {"filters": {"productNames": ["checkout"]}, "pagination": {"first": 20}},
    ),
    "productReleases [CLI2 pre_v1_3808_0_query]": (
        "query getProductReleasesList($productName: String!, $filters: ProductReleaseFiltersArgs!, $pagination: "
        "SlicePaginationArgs) { productReleases(productName: $productName, filters: $filters, pagination: "
        "$pagination) { edges { node { releaseId triggerCommit { sha committer date message repoURL revision } steps "
        "{ environmentName status applications { applicationId { runtime namespace name } commitSha } } status "
        "updatedAt createdAt } } } }",
        {"productName": "checkout", "filters": {"productNames": ["checkout"]}, "pagination": {"first": 20}},
    ),
}


def post(server: SandboxServer, query: str, variables: Optional[Dict] = None, key: Optional[str] = SANDBOX_API_KEY):
    headers = {"Authorization": key} if key else {}
    body = {"query": query, "variables": variables or {}}
    return requests.post(server.url + "/2.0/api/graphql", json=body, headers=headers, timeout=10)


def data(server: SandboxServer, query: str, variables: Optional[Dict] = None) -> Dict[str, Any]:
    answer = post(server, query, variables)
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    return answer.json()["data"]


def messages(answer: requests.Response) -> List[str]:
    return [e["message"] for e in answer.json()["errors"]]


def walk(server: SandboxServer, field: str, selection: str, first: int, args: str = "", **variables: Any):
    """Every node of a list, page after page (`pagination: {first, after}`); the pages' pageInfo too."""
    query = (
        f"query($p: SlicePaginationArgs) {{ {field}({args}pagination: $p) {{ edges {{ cursor node {{ {selection} }} }} "
        "pageInfo { startCursor endCursor hasNextPage hasPrevPage } } }"
    )
    nodes, pages, after = [], [], None
    while True:
        page = data(server, query, {"p": {"first": first, **({"after": after} if after else {})}, **variables})[field]
        nodes += [e["node"] for e in page["edges"]]
        pages.append(page)
        assert len(page["edges"]) <= first
        if not page["pageInfo"]["hasNextPage"]:
            return nodes, pages
        after = page["pageInfo"]["endCursor"]
        assert len(pages) < 1000


@pytest.fixture(scope="module")
def server():
    with SandboxServer(SandboxConfig(**SMALL)) as srv:
        yield srv


@pytest.fixture()
def srv(server):
    server.clear_faults()
    server.reset_stats()
    yield server
    server.clear_faults()


@pytest.fixture()
def small():
    """A private sandbox for tests that change data (advance)."""
    with SandboxServer(SandboxConfig(**SMALL)) as s:
        yield s


def release_key(node: Dict) -> str:
    return f"{node['applicationMetadata']['uid']}:{node['historyId']}"


# --- shapes -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(EVIDENCED))
def test_the_selections_of_evidenced_clients_are_answered(srv, name):
    query, variables = EVIDENCED[name]
    answer = data(srv, query, variables)
    (value,) = answer.values()
    assert value  # not null, and lists not empty
    if isinstance(value, dict) and "edges" in value:
        assert value["edges"]


def test_only_the_selected_fields_come_back(srv):
    nodes = [e["node"] for e in data(srv, "{ runtimes { edges { node { metadata { name } } } } }")["runtimes"]["edges"]]
    assert nodes and all(n == {"metadata": {"name": n["metadata"]["name"]}} for n in nodes)
    assert [n["metadata"]["name"] for n in nodes] == ["eu-west", "us-east", "codefresh-hosted"]


def test_a_field_the_schema_lacks_gets_the_engines_error(srv):
    answer = post(srv, "{ runtimes { edges { node { metadata { name } nope } } } }")
    assert answer.status_code == 400 and "data" not in answer.json()
    assert messages(answer) == ['Cannot query field "nope" on type "Runtime".']
    answer = post(srv, "{ applications { __typename } }")
    assert messages(answer) == ['Cannot query field "applications" on type "Query". Did you mean "application"?']
    # The fragment of CLI2's query is needed: the node of `promotions` is a union.
    answer = post(srv, "{ promotions { edges { node { releaseId } } } }")
    assert messages(answer)[0].startswith('Cannot query field "releaseId" on type "PromotionOrReleaseNode".')


def test_the_status_of_refused_queries_follows_the_switch():
    with SandboxServer(SandboxConfig(**SMALL, gitops_invalid_query_status="200")) as s:
        answer = post(s, "{ applications { __typename } }")
        assert answer.status_code == 200 and "data" not in answer.json()
        assert messages(answer)[0].startswith('Cannot query field "applications" on type "Query".')
        assert post(s, "{ runtimes {").status_code == 200  # a syntax error too
        bad_variables = post(s, "query($n: String!) { runtime(name: $n) { cluster } }", {})
        assert bad_variables.status_code == 200 and "data" not in bad_variables.json()


def test_the_application_view_and_single_records(srv):
    runtime = data(srv, '{ runtime(name: "eu-west") { metadata { name } managedClustersNum } }')["runtime"]
    assert runtime["metadata"]["name"] == "eu-west" and runtime["managedClustersNum"] > 0
    assert data(srv, '{ runtime(name: "nope") { cluster } }') == {"runtime": None}
    uid = srv.data.gitops.workflows[0]["metadata"]["uid"]
    got = data(srv, "query($u: String!) { workflow(uid: $u) { metadata { uid } status { nodes { id } } } }", {"u": uid})
    assert got["workflow"]["metadata"]["uid"] == uid and len(got["workflow"]["status"]["nodes"]) >= 2
    pipeline = srv.data.gitops.pipelines[0]["metadata"]
    query = "query($n: String!, $r: String!) { pipeline(name: $n, runtime: $r) { spec { trigger } } }"
    assert data(srv, query, {"n": pipeline["name"], "r": pipeline["runtime"]}) == {
        "pipeline": {"spec": {"trigger": "github-push"}}
    }


def test_workflows_carry_their_nodes_step_by_step(srv):
    query = "{ workflows { edges { node { metadata { uid } status { phase progress nodes { id type phase } } } } } }"
    workflows = [e["node"] for e in data(srv, query)["workflows"]["edges"]]
    assert len(workflows) == srv.expected()["gitops_workflows"]
    nodes = sum(len(w["status"]["nodes"]) for w in workflows)
    assert nodes == srv.expected()["gitops_workflow_nodes"]
    for w in workflows:
        root, *steps = w["status"]["nodes"]
        assert root["type"] == "Steps" and root["phase"] == w["status"]["phase"] and steps
        assert {s["type"] for s in steps} <= {"Pod", "Suspend"}
    suspended = [
        w for w in workflows if any(n["type"] == "Suspend" and n["phase"] == "Running" for n in w["status"]["nodes"])
    ]
    assert len(suspended) == 2 and all(w["status"]["phase"] == "Running" for w in suspended)


def test_releases_link_to_classic_builds_of_the_deployed_commit(srv):
    selection = "application { builds { id pipeline { id } } status { revision commitDate syncStartedAt } }"
    nodes, _ = walk(srv, "gitopsReleases", selection, 50)
    linked = [n for n in nodes if n["application"]["builds"]]
    assert len(nodes) == 80 and len(linked) > len(nodes) // 2
    for n in linked:
        (build,) = n["application"]["builds"]
        doc = srv.data.get_build(build["id"])
        status = n["application"]["status"]
        assert doc["status"] == "success" and doc["revision"] == status["revision"]
        assert doc["serviceId"] == build["pipeline"]["id"]
        assert parse_iso_ms(status["commitDate"]) < parse_iso_ms(doc["created"]) < parse_iso_ms(status["syncStartedAt"])


# --- paging -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("first", [1, 7, 50])
def test_releases_page_across_pages_without_a_node_missing_or_twice(srv, first):
    nodes, pages = walk(srv, "gitopsReleases", "historyId applicationMetadata { uid }", first)
    keys = [release_key(n) for n in nodes]
    expected = [r["_key"] for r in sorted(srv.data.gitops.releases, key=lambda r: (r["_created_ms"], r["_key"]))]
    assert keys == expected[::-1]  # every release once, newest first
    assert len(pages) == -(-len(expected) // first)
    assert not pages[0]["pageInfo"]["hasPrevPage"] and all(p["pageInfo"]["hasPrevPage"] for p in pages[1:])
    assert all(p["pageInfo"]["endCursor"] == p["edges"][-1]["cursor"] for p in pages)


@pytest.mark.parametrize(
    "field, selection, args, count, key",
    [
        ("clusters", "metadata { uid }", "", "gitops_clusters", lambda n: n["metadata"]["uid"]),
        ("promotions", "... on Promotion { id } ... on ProductRelease { releaseId }", "", "gitops_promotions",
         lambda n: n.get("id") or n["releaseId"]),
        ("productReleases", "releaseId", 'productName: "checkout", filters: {}, ', None, lambda n: n["releaseId"]),
    ],
)  # fmt: skip
def test_other_lists_page_across_pages(srv, field, selection, args, count, key):
    nodes, pages = walk(srv, field, selection, 4, args)
    keys = [key(n) for n in nodes]
    assert len(keys) == len(set(keys)) and len(pages) > 1
    if count:
        assert len(keys) == srv.expected()[count]
    else:
        assert len(keys) == sum(1 for p in srv.data.gitops.promotions if p["productName"] == "checkout") > 4


def test_a_page_goes_on_after_its_node_while_new_records_arrive(small):
    query = (
        "query($p: SlicePaginationArgs) { gitopsReleases(pagination: $p) { edges { node { historyId "
        "applicationMetadata { uid } } } pageInfo { endCursor hasNextPage } } }"
    )
    before = [r["_key"] for r in small.data.gitops.releases][::-1]
    first = data(small, query, {"p": {"first": 10}})["gitopsReleases"]
    added = small.advance(new_gitops=3, minutes=60)["gitops"]["added"]
    rest, after = [], first["pageInfo"]["endCursor"]
    while after:
        page = data(small, query, {"p": {"first": 10, "after": after}})["gitopsReleases"]
        rest += [release_key(e["node"]) for e in page["edges"]]
        after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
    assert [release_key(e["node"]) for e in first["edges"]] + rest == before  # the new ones are before page 1
    newest = data(small, query, {"p": {"first": 3}})["gitopsReleases"]["edges"]
    assert {release_key(e["node"]) for e in newest} == {k for k in added if ":" in k}


def test_backwards_paging_with_last_and_before(srv):
    query = (
        "query($p: SlicePaginationArgs) { clusters(pagination: $p) { edges { cursor node { metadata { uid } } } "
        "pageInfo { startCursor hasPrevPage hasNextPage } } }"
    )
    every = data(srv, query, {"p": {"first": 50}})["clusters"]["edges"]
    tail = data(srv, query, {"p": {"last": 3}})["clusters"]
    assert tail["edges"] == every[-3:] and tail["pageInfo"]["hasPrevPage"] and not tail["pageInfo"]["hasNextPage"]
    before = data(srv, query, {"p": {"last": 2, "before": every[5]["cursor"]}})["clusters"]["edges"]
    assert before == every[3:5]


def test_a_cursor_that_is_not_the_lists_own_is_an_error(srv):
    query = "query($p: SlicePaginationArgs) { clusters(pagination: $p) { edges { cursor } } }"
    answer = post(srv, query, {"p": {"after": "bm90LWEtY3Vyc29y"}})
    assert answer.status_code == 200 and answer.json()["data"] == {"clusters": None}
    assert messages(answer) == ["Invalid cursor: bm90LWEtY3Vyc29y"]


def test_a_page_larger_than_50_is_an_error_under_the_cap(srv):
    query = "query($p: SlicePaginationArgs) { gitopsReleases(pagination: $p) { edges { cursor } } }"
    assert len(data(srv, query, {"p": {"first": 50}})["gitopsReleases"]["edges"]) == 50
    answer = post(srv, query, {"p": {"first": 51}})
    assert answer.status_code == 200 and answer.json()["data"] == {"gitopsReleases": None}
    assert answer.json()["errors"][0]["path"] == ["gitopsReleases"]
    assert messages(answer) == ['Pagination "first" is limited to 50, got 51.']
    with SandboxServer(SandboxConfig(**SMALL, gitops_page_cap="none")) as s:
        assert len(data(s, query, {"p": {"first": 80}})["gitopsReleases"]["edges"]) == 80


# --- switches ---------------------------------------------------------------------------------------------------------
def test_an_older_server_has_product_releases_and_no_promotions():
    latest, variables = EVIDENCED["promotions [CLI2 latest_query]"]
    with SandboxServer(SandboxConfig(**SMALL, gitops_schema="before_promotions")) as s:
        answer = post(s, latest, variables)
        assert answer.status_code == 400
        assert messages(answer) == ['Cannot query field "promotions" on type "Query".']
        # CLI2 matches the raw body of the 400 (its ApiError), where the quotes are escaped.
        assert 'Cannot query field \\"promotions\\" on type \\"Query\\"' in answer.text
        older, variables = EVIDENCED["productReleases [CLI2 pre_v1_3808_0_query]"]
        nodes = [e["node"] for e in data(s, older, variables)["productReleases"]["edges"]]
        ids = [p["id"] for p in reversed(s.data.gitops.promotions) if p["productName"] == "checkout"]
        assert [n["releaseId"] for n in nodes] == ids[:20]
        assert all(step["applications"] for n in nodes for step in n["steps"])


def test_promotions_answer_older_records_as_product_releases(srv):
    selection = "__typename ... on Promotion { id createdAt } ... on ProductRelease { releaseId createdAt }"
    nodes, _ = walk(srv, "promotions", selection, 50)
    kinds = {n["__typename"] for n in nodes}
    assert kinds == {"Promotion", "ProductRelease"}
    anchor = parse_iso_ms(SandboxConfig().anchor)
    for n in nodes:
        old = parse_iso_ms(n["createdAt"]) < anchor - 45 * 86_400_000
        assert n["__typename"] == ("ProductRelease" if old else "Promotion")


def test_an_account_without_gitops_has_empty_lists():
    with SandboxServer(SandboxConfig(**SMALL, gitops_account="empty")) as s:
        lists = "runtimes { edges { cursor } pageInfo { hasNextPage endCursor } }"
        for field in ("clusters", "gitopsReleases", "promotions", "workflows", "pipelines", "gitSources"):
            lists += f" {field} {{ edges {{ cursor }} pageInfo {{ hasNextPage endCursor }} }}"
        got = data(s, "{ " + lists + ' components(runtime: "eu-west") { edges { cursor } } }')
        assert all(v["edges"] == [] for v in got.values())
        assert all(v["pageInfo"] == {"hasNextPage": False, "endCursor": None} for v in got.values() if "pageInfo" in v)
        assert data(s, '{ runtime(name: "eu-west") { cluster } }') == {"runtime": None}
        assert all(count == 0 for name, count in s.expected().items() if name.startswith("gitops_"))
        assert s.expected()["builds"] == SMALL["builds"]


def test_a_key_without_gitops_access_gets_forbidden_on_every_field():
    with SandboxServer(SandboxConfig(**SMALL, gitops_access="forbidden")) as s:
        answer = post(s, '{ runtimes { edges { cursor } } runtime(name: "eu-west") { cluster } }')
        assert answer.status_code == 200
        assert answer.json()["data"] == {"runtimes": None, "runtime": None}
        errors = answer.json()["errors"]
        assert [(e["message"], e["extensions"], e["path"]) for e in errors] == [
            ("Forbidden", 403, ["runtimes"]),
            ("Forbidden", 403, ["runtime"]),
        ]
        assert s.expected()["gitops_releases"] == 0


@pytest.mark.parametrize("field", ["runtimes", "gitSources", "components", "pipelines", "workflows"])
def test_lists_read_whole_by_evidenced_clients_take_no_pagination_unless_every_list_pages(srv, field):
    args = '(runtime: "eu-west")' if field == "components" else ""
    whole = data(srv, f"{{ {field}{args} {{ edges {{ cursor }} pageInfo {{ hasNextPage }} }} }}")[field]
    assert not whole["pageInfo"]["hasNextPage"]
    paged_args = '(runtime: "eu-west", pagination: {first: 1})' if args else "(pagination: {first: 1})"
    answer = post(srv, f"{{ {field}{paged_args} {{ edges {{ cursor }} }} }}")
    assert messages(answer) == [f'Unknown argument "pagination" on field "Query.{field}".']


def test_under_every_list_the_whole_lists_page_by_20():
    with SandboxServer(SandboxConfig(**SMALL, gitops_list_pagination="every_list")) as s:
        first = data(s, "{ workflows { edges { cursor } pageInfo { hasNextPage } } }")["workflows"]
        assert len(first["edges"]) == 20 and first["pageInfo"]["hasNextPage"]
        nodes, _ = walk(s, "workflows", "metadata { uid }", 15)
        assert len({n["metadata"]["uid"] for n in nodes}) == len(nodes) == s.expected()["gitops_workflows"]


def test_releases_without_an_application_filter_under_each_reading():
    query = (
        "query($f: GitopsReleaseFilterArgs) { gitopsReleases(filters: $f, pagination: {first: 5}) { edges { node { "
        "historyId } } } }"
    )
    app = {"runtime": "eu-west", "namespace": "eu-west", "name": "checkout-production"}
    with SandboxServer(SandboxConfig(**SMALL, gitops_releases_filter="required")) as s:
        answer = post(s, query, {"f": {"runtime": "eu-west"}})
        assert answer.status_code == 200 and answer.json()["data"] == {"gitopsReleases": None}
        assert messages(answer) == [
            "gitopsReleases needs an application: set filters.runtime, filters.namespace and filters.name."
        ]
        assert len(data(s, query, {"f": app})["gitopsReleases"]["edges"]) == 5
    with SandboxServer(SandboxConfig(**SMALL)) as s:
        assert len(data(s, query, {"f": {}})["gitopsReleases"]["edges"]) == 5


def test_introspection_under_each_reading(srv):
    query = "{ __schema { queryType { name } } }"
    answer = post(srv, query)
    assert answer.status_code == 400
    assert messages(answer)[0] == (
        'GraphQL introspection has been disabled, but the requested query contained the field "__schema".'
    )
    assert data(srv, "{ __typename }") == {"__typename": "Query"}  # not introspection
    with SandboxServer(SandboxConfig(**SMALL, gitops_introspection="enabled")) as s:
        assert data(s, query) == {"__schema": {"queryType": {"name": "Query"}}}


# --- filters ----------------------------------------------------------------------------------------------------------
def test_release_filters_and_sort(srv):
    app = srv.data.gitops.apps[1]
    f = {"runtime": app["runtime"], "namespace": app["namespace"], "name": app["name"]}
    sort = {"field": "historyId", "order": "asc"}
    query = (
        "query($f: GitopsReleaseFilterArgs, $s: GitopsReleaseSortArg) { gitopsReleases(filters: $f, sort: $s, "
        "pagination: {first: 50}) { edges { node { historyId current } } } }"
    )
    nodes = [e["node"] for e in data(srv, query, {"f": f, "s": sort})["gitopsReleases"]["edges"]]
    assert [n["historyId"] for n in nodes] == list(range(1, len(nodes) + 1)) and len(nodes) == 10
    assert [n["current"] for n in nodes] == [False] * (len(nodes) - 1) + [True]
    since = srv.data.gitops.releases[-20]["application"]["status"]["syncStartedAt"]
    recent = data(srv, query, {"f": {"syncStartDateFrom": since}, "s": None})["gitopsReleases"]["edges"]
    assert len(recent) == 20


def test_unfinished_filters(srv):
    running = data(srv, "{ workflows(filters: {statuses: [Running]}) { edges { cursor } } }")["workflows"]["edges"]
    assert len(running) == srv.expected()["gitops_workflows_unfinished"] == 6
    query = (
        "{ promotions(filters: {statuses: [RUNNING, SUSPENDED]}) { edges { node { ... on Promotion { status } } } } }"
    )
    statuses = [e["node"]["status"] for e in data(srv, query)["promotions"]["edges"]]
    assert sorted(statuses) == ["RUNNING"] * 3 + ["SUSPENDED"] * 2
    mine = data(
        srv, '{ promotions(filters: {productNames: ["billing"]}, pagination: {first: 50}) { edges { cursor } } }'
    )
    assert len(mine["promotions"]["edges"]) == sum(
        1 for p in srv.data.gitops.promotions if p["productName"] == "billing"
    )


@pytest.mark.parametrize("reading", ["honoured", "ignored"])
def test_date_filters_are_applied_or_ignored(reading):
    """gitops_date_filters: the start filters of releases, promotions, product releases and workflows."""
    with SandboxServer(SandboxConfig(**SMALL, gitops_date_filters=reading)) as s:
        g = s.data.gitops
        since = {
            "gitopsReleases": g.releases[-20]["application"]["status"]["syncStartedAt"],
            "promotions": s.data.gitops.promotion_view(g.promotions[-7])["createdAt"],
            "workflows": g.workflows[-9]["metadata"]["created"],
        }
        queries = {
            "gitopsReleases": ("GitopsReleaseFilterArgs", "syncStartDateFrom", min(50, len(g.releases)), 20),
            "promotions": ("ProductReleaseFiltersArgs", "startDate", min(50, len(g.promotions)), 7),
            "workflows": ("WorkflowsFilterArgs", "startDateFrom", len(g.workflows), 9),
        }
        for field, (kind, name, everything, recent) in queries.items():
            paged = ", pagination: {first: 50}" if field != "workflows" else ""
            query = f"query($f: {kind}) {{ {field}(filters: $f{paged}) {{ edges {{ cursor }} }} }}"
            answered = len(data(s, query, {"f": {name: since[field]}})[field]["edges"])
            assert answered >= recent, field  # records created at the same instant as the bound come too
            assert (answered == everything) == (reading == "ignored"), field
        # A date that is no date is an error under both.
        bad = post(s, '{ workflows(filters: {startDateFrom: "soon"}) { edges { cursor } } }').json()
        assert bad["errors"][0]["message"] == "Invalid date: soon"


# --- the clock --------------------------------------------------------------------------------------------------------
def test_unfinished_records_finish_with_the_clock_and_new_ones_arrive(small):
    open_ = small.data.gitops.unfinished()
    assert [len(v) for v in open_.values()] == [2, 5, 6]
    keep = open_["promotions"][0]
    moved = small.advance(minutes=120, new_gitops=4, new_unfinished=1, keep_running=[keep])["gitops"]
    assert set(moved["finished"]) == {k for v in open_.values() for k in v} - {keep}
    assert len(moved["added"]) == 12
    now = small.data.gitops.unfinished()
    assert set(now["promotions"]) == {keep} | set(moved["added"][-2:-1])
    assert len(now["releases"]) == len(now["workflows"]) == 1
    clock = small.data.clock_ms
    for r in small.data.gitops.releases:
        status = r["application"]["status"]
        if r["_key"] in moved["finished"]:
            assert status["healthStatus"] in ("HEALTHY", "DEGRADED") and status["syncStatus"] == "SYNCED"
            assert parse_iso_ms(status["syncStartedAt"]) < parse_iso_ms(status["syncFinishedAt"]) < clock
    query = "{ workflows(filters: {statuses: [Running]}) { edges { node { metadata { uid } } } } }"
    assert [e["node"]["metadata"]["uid"] for e in data(small, query)["workflows"]["edges"]] == now["workflows"]


# --- auth, faults, operations -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, status",
    [
        (None, 401),
        ("wrong-key", 401),
        (SANDBOX_API_KEY + "x", 401),
        (SANDBOX_RESTRICTED_API_KEY, 403),
        (SANDBOX_LIMITED_API_KEY, 200),
        (f"Bearer {SANDBOX_API_KEY}", 200),
    ],
)
def test_auth(srv, key, status):
    answer = post(srv, "{ runtimes { edges { cursor } } }", key=key)
    assert answer.status_code == status
    if status == 401:
        assert answer.json() == {"error": "Unauthorized: Invalid token."}
    if status == 403:
        assert answer.json()["name"] == "FORBIDDEN"


def test_requests_that_are_not_graphql(srv):
    url = srv.url + "/2.0/api/graphql"
    auth = {"Authorization": SANDBOX_API_KEY}
    assert requests.get(url, headers=auth, timeout=5).status_code == 405
    assert requests.post(url, data=b"{nope", headers=auth, timeout=5).status_code == 400
    assert requests.post(url, json={"query": 1}, headers=auth, timeout=5).status_code == 400
    assert post(srv, "{ runtimes {").status_code == 400
    assert srv.stats()["graphql"]["unparsable"] == 1


def test_mutations_are_rejected_and_counted():
    # A sandbox of its own, out of the run's tally (conftest.py): these mutations are sent on purpose.
    with SandboxServer(SandboxConfig(**SMALL_ACCOUNT), tally=False) as srv:
        _mutations_are_rejected_and_counted(srv)


def _mutations_are_rejected_and_counted(srv: SandboxServer) -> None:
    answer = post(srv, 'mutation { deleteRuntime(name: "eu-west") }')
    assert answer.status_code == 400 and messages(answer) == ["The mutation operation is not supported by the schema."]
    # A document with a query and a mutation is refused whole, whichever operation it names.
    both = "query Q { runtimes { edges { cursor } } } mutation M { x }"
    assert post(srv, both, {}).status_code == 400
    data(srv, "{ runtimes { edges { cursor } } }")
    stats = srv.stats()["graphql"]
    assert (stats["mutation"], stats["query"], stats["subscription"]) == (2, 2, 0)
    assert stats["by_field"] == {"runtimes": 1}  # only executed queries count their fields
    json_stats = requests.get(srv.url + "/_sandbox/stats", timeout=5).json()
    assert json_stats["graphql"]["mutation"] == 2 and json_stats["by_route"]["POST /2.0/api/graphql"] == 3


def test_faults_apply_to_the_graphql_route(srv):
    srv.set_faults([{"match": {"path": "^/2.0/api/graphql$"}, "kind": "status", "status": 502, "every": 2}])
    query = "{ runtimes { edges { cursor } } }"
    assert [post(srv, query).status_code for _ in range(4)] == [200, 502, 200, 502]
    srv.set_faults([{"match": {"path": "^/2.0/api/graphql$"}, "kind": "malformed"}])
    answer = post(srv, query)
    assert answer.status_code == 200
    with pytest.raises(ValueError):
        answer.json()
    srv.set_faults([{"kind": "rate_limit", "retry_after": "2"}])  # a rule without `match` covers GraphQL too
    answer = post(srv, query)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "2"


def test_gitops_draws_change_no_rest_record():
    with_gitops, without = (
        SandboxData(SandboxConfig(**SMALL)),
        SandboxData(SandboxConfig(**SMALL, gitops_account="empty")),
    )
    assert with_gitops.build_json == without.build_json
    assert with_gitops.images.parts == without.images.parts and with_gitops.audit.parts == without.audit.parts


def test_determinism():
    query = EVIDENCED["gitopsReleases [RM application_timeline_list_query.graphql]"][0]
    answers = []
    for seed in (7, 7, 8):
        with SandboxServer(SandboxConfig(**SMALL, seed=seed)) as s:
            answers.append(post(s, query, {"pagination": {"first": 50}}).content)
    assert answers[0] == answers[1] != answers[2]


def test_cli_flags_choose_the_gitops_readings():
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    args = ["--port", "0", "--builds", "40", "--gitops-schema", "before_promotions", "--gitops-access", "forbidden"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "codefresh_sandbox", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = proc.stdout.readline().strip().split("=", 1)[1]
        url = base[: -len("/api")] + "/2.0/api/graphql"
        auth = {"Authorization": SANDBOX_API_KEY}
        older = requests.post(url, json={"query": "{ promotions { pageInfo { hasNextPage } } }"}, headers=auth)
        assert older.status_code == 400 and "promotions" in older.json()["errors"][0]["message"]
        forbidden = requests.post(url, json={"query": "{ runtimes { pageInfo { hasNextPage } } }"}, headers=auth)
        assert forbidden.json()["errors"][0]["extensions"] == 403
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the DORA truth ---------------------------------------------------------------------------------------------------
def _release(app: str, cluster: str, history: int, revision: str, health: str, commit: str, finished: Optional[str]):
    return {
        "applicationMetadata": {"runtime": "eu-west", "namespace": "eu-west", "name": app},
        "historyId": history,
        "application": {
            "destination": {"name": cluster},
            "status": {
                "revision": revision,
                "healthStatus": health,
                "commitDate": commit,
                "syncFinishedAt": finished,
            },
        },
    }


def test_dora_truth_on_a_hand_checked_set():
    a, b, d = "shop-production", "cart-production", "mail-production"
    releases = [
        # week of 2026-10-05: deployments a1 (6 h), a2 (12 h, fails), b1 (8 h, fails, never restored)
        _release(a, "prod-1", 1, "a1", "HEALTHY", "2026-10-05T00:00:00Z", "2026-10-05T06:00:00Z"),
        _release(a, "prod-1", 3, "a1", "HEALTHY", "2026-10-05T00:00:00Z", "2026-10-06T15:00:00Z"),  # rollback: a2 3 h
        _release(a, "prod-1", 2, "a2", "DEGRADED", "2026-10-06T00:00:00Z", "2026-10-06T12:00:00Z"),
        _release(b, "prod-1", 1, "b1", "DEGRADED", "2026-10-07T00:00:00Z", "2026-10-07T08:00:00Z"),
        # week of 2026-10-12: a3 (24 h, fails), its re-sync (nothing), a4 (2 h, restores a3 after 4 h)
        _release(a, "prod-1", 4, "a3", "DEGRADED", "2026-10-12T10:00:00Z", "2026-10-13T10:00:00Z"),
        _release(a, "prod-1", 5, "a3", "DEGRADED", "2026-10-12T10:00:00Z", "2026-10-13T11:00:00Z"),
        _release(a, "prod-1", 6, "a4", "HEALTHY", "2026-10-13T12:00:00Z", "2026-10-13T14:00:00Z"),
        _release(a, "prod-1", 7, "a5", "PROGRESSING", "2026-10-27T00:00:00Z", None),  # still syncing: nowhere
        # week of 2026-10-19: nothing; week of 2026-10-26: d1 (1 h)
        _release(d, "prod-2", 1, "d1", "HEALTHY", "2026-10-26T00:00:00Z", "2026-10-26T01:00:00Z"),
        _release("shop-staging", "staging-1", 1, "s1", "DEGRADED", "2026-10-06T00:00:00Z", "2026-10-06T01:00:00Z"),
    ]
    rows = dora.weekly(releases, {"prod-1", "prod-2"})
    assert rows == [
        {"week": "2026-10-05", "deployments": 3, "failed_deployments": 2, "change_failure_rate": 2 / 3,
         "lead_time_hours": 8.0, "time_to_restore_hours": 3.0, "restored": 1, "unrestored": 1},
        {"week": "2026-10-12", "deployments": 2, "failed_deployments": 1, "change_failure_rate": 0.5,
         "lead_time_hours": 13.0, "time_to_restore_hours": 4.0, "restored": 1, "unrestored": 0},
        {"week": "2026-10-19", "deployments": 0, "failed_deployments": 0, "change_failure_rate": None,
         "lead_time_hours": None, "time_to_restore_hours": None, "restored": 0, "unrestored": 0},
        {"week": "2026-10-26", "deployments": 1, "failed_deployments": 0, "change_failure_rate": 0.0,
         "lead_time_hours": 1.0, "time_to_restore_hours": None, "restored": 0, "unrestored": 0},
    ]  # fmt: skip
    assert dora.weekly(releases, set()) == []


def test_dora_truth_of_the_sandbox_is_what_its_api_records_give(srv):
    selection = (
        "historyId applicationMetadata { runtime namespace name } application { destination { name } status { "
        "revision healthStatus commitDate syncFinishedAt } }"
    )
    nodes, _ = walk(srv, "gitopsReleases", selection, 50)
    truth = srv.data.gitops.dora()
    assert dora.weekly(nodes, srv.data.gitops.production_clusters) == truth
    assert truth and all(r["week"] == dora.week_of(parse_iso_ms(r["week"] + "T00:00:00Z")) for r in truth)
    assert sum(r["deployments"] for r in truth) > sum(r["failed_deployments"] for r in truth) > 0
    json.dumps(truth)  # plain data, for scripts
