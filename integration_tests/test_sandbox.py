"""Tests of the Codefresh sandbox itself (codefresh_sandbox): auth, envelopes, paging rules, time filters,
faults, pipeline runs, advance(), determinism, stats and expected counts."""

from __future__ import annotations

import http.client as httplib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from codefresh_sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_LIMITED_API_KEY,
    SANDBOX_RESTRICTED_API_KEY,
    SMALL_ACCOUNT,
    SandboxServer,
    plain,
)
from codefresh_sandbox import SandboxConfig as AnyDateSandboxConfig
from codefresh_sandbox import audit as audit_module
from codefresh_sandbox.common import parse_iso_ms
from codefresh_sandbox.data import FIXED_ANCHOR

REPO_ROOT = Path(__file__).resolve().parents[1]
AUTH = {"Authorization": SANDBOX_API_KEY}
SMALL = SMALL_ACCOUNT


def SandboxConfig(**fields: Any) -> AnyDateSandboxConfig:
    """This module's sandboxes sit at the fixed anchor that the dates of its requests are written for."""
    return AnyDateSandboxConfig(**{"anchor": FIXED_ANCHOR, **fields})


@pytest.fixture(scope="module")
def server():
    """The default sandbox at the fixed anchor the tests' dates are written for, shared by the read-only tests
    (faults are cleared after each test)."""
    with SandboxServer(SandboxConfig(anchor=FIXED_ANCHOR)) as srv:
        yield srv


@pytest.fixture()
def srv(server):
    server.clear_faults()
    server.reset_stats()
    yield server
    server.clear_faults()
    server.set_latency(0)


@pytest.fixture()
def small():
    """A private small sandbox for tests that change data (runs, advance)."""
    with SandboxServer(SandboxConfig(**SMALL)) as s:
        yield s


@pytest.fixture()
def http():
    with requests.Session() as s:
        s.headers.update(AUTH)
        yield s


def get(http, srv, path, **kw):
    return http.get(srv.base_url + path, timeout=kw.pop("timeout", 10), **kw)


# ---------------------------------------------------------------------------------------------------------------
# auth
# ---------------------------------------------------------------------------------------------------------------
def test_auth_good_key(srv, http):
    r = get(http, srv, "/user")
    assert r.status_code == 200
    user = r.json()
    account = next(a for a in user["account"] if a["name"] == user["activeAccountName"])
    assert account["_id"] == srv.data.account_id == account["id"]
    assert user["account"][0]["name"] != user["activeAccountName"]  # look it up, don't take the first


@pytest.mark.parametrize("header", [None, "wrong-key", f"Bearer {SANDBOX_API_KEY}", SANDBOX_API_KEY + "x"])
def test_auth_rejected(srv, header):
    headers = {} if header is None else {"Authorization": header}
    r = requests.get(srv.base_url + "/pipelines", headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.json() == {
        "status": 401,
        "code": "1001",
        "name": "UNAUTHORIZED",
        "message": "Unauthorized: invalid API key",
    }


def test_restricted_key_gets_403_everywhere(srv):
    h = {"Authorization": SANDBOX_RESTRICTED_API_KEY}
    for path in ("/user", "/pipelines", "/workflow", "/audit", "/analytics/metadata", "/no/such/thing"):
        r = requests.get(srv.base_url + path, headers=h, timeout=10)
        assert r.status_code == 403 and "unusual activity" in r.json()["message"], path


def test_hermes_events_are_the_accounts_unless_public_is_asked(srv, http):
    own = get(http, srv, "/hermes/events").json()
    every = get(http, srv, "/hermes/events?public=true").json()
    assert own and all(e["account"] != "000000000000" for e in own)
    assert len(every) > len(own) and {e["uri"] for e in own} < {e["uri"] for e in every}
    assert len(own) == srv.expected()["hermes_events"]
    assert len(every) - len(own) == srv.expected()["hermes_public_events"]


def test_hermes_triggers_carry_empty_event_data_and_no_empty_filters(srv, http):
    links = get(http, srv, "/hermes/triggers").json()
    assert all(link["event-data"] == {"uri": "", "type": "", "kind": "", "account": "", "secret": ""} for link in links)
    assert any("filters" not in link for link in links) and all(link.get("filters", {"x": 1}) for link in links)


def test_limited_key(srv):
    h = {"Authorization": SANDBOX_LIMITED_API_KEY}
    assert requests.get(srv.base_url + "/audit", headers=h, timeout=10).status_code == 403
    r = requests.get(f"{srv.base_url}/accounts/{srv.data.account_id}/users", headers=h, timeout=10)
    assert r.status_code == 403 and r.json()["name"] == "FORBIDDEN"
    for path in ("/user", "/pipelines", "/workflow", "/images", "/analytics/metadata"):
        assert requests.get(srv.base_url + path, headers=h, timeout=10).status_code == 200, path


def test_unknown_path_and_account(srv, http):
    r = get(http, srv, "/no/such/thing")
    assert r.status_code == 404 and set(r.json()) == {"status", "code", "name", "message"}
    assert get(http, srv, "/accounts/000000000000000000000000/users").status_code == 404


# ---------------------------------------------------------------------------------------------------------------
# envelopes
# ---------------------------------------------------------------------------------------------------------------
ENVELOPES = [
    ("/user", dict, {"_id", "userName", "activeAccountName", "account"}),
    ("/team", list, {"_id", "name", "type", "account", "tags", "users"}),
    ("/account-settings", dict, {"_id", "createdAt", "updatedAt", "schemaVersion", "settings", "__v"}),
    ("/auth/keys", list, {"_id", "name", "tokenPrefix", "created", "subject", "scopes", "scopeSnapshot"}),
    ("/hermes/triggers", list, {"event", "pipeline", "event-data"}),
    ("/hermes/events", list, {"uri", "type", "kind", "account", "secret", "status", "endpoint", "description"}),
    ("/contexts", list, {"apiVersion", "kind", "owner", "metadata", "spec"}),
    ("/agents", list, {"id", "name", "account", "runtimes", "status", "tokenName", "lastReported"}),
    ("/helm/repos", list, {"Name", "Public", "CreatedAt", "UpdatedAt"}),
    (
        "/runtime-environments",
        list,
        {
            "metadata",
            "version",
            "description",
            "accountId",
            "isDefault",
            "isPublic",
            "plan",
            "runtimeScheduler",
            "dockerDaemonScheduler",
            "status",
        },
    ),
    (
        "/registries",
        list,
        {
            "_id",
            "name",
            "kind",
            "provider",
            "domain",
            "default",
            "primary",
            "internal",
            "behindFirewall",
            "repositoryPrefix",
        },
    ),
    ("/clusters", list, {"_id", "selector", "provider", "providerAgent"}),
]


@pytest.mark.parametrize("path,kind,fields", ENVELOPES)
def test_plain_envelopes(srv, http, path, kind, fields):
    body = get(http, srv, path).json()
    assert isinstance(body, kind)
    item = body if kind is dict else body[0]
    assert fields <= set(item), fields - set(item)


def test_wrapped_envelopes(srv, http):
    account = srv.data.account_id
    users = get(http, srv, f"/accounts/{account}/users").json()
    assert len(users) == 12 and {
        "_id",
        "userName",
        "email",
        "notificationEmail",
        "status",
        "roles",
        "account",
        "register_date",
        "last_login_date",
        "logins",
        "settings",
        "user_data",
        "notifications",
        "shortProfile",
        "hasPassword",
        "defaultAccount",
    } <= set(users[0])
    pipes = get(http, srv, "/pipelines").json()
    assert set(pipes) == {"docs", "count"} and pipes["count"] == 250 and len(pipes["docs"]) == 25
    md = pipes["docs"][0]["metadata"]
    assert {
        "id",
        "name",
        "shortName",
        "project",
        "projectId",
        "accountId",
        "created_at",
        "updated_at",
        "labels",
        "isPublic",
        "revision",
        "originalYamlString",
        "deprecate",
        "template",
    } <= set(md)
    assert set(get(http, srv, "/projects").json()) == {"projects"}
    step_type = get(http, srv, "/step-types").json()["docs"][0]
    assert {"version", "kind", "metadata", "spec", "metrics"} <= set(step_type)
    assert step_type["metadata"]["sourceURL"].startswith("https://github.com/codefresh-io/steps/")
    assert set(get(http, srv, "/execution-contexts").json()) == {"docs"}
    env = get(http, srv, "/environments-v2").json()
    assert set(env) == {"docs", "count"} and env["count"] == 8
    assert all(
        e["spec"]["type"] == "argo" and {"application", "context", "project"} <= set(e["spec"]) for e in env["docs"]
    )
    views = get(http, srv, "/views/?page=2&limit=10").json()
    assert set(views) == {"docs", "total", "limit", "page", "pages", "offset"}
    assert (views["total"], views["pages"], views["page"], views["offset"], len(views["docs"])) == (15, 2, 2, 10, 5)
    wf = get(http, srv, "/workflow", headers={"X-Pagination-Session-Id": "env"}).json()
    assert set(wf) == {"workflows", "pagination"} and set(wf["workflows"]) == {"docs", "total"}
    assert wf["workflows"]["total"] == 500
    assert wf["pagination"] == {"page": 1, "nextPage": True, "pageSize": 25}
    images = get(http, srv, "/images").json()  # the default reading: offset pages, no pagination object
    assert set(images) == {"docs", "total", "limit", "offset"} and (images["total"], images["offset"]) == (450, 0)
    assert set(get(http, srv, "/audit").json()) == {"data"}
    meta = get(http, srv, "/analytics/metadata").json()
    assert set(meta) == {"reports"} and len(meta["reports"]) == 6
    for name, report in meta["reports"].items():
        assert report["reportName"] == name
        assert {"type", "description", "filters", "members", "supportedTimeDimensions"} <= set(report)


def test_build_shapes(srv, http):
    build = get(http, srv, "/workflow?limit=100", headers={"X-Pagination-Session-Id": "shape"}).json()
    docs = build["workflows"]["docs"]
    for f in (
        "id",
        "created",
        "started",
        "finished",
        "updated",
        "status",
        "pipelineName",
        "serviceId",
        "repoOwner",
        "repoName",
        "branchName",
        "revision",
        "commitMessage",
        "pipelineTriggerName",
        "pipelineTriggerId",
        "webhookTriggered",
        "progress",
        "annotations",
        "account",
        "serviceName",
        "project",
        "projectId",
        "trigger",
        "triggerType",
        "committer",
        "runtime",
        "pendingApprovals",
        "terminationRequest",
    ):
        assert f in docs[0], f
    unfinished = [d for d in docs if d["finished"] is None]
    assert unfinished and all(
        d["status"] in ("pending", "elected", "running", "pending-approval", "delayed", "terminating")
        for d in unfinished
    )
    assert all(d["started"] is None for d in unfinished if d["status"] == "pending")
    finished = next(d for d in docs if d["status"] == "success")
    detail = get(http, srv, f"/builds/{finished['id']}").json()
    assert detail == finished  # one build object, in the list and alone
    revs = get(http, srv, f"/workflow/{finished['id']}/context-revision").json()
    steps = revs[-1]["context"]["stepsMetadata"]
    assert {"Initializing Process", "Initializing"} <= set(steps)
    # The real pseudo-steps (KB example): `Initializing` holds only a container id, `Initializing Process` has no
    # type and no result; a pipeline step has both.
    assert set(steps["Initializing"]) == {"containerId"}
    assert {"type", "result"}.isdisjoint(steps["Initializing Process"]) and steps["Initializing Process"]["status"]
    real = [step for name, step in steps.items() if name not in ("Initializing", "Initializing Process")]
    assert real and all(
        {"type", "result", "status", "startTimestamp", "finishTimestamp", "totalTime"} <= set(step) for step in real
    )
    assert get(http, srv, "/builds/ffffffffffffffffffffffff").status_code == 404
    no_rev = next(st for st in srv.data.builds if st.started_ms is None and st.finished)
    assert get(http, srv, f"/workflow/{no_rev.doc['id']}/context-revision").json() == []


def test_builds_carry_the_heavy_real_fields(srv, http):
    """The real shapes of docs/api-notes.md 8.3 and 8.11: list items carry both YAML texts (several kB), `steps` as
    names, `delayed` as a number, `request` as a string, and the real systemEvents / terminationRequest shapes."""
    docs = walk(http, srv, "/workflow", "heavy")
    user_yaml = [len(d["userYamlDescriptor"]) for d in docs]
    final_yaml = [len(d["finalWorkflowYaml"]) for d in docs]
    assert sum(user_yaml) / len(docs) > 3000 and sum(final_yaml) / len(docs) > 5000
    assert all(d["revision"] in d["finalWorkflowYaml"] and "steps:" in d["userYamlDescriptor"] for d in docs)
    assert all(isinstance(d["delayed"], int) and not isinstance(d["delayed"], bool) for d in docs)
    assert {d["delayed"] for d in docs if d["status"] == "delayed"} == {1}
    assert all(isinstance(d["request"], (str, type(None))) for d in docs) and any(d["request"] for d in docs)
    assert all(isinstance(s, str) for d in docs for s in d["steps"]) and any(d["steps"] for d in docs)
    events = [e for d in docs for e in d["systemEvents"]]
    assert events and all(
        set(e) == {"_id", "kind", "message", "retriable", "step", "stepKind", "stepName"} for e in events
    )
    assert any(e["kind"] == "error" for e in events)
    requests_ = [t for d in docs for t in d["terminationRequest"]]
    assert requests_ and all(
        set(t) == {"_id", "byBuildManager", "cause", "date", "message", "workflowStatus"} for t in requests_
    )
    assert all(d["terminationRequest"] for d in docs if d["status"] == "terminated")


def test_context_revisions_end_with_the_post_operations(srv, http):
    counts = set()
    for st in srv.data.builds[-120:]:
        revs = get(http, srv, f"/workflow/{st.doc['id']}/context-revision").json()
        if not revs:
            continue
        assert [r["metadata"]["revision"] for r in revs] == list(range(1, len(revs) + 1))
        events = [r["metadata"]["annotations"] for r in revs]
        if st.finished:
            assert events[-1] == {"event": "workflow.finish-system", "final": True}
            assert revs[-1]["metadata"]["description"] == "Workflow post operations completed"
            assert "finishTimestamp-system" in revs[-1]["context"]["workflowMetadata"]
        else:
            assert not any(e["final"] for e in events)
        assert not any(e["final"] for e in events[:-1])
        sizes = [len(r["context"]["stepsMetadata"]) for r in revs]
        assert sizes == sorted(sizes)  # each revision holds the steps begun by then
        counts.add(len(revs))
    assert max(counts) == 6 and min(counts) < 6


def test_step_and_build_status_vocabulary(srv, http):
    """Steps end `failure` (not `error`), approval steps `approved`/`denied`; builds also `terminating`."""
    statuses = {d["status"] for d in (st.doc for st in srv.data.builds)}
    assert {
        "success",
        "error",
        "terminated",
        "pending",
        "elected",
        "running",
        "pending-approval",
        "delayed",
        "terminating",
    } <= statuses
    failed = next(st for st in srv.data.builds if st.doc["status"] == "error" and st.started_ms is not None)
    steps = get(http, srv, f"/workflow/{failed.doc['id']}/context-revision").json()[-1]["context"]["stepsMetadata"]
    step_statuses = {step.get("status") for step in steps.values()}
    assert "failure" in step_statuses and "error" not in step_statuses
    approved = next(
        st
        for st in srv.data.builds
        if st.doc["status"] == "success"
        and any(k == "pending-approval" for _, k in st.pipeline.steps)
        and st.started_ms is not None
    )
    steps = get(http, srv, f"/workflow/{approved.doc['id']}/context-revision").json()[-1]["context"]["stepsMetadata"]
    assert [s["status"] for s in steps.values() if s.get("type") == "pending-approval"] == ["approved"]


def test_a_denied_approval_ends_the_build_denied(small, http):
    build_id = requests.post(
        f"{small.base_url}/pipelines/run/demo%2Fdenied-approval", json={}, headers=AUTH, timeout=10
    ).json()
    statuses = [
        requests.get(f"{small.base_url}/builds/{build_id}", headers=AUTH, timeout=10).json()["status"] for _ in range(3)
    ]
    assert statuses[-1] == "denied"
    steps = requests.get(f"{small.base_url}/workflow/{build_id}/context-revision", headers=AUTH, timeout=10).json()[-1][
        "context"
    ]["stepsMetadata"]
    assert [s["status"] for s in steps.values() if s.get("type") == "pending-approval"] == ["denied"]


# ---------------------------------------------------------------------------------------------------------------
# paging
# ---------------------------------------------------------------------------------------------------------------
def offset_ids(http, srv, path):
    """Every `metadata.id` of an offset-paged `{docs}` listing, read 100 at a time until a short page."""
    ids, offset = [], 0
    while True:
        docs = get(http, srv, f"{path}?limit=100&offset={offset}").json()["docs"]
        ids += [d["metadata"]["id"] for d in docs]
        if len(docs) < 100:
            return ids
        offset += 100


def test_offset_paging_cap(srv, http):
    r = get(http, srv, "/pipelines?limit=500").json()
    assert len(r["docs"]) == 100 and r["count"] == 250
    ids = offset_ids(http, srv, "/pipelines")
    assert len(ids) == len(set(ids)) == 250
    assert len(get(http, srv, "/runtime-environments?limit=1000&offset=100").json()) == 20
    assert get(http, srv, "/pipelines?limit=abc").status_code == 400


def test_registries_carry_credentials_of_each_kind(srv, http):
    registries = get(http, srv, "/registries").json()
    assert len(registries) == srv.expected()["registries"] == 7
    by_provider = {r["provider"]: r for r in registries}
    assert by_provider["other"]["password"] and by_provider["ecr"]["secretAccessKey"]
    assert by_provider["gcr"]["keyfile"] and by_provider["acr"]["clientSecret"] and by_provider["bintray"]["token"]
    assert len({r["_id"] for r in registries}) == 7
    assert len(get(http, srv, "/clusters").json()) == srv.expected()["clusters"] == 4


# Plain endpoints (codefresh_sandbox/plain.py): the real entries, and one of each paging family and key kind.
PLAIN_EXAMPLES = [
    plain.PlainEndpoint(
        "widgets_without_paging", "/widgets", ({"_id": "5f1a2b3c4d5e6f7a8b9c0d1e", "n": 1}, {"_id": "0" * 24}), "_id"
    ),
    plain.PlainEndpoint(
        "widgets_by_offset",
        "/widgets/offset",
        ({"metadata": {"name": "a"}, "n": 1}, {"metadata": {"name": "b"}}),
        "metadata.name",
        records_key="docs",
        paging="offset",
    ),
    plain.PlainEndpoint(
        "widgets_by_page",
        "/widgets/page",
        ({"id": 7}, {"id": 8}, {"id": 9}),
        "id",
        records_key="data.items",
        paging="page",
    ),
]


def plain_pages(http, srv, endpoint):
    """Every record of a plain endpoint, read as its paging family asks (the connector's page size, 100)."""
    found, page = [], 0
    while True:
        query = {"none": "", "offset": f"?limit=100&offset={100 * page}", "page": f"?limit=100&page={page + 1}"}
        body = get(http, srv, endpoint.path + query[endpoint.paging]).json()
        for key in endpoint.records_key.split(".") if endpoint.records_key else []:
            body = body[key]
        found += body
        page += 1
        if endpoint.paging == "none" or len(body) < 100:
            return found
        assert page < 20, f"{endpoint.stream}: the pages do not end"


def test_plain_endpoints_serve_copies_of_their_example_in_pages(monkeypatch, http):
    endpoints = plain.ENDPOINTS + PLAIN_EXAMPLES
    monkeypatch.setattr(plain, "ENDPOINTS", endpoints)
    with SandboxServer(SandboxConfig(**SMALL)) as srv:
        for endpoint in endpoints:
            found = plain_pages(http, srv, endpoint)
            assert len(found) == srv.expected()[endpoint.stream] == srv.config.plain_records > 100, endpoint.stream
            assert found[: len(endpoint.example)] == list(endpoint.example), "the example comes first, as it is"
            keys = [_at(record, endpoint.key) for record in found]
            assert len(set(keys)) == len(keys), f"{endpoint.stream}: a key repeats"
            assert all(
                set(record) == set(endpoint.example[i % len(endpoint.example)]) for i, record in enumerate(found)
            )
            limited = requests.get(srv.base_url + endpoint.path, headers={"Authorization": SANDBOX_LIMITED_API_KEY})
            assert limited.status_code == 200, "the limited key lacks no plain endpoint's scope"


def _at(record, dotted):
    for key in dotted.split("."):
        record = record[key]
    return record


def test_pipeline_names_offset_paging(srv, http):
    first = get(http, srv, "/pipelines/names").json()
    assert set(first) == {"docs", "count"} and first["count"] == 250 and len(first["docs"]) == 25
    assert set(first["docs"][0]) == {"metadata"}
    assert set(first["docs"][0]["metadata"]) == {"id", "name", "shortName", "project", "projectId", "updated_at"}
    ids = offset_ids(http, srv, "/pipelines/names")
    assert ids == [p["metadata"]["id"] for p in srv.data.pipelines.records]
    project = srv.data.pipeline_infos[0].project_id
    names = get(http, srv, f"/pipelines/names?projectId={project}&limit=100").json()
    assert names["count"] == sum(1 for p in srv.data.pipeline_infos if p.project_id == project) == len(names["docs"])


def walk(http, srv, path, session=None, limit=100):
    headers = {"X-Pagination-Session-Id": session} if session else {}
    page, out = 1, []
    while True:
        sep = "&" if "?" in path else "?"
        r = get(http, srv, f"{path}{sep}limit={limit}&page={page}", headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        docs = body["workflows"]["docs"] if "workflows" in body else body["docs"]
        out += docs
        if not body["pagination"]["nextPage"] or not docs:
            return out
        assert body["pagination"]["nextPage"] is True
        page += 1


def test_cursor_pages_in_order(srv, http):
    builds = walk(http, srv, "/workflow", "walk-1")
    assert len(builds) == len({b["id"] for b in builds}) == 500
    created = [b["created"] for b in builds]
    assert created == sorted(created, reverse=True) and len(set(created)) == 500
    assert srv.stats()["pagination_errors"] == 0


def test_cursor_page_rules(srv, http):
    h = {"X-Pagination-Session-Id": "rules"}
    p1 = get(http, srv, "/workflow?limit=100&page=1", headers=h)
    r = get(http, srv, "/workflow?limit=100&page=3", headers=h)
    assert r.status_code == 400 and r.json()["name"] == "PAGINATION_ERROR"
    assert srv.stats()["pagination_errors"] == 1
    p2 = get(http, srv, "/workflow?limit=100&page=2", headers=h).json()
    again = get(http, srv, "/workflow?limit=100&page=2", headers=h).json()
    assert again == p2  # a retry of the same page
    assert get(http, srv, "/workflow?limit=100&page=1", headers=h).json() == p1.json()  # page 1 resets
    assert get(http, srv, "/workflow?limit=100&page=2", headers=h).status_code == 200
    assert get(http, srv, "/workflow?limit=100&page=1", headers=h).status_code == 200
    assert get(http, srv, "/workflow?limit=100&page=2", headers=h).status_code == 200
    assert get(http, srv, "/workflow?limit=50&page=3", headers=h).status_code == 400  # other filters
    assert get(http, srv, "/workflow?limit=100&page=0", headers=h).status_code == 400
    assert srv.stats()["pagination_errors"] == 3


def newest_images(server):
    return [i["_id"] for i in reversed(server.data.images.records)]


def test_images_offset_reading_is_the_default(srv, http):
    """The spec's reading: limit/offset, {docs, total, limit, offset}, no pagination object; `page` is ignored."""
    ids, offset = [], 0
    while True:
        body = get(http, srv, f"/images?limit=100&offset={offset}&page=9").json()
        assert "pagination" not in body and (body["limit"], body["offset"], body["total"]) == (100, offset, 450)
        if not body["docs"]:
            break
        ids += [i["_id"] for i in body["docs"]]
        offset += len(body["docs"])
    assert ids == newest_images(srv)
    assert len(get(http, srv, "/images?limit=500").json()["docs"]) == 100
    assert srv.stats()["pagination_errors"] == 0


def test_images_cursor_reading(http):
    with SandboxServer(SandboxConfig(images_paging="cursor", **SMALL)) as cursor:
        images = walk(http, cursor, "/images", "walk-images", limit=10)
        assert [i["_id"] for i in images] == newest_images(cursor)
        h = {"X-Pagination-Session-Id": "rules"}
        first = get(http, cursor, "/images?limit=10&page=1&offset=20", headers=h).json()
        assert first["pagination"] == {"page": 1, "nextPage": True, "pageSize": 10}
        assert [i["_id"] for i in first["docs"]] == newest_images(cursor)[:10]  # offset is not this reading's
        assert get(http, cursor, "/images?limit=10&page=3", headers=h).status_code == 400
        never = {"X-Pagination-Session-Id": "never"}
        assert get(http, cursor, "/images?limit=10&page=2", headers=never).status_code == 400
        assert cursor.stats()["pagination_errors"] == 2


def test_images_from_a_server_that_ignores_paging(http):
    with SandboxServer(SandboxConfig(images_paging="ignores_paging", **SMALL)) as ignoring:
        answers = [
            get(http, ignoring, f"/images?{query}").json()
            for query in ("", "limit=100&offset=0&page=1", "limit=100&offset=25&page=2", "limit=5&offset=5")
        ]
        assert all(a == answers[0] for a in answers)
        assert [i["_id"] for i in answers[0]["docs"]] == newest_images(ignoring)[:25] and "pagination" not in answers[0]


def test_an_unknown_reading_is_refused():
    with pytest.raises(ValueError, match="images_paging must be one of offset, cursor, ignores_paging"):
        SandboxServer(SandboxConfig(images_paging="pages"))


def test_cursor_sessions_interleaved(srv, http):
    a, b = {"X-Pagination-Session-Id": "A"}, {"X-Pagination-Session-Id": "B"}
    pages_a, pages_b = [], []
    for page in range(1, 6):
        pages_a.append(get(http, srv, f"/workflow?limit=100&page={page}", headers=a).json())
        pages_b.append(get(http, srv, f"/workflow?limit=100&page={page}", headers=b).json())
    assert pages_a == pages_b and srv.stats()["pagination_errors"] == 0


def test_cursor_shared_without_header(srv, http):
    other = requests.Session()
    other.headers.update(AUTH)
    assert get(http, srv, "/workflow?limit=100&page=1").status_code == 200
    assert get(http, srv, "/workflow?limit=100&page=2").status_code == 200
    assert get(other, srv, "/workflow?limit=100&page=1").status_code == 200  # resets the key's shared cursor
    assert get(http, srv, "/workflow?limit=100&page=3").status_code == 400  # collides
    assert srv.stats()["pagination_errors"] == 1
    other.close()


def test_parallel_readers(srv):
    """32 workers, each with its own pagination session, over one pooled client: every listing complete, no collision.

    How fast the sandbox answers is the benchmark's to report (scripts/benchmark.py), never a timed assertion here."""
    s = requests.Session()
    s.headers.update(AUTH)
    s.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=32))

    def read(n):
        return len(walk(s, srv, "/workflow", f"par-{n}"))

    with ThreadPoolExecutor(32) as pool:
        assert list(pool.map(read, range(64))) == [500] * 64
    assert srv.stats()["pagination_errors"] == 0
    s.close()


# ---------------------------------------------------------------------------------------------------------------
# time filters
# ---------------------------------------------------------------------------------------------------------------
def test_workflow_date_filters(srv, http):
    all_created = [st.doc["created"] for st in srv.data.builds]
    day = all_created[250][:10]
    expected = sorted((c for c in all_created if c.startswith(day)), reverse=True)
    got = walk(http, srv, f"/workflow?startDate={day}&endDate={day}", "day")
    assert [b["created"] for b in got] == expected and expected
    exact = all_created[250]
    ms = parse_iso_ms(exact)
    got = walk(http, srv, f"/workflow?startDate={exact}&endDate={exact}", "exact")
    assert [b["created"] for b in got] == [exact]
    later = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((ms + 1) // 1000)) + f".{(ms + 1) % 1000:03d}Z"
    got = walk(http, srv, f"/workflow?startDate={later}", "later")
    assert exact not in [b["created"] for b in got] and len(got) == 500 - 251
    got = walk(http, srv, "/workflow?startDate=2026-10-31T23:00:00%2B01:00", "offset")  # = 22:00Z
    assert all(b["created"] >= "2026-10-31T22:00:00.000Z" for b in got) and got
    assert get(http, srv, "/workflow?startDate=yesterday").status_code == 400
    assert get(http, srv, "/workflow?endDate=2026-13-01").status_code == 400


@pytest.mark.parametrize(
    "reading, first, last",
    [
        # startDate=2026-10-20T10:00:00.000Z, endDate=2026-10-21T10:00:00.000Z read as:
        ("exact", "2026-10-20T10:00:00.000Z", "2026-10-21T10:00:00.000Z"),
        ("date_only", "2026-10-20T00:00:00.000Z", "2026-10-21T23:59:59.999Z"),
        ("date_first_instant", "2026-10-20T00:00:00.000Z", "2026-10-21T00:00:00.000Z"),
    ],
)
def test_workflow_date_readings(http, reading, first, last):
    with SandboxServer(SandboxConfig(builds=2000, workflow_dates=reading)) as srv:
        got = walk(http, srv, "/workflow?startDate=2026-10-20T10:00:00.000Z&endDate=2026-10-21T10:00:00.000Z", reading)
        expected = sorted(
            (st.doc["created"] for st in srv.data.builds if first <= st.doc["created"] <= last), reverse=True
        )
        assert [b["created"] for b in got] == expected and len(expected) > 10
        # A bare date covers its whole day except under date_first_instant, where both bounds are its first instant.
        day = walk(http, srv, "/workflow?startDate=2026-10-20&endDate=2026-10-20", reading + "-day")
        assert all(b["created"].startswith("2026-10-20") for b in day)
        assert (len(day) <= 1) == (reading == "date_first_instant")


def test_workflow_dates_must_be_a_known_reading():
    with pytest.raises(ValueError, match="workflow_dates must be one of exact, date_only, date_first_instant"):
        SandboxServer(SandboxConfig(workflow_dates="hours"))


def test_audit_from_to(srv, http):
    entries = srv.data.audit.records
    target = entries[600]
    ms = parse_iso_ms(target["createdAt"])
    r = get(http, srv, f"/audit?from={ms}&to={ms}").json()["data"]
    assert [e["id"] for e in r] == [target["id"]] and isinstance(r[0]["id"], int)
    page = get(http, srv, f"/audit?pageSize=500&page=1&to={ms}").json()["data"]
    assert len(page) == 100 and page[0]["id"] == target["id"]
    assert [e["createdAt"] for e in page] == sorted((e["createdAt"] for e in page), reverse=True)
    total, p = 0, 1
    while True:
        data = get(http, srv, f"/audit?pageSize=100&page={p}").json()["data"]
        total += len(data)
        if len(data) < 100:
            break
        p += 1
    assert total == 1200
    # The default reading (ms): an ISO bound is ignored, not an error (Airbyte's read with ISO bounds got records).
    ignored = get(http, srv, f"/audit?pageSize=100&to={target['createdAt']}")
    assert ignored.status_code == 200 and ignored.json()["data"][0]["id"] == entries[-1]["id"]


def test_audit_time_format_iso_and_cap():
    with SandboxServer(
        SandboxConfig(
            audit=300, audit_time_format="iso", audit_cap=120, **{k: v for k, v in SMALL.items() if k != "audit"}
        )
    ) as s:
        h = {"Authorization": SANDBOX_API_KEY}
        entries = s.data.audit.records
        target = entries[100]
        one = requests.get(
            f"{s.base_url}/audit",
            params={"from": target["createdAt"], "to": target["createdAt"]},
            headers=h,
            timeout=10,
        ).json()["data"]
        assert [e["id"] for e in one] == [target["id"]]
        ms = parse_iso_ms(target["createdAt"])
        ignored = requests.get(f"{s.base_url}/audit?pageSize=100&from={ms}&to={ms}", headers=h, timeout=10)
        assert ignored.status_code == 200 and len(ignored.json()["data"]) == 100  # the ms bounds were ignored
        # The cap: one query lists at most 120 entries, the rest silently left out.
        listed = [
            requests.get(f"{s.base_url}/audit?pageSize=100&page={p}", headers=h, timeout=10).json()["data"]
            for p in (1, 2, 3)
        ]
        assert [len(page) for page in listed] == [100, 20, 0]
        assert requests.get(f"{s.base_url}/audit?pageSize=1&page=120", headers=h, timeout=10).json()["data"]
        assert not requests.get(f"{s.base_url}/audit?pageSize=1&page=121", headers=h, timeout=10).json()["data"]


@pytest.mark.parametrize("first_page", ["1", "0"])
def test_audit_pages_numbered_from_the_configured_first_page(first_page):
    with SandboxServer(SandboxConfig(**{**SMALL, "audit": 25}, audit_first_page=first_page)) as s:
        newest_first = [e["id"] for e in reversed(s.data.audit.records)]

        def page(**params):
            return requests.get(f"{s.base_url}/audit", params={"pageSize": 10, **params}, headers=AUTH, timeout=10)

        first = int(first_page)
        assert [e["id"] for e in page().json()["data"]] == newest_first[:10], "without `page`: the first page"
        listed = [e["id"] for n in range(first, first + 3) for e in page(page=n).json()["data"]]
        assert listed == newest_first
        assert page(page=first + 3).json() == {"data": []}, "past the end: empty"
        below = page(page=first - 1)
        assert below.status_code == 400 and "page" in below.json()["message"]


def test_audit_add_entries_are_newer_than_every_entry_and_listed_first(small):
    before = [e["id"] for e in small.data.audit.records]
    small.data.advance(minutes=60)
    added = audit_module.add_entries(small.data, 3)
    assert [e["id"] for e in small.data.audit.records] == before + [e["id"] for e in added]
    assert len(set(before + [e["id"] for e in added])) == len(before) + 3
    assert all(parse_iso_ms(e["createdAt"]) <= small.data.clock_ms for e in added)
    listed = requests.get(f"{small.base_url}/audit?pageSize=3", headers=AUTH, timeout=10).json()["data"]
    assert [e["id"] for e in listed] == [e["id"] for e in reversed(added)]
    assert small.data.expected_counts()["audit"] == len(before) + 3


def test_analytics(srv, http):
    r = get(http, srv, "/analytics/reports/creditConsumption?dateRange=2026-10-01&dateRange=2026-10-10&granularity=day")
    body = r.json()
    assert r.status_code == 200 and body["timeDimensions"] == {
        "dateRange": ["2026-10-01", "2026-10-10"],
        "granularity": "day",
    }
    assert len(body["data"]) == 10 * 3 and {"time", "key", "value"} <= set(body["data"][0])
    invalid = "Passed structure is invalid - [Time dimensions are not supported for target report: {}]"
    bad = get(
        http, srv, "/analytics/reports/creditConsumption?dateRange=2026-10-01&dateRange=2026-10-03&granularity=hour"
    )
    assert bad.status_code == 400 and bad.json()["name"] == "BadRequestError"
    assert bad.json()["message"] == invalid.format("creditConsumption")
    assert (
        get(
            http, srv, "/analytics/reports/activeCommitters?dateRange=2026-08-01&dateRange=2026-10-31&granularity=day"
        ).status_code
        == 400
    )
    assert get(http, srv, "/analytics/reports/nope?dateRange=2026-10-01&dateRange=2026-10-02").status_code == 400
    assert get(http, srv, "/analytics/reports/creditConsumption?dateRange=2026-10-01").status_code == 400
    agg = get(http, srv, "/analytics/reports/creditConsumption?dateRange=2026-10-01&dateRange=2026-10-10").json()
    assert len(agg["data"]) == 3 and agg["timeDimensions"]["granularity"] is None


@pytest.mark.parametrize(
    "report, granularity, first, last, allowed",
    [
        # Documented bounds, read the strictest way: last - first >= minimum, first..last (both counted) <= maximum.
        ("creditConsumption", "day", "2026-10-01", "2026-10-02", False),  # 2 days: minimum not reached
        ("creditConsumption", "day", "2026-10-01", "2026-10-03", True),
        ("creditConsumption", "day", "2026-09-01", "2026-10-15", True),  # 45 days
        ("creditConsumption", "day", "2026-09-01", "2026-10-16", False),  # 46 days
        ("activeCommitters", "month", "2026-08-01", "2026-10-31", False),  # not quite 3 months
        ("activeCommitters", "month", "2026-08-01", "2026-11-01", True),
        ("activeCommitters", "month", "2025-11-01", "2026-10-31", True),  # a year
        ("activeCommitters", "month", "2025-11-01", "2026-11-01", False),
        ("buildAvgDuration", "day", "2026-08-01", "2026-10-31", True),  # day: up to 3 months
        ("buildAvgDuration", "day", "2026-07-31", "2026-10-31", False),
    ],
)
def test_analytics_range_bounds(srv, http, report, granularity, first, last, allowed):
    r = get(http, srv, f"/analytics/reports/{report}?dateRange={first}&dateRange={last}&granularity={granularity}")
    assert (r.status_code != 400) == allowed, r.text


def test_analytics_metadata_bounds_are_strings(srv, http):
    reports = get(http, srv, "/analytics/metadata").json()["reports"]
    committers = reports["activeCommitters"]["supportedTimeDimensions"]
    assert committers == [
        {"granularity": "month", "minDateRangeInterval": "3 months", "maxDateRangeInterval": "1 year"}
    ]
    day = next(d for d in reports["creditConsumption"]["supportedTimeDimensions"] if d["granularity"] == "day")
    assert (day["minDateRangeInterval"], day["maxDateRangeInterval"]) == ("2 days", "45 days")


def test_analytics_build_report_rows_have_the_real_shape(srv, http):
    rows = get(
        http, srv, "/analytics/reports/buildAvgDuration?dateRange=2026-10-01&dateRange=2026-10-03&granularity=day"
    ).json()["data"]
    assert len(rows) == 3 and all("key" not in row and "value" not in row for row in rows)
    assert all(isinstance(row["totalBuilds"], str) and isinstance(row["successfulBuilds"], str) for row in rows)
    assert all(0 <= row["successRate"] <= 100 for row in rows)
    total = get(http, srv, "/analytics/reports/buildAvgDuration?dateRange=2026-10-01&dateRange=2026-10-03").json()
    assert len(total["data"]) == 1 and "time" not in total["data"][0]


@pytest.mark.parametrize("reading", ["error_500", "empty_200"])
def test_analytics_range_without_data(reading):
    with SandboxServer(SandboxConfig(analytics_empty_range=reading, **SMALL)) as s:
        before = s.data.analytics_first_day.replace(year=s.data.analytics_first_day.year - 1)
        r = requests.get(
            f"{s.base_url}/analytics/reports/creditConsumption?dateRange={before}"
            f"&dateRange={before.replace(day=28) if before.day < 26 else before}&granularity=month",
            headers={"Authorization": SANDBOX_API_KEY},
            timeout=10,
        )
        if reading == "error_500":
            assert r.status_code == 500 and r.json()["message"] == "Could not get analytics report"
        else:
            assert r.status_code == 200 and r.json()["data"] == []


# ---------------------------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------------------------
def test_fault_status_every(srv, http):
    srv.set_faults(
        [
            {
                "match": {"method": "GET", "path": "^/api/pipelines$"},
                "kind": "status",
                "status": 502,
                "every": 3,
                "times": 2,
            }
        ]
    )
    codes = [get(http, srv, "/pipelines").status_code for _ in range(9)]
    assert codes == [200, 200, 502, 200, 200, 502, 200, 200, 200]
    assert get(http, srv, "/projects").status_code == 200
    assert srv.stats()["faults_fired"] == {0: 2}
    assert json.loads(requests.get(srv.url + "/_sandbox/stats", timeout=5).text)["faults_fired"] == {"0": 2}


@pytest.mark.parametrize("retry_after", ["2", "http-date", None])
def test_fault_rate_limit(srv, http, retry_after):
    srv.set_faults([{"kind": "rate_limit", "retry_after": retry_after, "times": 1}])
    r = get(http, srv, "/user")
    assert r.status_code == 429 and r.json()["status"] == 429
    if retry_after == "2":
        assert r.headers["Retry-After"] == "2"
    elif retry_after == "http-date":
        # Two seconds after the answer's own Date (both whole seconds): no comparison with this machine's clock.
        delta = parsedate_to_datetime(r.headers["Retry-After"]) - parsedate_to_datetime(r.headers["Date"])
        assert 1 <= delta.total_seconds() <= 3
    else:
        assert "Retry-After" not in r.headers
    assert get(http, srv, "/user").status_code == 200


def test_fault_drop(srv, http):
    srv.set_faults([{"match": {"path": "^/api/user$"}, "kind": "drop", "times": 1}])
    with pytest.raises(requests.ConnectionError):
        get(http, srv, "/user")
    assert get(http, srv, "/user").status_code == 200


def test_fault_slow(srv, http):
    """A `slow` fault holds the answer back `times` times; the client's read timeout shows it, with no clock."""
    srv.set_faults([{"kind": "slow", "seconds": 0.6, "times": 2}])
    for _ in range(2):
        with pytest.raises(requests.Timeout):
            get(http, srv, "/user", timeout=0.3)
    assert get(http, srv, "/user", timeout=10).status_code == 200
    assert srv.stats()["faults_fired"] == {0: 2}  # the third answer was not held back


def test_fault_malformed_html_forbidden(srv, http):
    srv.set_faults([{"kind": "malformed", "times": 1}, {"kind": "html", "times": 1}, {"kind": "forbidden", "times": 1}])
    r = get(http, srv, "/pipelines")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        r.json()
    r = get(http, srv, "/pipelines")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html") and b"<html" in r.content
    r = get(http, srv, "/pipelines")
    assert r.status_code == 403 and r.json()["name"] == "FORBIDDEN"
    assert get(http, srv, "/pipelines").status_code == 200


def test_fault_latency(srv, http):
    """Latency delays every answer under /api by its milliseconds: a shorter read timeout cannot be met."""
    srv.set_latency(400)
    with pytest.raises(requests.Timeout):
        get(http, srv, "/user", timeout=0.2)
    srv.set_latency(0)
    assert get(http, srv, "/user", timeout=10).status_code == 200


def test_fault_deleted_builds(srv, http):
    before = srv.data.expected_counts()
    srv.set_faults([{"kind": "deleted_builds", "every": 5}])
    oldest_first = [st.doc["id"] for st in srv.data.builds]
    assert get(http, srv, f"/builds/{oldest_first[4]}").status_code == 404
    assert get(http, srv, f"/workflow/{oldest_first[9]}/context-revision").status_code == 404
    assert get(http, srv, f"/builds/{oldest_first[3]}").status_code == 200
    assert srv.stats()["faults_fired"] == {0: 2}
    exp = requests.get(srv.url + "/_sandbox/expected", timeout=5).json()
    assert exp["builds_deleted"] == 100 and exp["build_details"] == 400 and exp["builds"] == 500
    assert exp["build_steps"] < before["build_steps"]
    assert len(walk(http, srv, "/workflow", "del")) == 500  # still listed


def test_fault_analytics_not_ready(srv, http):
    srv.set_faults([{"kind": "analytics_not_ready"}])
    url = "/analytics/reports/buildAvgDuration?dateRange=2026-10-01&dateRange=2026-10-05&granularity=day"
    r = get(http, srv, url)
    assert r.status_code == 432 and r.headers["Retry-After"] == "1" and r.json()["name"] == "ReportExecutionError"
    assert get(http, srv, url).status_code == 200
    assert get(http, srv, url.replace("10-05", "10-06")).status_code == 432
    assert get(http, srv, "/analytics/metadata").status_code == 200


def test_fault_analytics_not_ready_without_retry_after(srv, http):
    # No source documents a header on the 432: `retry_after: null` answers without one.
    srv.set_faults([{"kind": "analytics_not_ready", "retry_after": None}])
    url = "/analytics/reports/buildAvgDuration?dateRange=2026-10-01&dateRange=2026-10-05&granularity=day"
    r = get(http, srv, url)
    assert r.status_code == 432 and "Retry-After" not in r.headers
    srv.set_faults([{"kind": "analytics_not_ready", "retry_after": "7"}])
    assert get(http, srv, url).headers["Retry-After"] == "7"


def test_fault_control_endpoint_and_validation(srv):
    r = requests.post(srv.url + "/_sandbox/faults", json=[{"kind": "nope"}], timeout=5)
    assert r.status_code == 400
    r = requests.post(srv.url + "/_sandbox/faults", json=[{"kind": "status", "status": 503}], timeout=5)
    assert r.status_code == 200
    assert requests.get(srv.base_url + "/user", headers=AUTH, timeout=5).status_code == 503
    assert requests.get(srv.url + "/_sandbox/stats", timeout=5).status_code == 200  # never faulted
    with pytest.raises(ValueError):
        srv.set_faults([{"kind": "status", "every": 0}])


# ---------------------------------------------------------------------------------------------------------------
# pipeline runs
# ---------------------------------------------------------------------------------------------------------------
def run(http, srv, name, **body):
    return http.post(f"{srv.base_url}/pipelines/run/{name.replace('/', '%2F')}", json=body, timeout=10)


def test_pipeline_run_lifecycle(small, http):
    r = run(
        http,
        small,
        "demo/hello-world",
        branch="main",
        annotations={"source_codefresh_run_id": "run-1"},
        variables=[{"key": "A", "value": "1"}],
    )
    assert r.status_code == 200
    build_id = r.json()
    assert isinstance(build_id, str) and len(build_id) == 24
    newest = walk(http, small, "/workflow", "runs")[0]
    assert newest["id"] == build_id and newest["status"] == "pending"
    assert newest["annotations"][0]["key"] == "source_codefresh_run_id"
    assert newest["annotations"][0]["entityType"] == "build"
    assert get(http, small, f"/workflow/{build_id}/context-revision").json() == []
    found = get(http, small, "/annotations?entityType=build&key=source_codefresh_run_id&value=run-1").json()
    assert [a["entityId"] for a in found] == [build_id]
    assert set(found[0]) >= {"_id", "accountId", "entityId", "entityType", "key", "value"}
    assert get(http, small, "/annotations?entityType=build&key=source_codefresh_run_id&value=other").json() == []
    statuses = [get(http, small, f"/builds/{build_id}").json()["status"] for _ in range(3)]
    assert statuses == ["running", "success", "success"]
    detail = get(http, small, f"/builds/{build_id}").json()
    assert detail["finished"] is not None and detail["started"] is not None
    assert get(http, small, f"/workflow/{build_id}/context-revision").json()[-1]["context"]["stepsMetadata"]

    for name, final in (("demo/failing-build", "error"), ("demo/terminated-build", "terminated")):
        bid = run(http, small, name).json()
        assert [get(http, small, f"/builds/{bid}").json()["status"] for _ in range(2)] == ["running", final]
    by_id = run(http, small, small.data.pipeline_infos[0].id)
    assert by_id.status_code == 200
    missing = run(http, small, "demo/nope")
    assert missing.status_code == 404
    assert small.stats()["posts"] == {
        "demo/hello-world": 2,
        "demo/failing-build": 1,
        "demo/terminated-build": 1,
        "demo/nope": 1,
    }
    assert small.expected()["pipeline_runs"] == 4


def test_pipeline_run_after_processing(small, http):
    small.set_faults(
        [
            {
                "match": {"method": "POST", "path": "^/api/pipelines/run/"},
                "kind": "status",
                "status": 504,
                "after_processing": True,
                "times": 1,
            },
            {"match": {"method": "POST"}, "kind": "drop", "after_processing": True, "times": 1},
        ]
    )
    r = run(http, small, "demo/hello-world", annotations={"rid": "x1"})
    assert r.status_code == 504
    with pytest.raises(requests.ConnectionError):
        run(http, small, "demo/hello-world", annotations={"rid": "x2"})
    assert small.stats()["posts"] == {"demo/hello-world": 2}  # both started a build
    for rid in ("x1", "x2"):
        assert len(get(http, small, f"/annotations?entityType=build&key=rid&value={rid}").json()) == 1
    small.set_faults([{"match": {"method": "POST"}, "kind": "status", "status": 502, "times": 1}])
    assert run(http, small, "demo/hello-world", annotations={"rid": "x3"}).status_code == 502
    assert get(http, small, "/annotations?key=rid&value=x3").json() == []  # not processed
    assert small.stats()["posts"] == {"demo/hello-world": 2}


@pytest.mark.parametrize("reading", ["empty_200", "not_found_404"])
def test_annotations_matching_nothing_under_each_reading(reading, http):
    with SandboxServer(SandboxConfig(**SMALL, annotations_none=reading)) as s:
        assert run(http, s, "demo/hello-world", annotations={"rid": "y1"}).status_code == 200
        assert len(get(http, s, "/annotations?entityType=build&key=rid&value=y1").json()) == 1  # a match: 200
        r = get(http, s, "/annotations?entityType=build&key=rid&value=nothing")
        if reading == "empty_200":
            assert r.status_code == 200 and r.json() == []
        else:
            assert r.status_code == 404 and r.json()["name"] == "NOT_FOUND_ERROR"


# ---------------------------------------------------------------------------------------------------------------
# advance, determinism, stats, expected
# ---------------------------------------------------------------------------------------------------------------
def test_advance(small, http):
    before = small.expected()
    assert before["builds"] == 60 and before["builds_unfinished"] == 1
    out = small.advance(new_builds=3)
    assert len(out["added"]) == 3 and len(out["finished"]) == 1
    after = small.expected()
    assert after["builds"] == 63 and after["builds_unfinished"] == 0
    newest = walk(http, small, "/workflow", "adv")
    assert [b["id"] for b in newest[:3]] == out["added"][::-1]
    assert all(b["finished"] for b in newest)
    r = requests.post(small.url + "/_sandbox/advance", json={"new_builds": 2, "new_unfinished": 1}, timeout=5)
    assert r.status_code == 200
    exp = requests.get(small.url + "/_sandbox/expected", timeout=5).json()
    assert exp["builds"] == 65 and exp["builds_unfinished"] == 1


def test_determinism():
    paths = [
        "/user",
        "/team",
        "/auth/keys",
        "/pipelines?limit=100",
        "/projects?limit=100",
        "/step-types",
        "/runtime-environments",
        "/hermes/triggers",
        "/hermes/events",
        "/contexts",
        "/agents",
        "/helm/repos",
        "/execution-contexts",
        "/environments-v2",
        "/views/",
        "/workflow?limit=100",
        "/images?limit=100",
        "/audit?pageSize=100",
        "/analytics/metadata",
        "/annotations",
        "/registries",
        "/clusters",
        "/pipelines/names?limit=100",
        "/analytics/reports/pipelineCreditConsumption?dateRange=2026-09-01&dateRange=2026-09-30&granularity=day",
    ]

    def snapshot(seed):
        with SandboxServer(SandboxConfig(seed=seed, **SMALL)) as s, requests.Session() as h:
            h.headers.update(AUTH)
            out = {p: get(h, s, p).content for p in paths}
            for bid in s.data.build_ids()[:5] + s.data.build_ids()[-5:]:
                out[bid] = get(h, s, f"/builds/{bid}").content + get(h, s, f"/workflow/{bid}/context-revision").content
            out["users"] = get(h, s, f"/accounts/{s.data.account_id}/users").content
            out["expected"] = json.dumps(s.expected())
            return out

    a, b, c = snapshot(7), snapshot(7), snapshot(8)
    assert a == b
    assert a["/workflow?limit=100"] != c["/workflow?limit=100"]


def test_stats_and_expected(srv, http):
    get(http, srv, "/user")
    get(http, srv, "/pipelines")
    get(http, srv, f"/builds/{srv.data.build_ids()[0]}")
    get(http, srv, "/nope")
    stats = requests.get(srv.url + "/_sandbox/stats", timeout=5).json()
    assert stats["requests"] == 4 and stats["pagination_errors"] == 0
    assert stats["by_route"] == {
        "GET /api/user": 1,
        "GET /api/pipelines": 1,
        "GET /api/builds/{id}": 1,
        "GET (unmatched)": 1,
    }
    assert stats["by_status"] == {"200": 3, "404": 1} and stats["posts"] == {} and stats["faults_fired"] == {}
    assert requests.post(srv.url + "/_sandbox/reset-stats", timeout=5).json() == {"ok": True}
    assert srv.stats()["requests"] == 0
    exp = requests.get(srv.url + "/_sandbox/expected", timeout=5).json()
    assert exp == srv.data.expected_counts()
    assert exp["builds"] == 500 and exp["builds_unfinished"] == 10 and exp["builds_deleted"] == 0
    assert exp["pipelines"] == 250 and exp["projects"] == 130 and exp["images"] == 450 and exp["audit"] == 1200
    assert exp["analytics_reports"] == 6
    pipes = srv.data.pipelines.records
    assert exp["pipeline_git_triggers"] == sum(len(p["spec"]["triggers"]) for p in pipes) > 0
    assert exp["pipeline_cron_triggers"] == sum(len(p["spec"]["cronTriggers"]) for p in pipes) > 0
    steps = 0
    for bid in srv.data.build_ids()[:40]:
        revs = get(http, srv, f"/workflow/{bid}/context-revision").json()
        steps += len([k for k in (revs[-1]["context"]["stepsMetadata"] if revs else {}) if k != "Initializing"])
    assert steps == sum(srv.data.find_build(b).steps_count for b in srv.data.build_ids()[:40])


def test_keep_alive(srv):
    """One kept-alive connection serves a whole listing, with an exact Content-Length on every page."""
    conn = httplib.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    headers = {**AUTH, "X-Pagination-Session-Id": "keep-alive"}
    sock = None
    for page in range(1, 6):
        conn.request("GET", f"/api/workflow?limit=100&page={page}", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and int(resp.headers["Content-Length"]) == len(body)
        assert (resp.headers.get("Connection") or "").lower() != "close"
        sock = sock or conn.sock
        assert conn.sock is sock  # one kept-alive connection served every page
    conn.close()


def test_cli(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "codefresh_sandbox",
            "--port",
            "0",
            "--builds",
            "40",
            "--images-paging",
            "cursor",
            "--audit-first-page",
            "0",
            "--annotations-none",
            "not_found_404",
            "--fault",
            json.dumps({"match": {"path": "^/api/team$"}, "kind": "status", "status": 500}),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("SANDBOX_BASE_URL=http://127.0.0.1:") and line.endswith("/api")
        base = line.split("=", 1)[1]
        assert requests.get(base + "/user", headers=AUTH, timeout=5).status_code == 200
        assert requests.get(base + "/team", headers=AUTH, timeout=5).status_code == 500
        assert requests.get(base + "/images", headers=AUTH, timeout=5).json()["pagination"]["nextPage"] is True
        assert requests.get(base + "/audit?page=0", headers=AUTH, timeout=5).json()["data"]  # pages from 0
        assert requests.get(base + "/annotations?key=nothing", headers=AUTH, timeout=5).status_code == 404
        assert requests.get(base.replace("/api", "/_sandbox/expected"), timeout=5).json()["builds"] == 40
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert out == "" and SANDBOX_API_KEY not in err


def test_stop_closes_socket():
    s = SandboxServer(SandboxConfig(**SMALL)).start()
    base = s.base_url
    with requests.Session() as h:
        h.headers.update(AUTH)
        assert h.get(base + "/user", timeout=5).status_code == 200
        s.stop()
        with pytest.raises(requests.ConnectionError):
            requests.get(base + "/user", headers=AUTH, timeout=2)
