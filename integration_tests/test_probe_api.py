"""scripts/probe_api.py against the sandbox: under each reading a sandbox switch offers, the probe names that reading
(the sandbox is the executable spec of the readings, so this checks the probe's requests and its classification end to
end); a key without a scope gets "could not tell" for the questions that need it, and the other answers still come."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Dict

import pytest

from codefresh_sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_LIMITED_API_KEY,
    SMALL_ACCOUNT,
    SandboxConfig,
    SandboxServer,
)
from codefresh_sandbox.data import READINGS

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "probe_api.py"
spec = importlib.util.spec_from_file_location("probe_api_script", SCRIPT)
probe_api = importlib.util.module_from_spec(spec)
sys.modules["probe_api_script"] = probe_api
spec.loader.exec_module(probe_api)

SMALL = SMALL_ACCOUNT


def readings(server: SandboxServer, key: str = SANDBOX_API_KEY) -> Dict[str, probe_api.Finding]:
    client = probe_api.Client(server.base_url, key, pause_seconds=0)
    return {finding.question: finding for finding in probe_api.probe(client)}


# The question of the probe each sandbox switch answers; the switch's values (the sandbox's READINGS) are the readings
# the probe must name.
SWITCHES = {
    "images_paging": probe_api.Q_IMAGES,
    "workflow_dates": probe_api.Q_WORKFLOW,
    "audit_time_format": probe_api.Q_AUDIT_FORMAT,
    "audit_first_page": probe_api.Q_AUDIT_PAGE,
    "analytics_empty_range": probe_api.Q_ANALYTICS_EMPTY,
    "analytics_build_rows": probe_api.Q_BUILD_ROWS,
    "annotations_none": probe_api.Q_ANNOTATIONS,
    "environments_id": probe_api.Q_ENVIRONMENTS_ID,
    "gitops_schema": probe_api.Q_GITOPS_QUERIES,
    "gitops_page_cap": probe_api.Q_GITOPS_PAGE_CAP,
    "gitops_invalid_query_status": probe_api.Q_GITOPS_STATUS,
    "gitops_list_pagination": probe_api.Q_GITOPS_LIST_PAGINATION,
    "gitops_releases_filter": probe_api.Q_GITOPS_RELEASES,
    "gitops_introspection": probe_api.Q_GITOPS_INTROSPECTION,
}
CASES = [(switch, value) for switch in SWITCHES for value in READINGS[switch]]


def test_every_reading_switch_of_the_sandbox_is_a_question_of_the_probe():
    assert set(SWITCHES) == set(READINGS)


@pytest.mark.parametrize("switch, value", CASES, ids=[f"{s}={v}" for s, v in CASES])
def test_the_probe_names_the_reading_of_each_sandbox_switch(switch, value):
    with SandboxServer(SandboxConfig(**{**SMALL, switch: value})) as server:
        found = readings(server)
        assert server.stats()["pagination_errors"] == 0
        assert server.stats()["graphql"]["mutation"] == 0
        assert set(server.stats()["by_route"]) <= {"POST /2.0/api/graphql"} | {
            f"GET /api{path}"
            for path in (
                "/images",
                "/workflow",
                "/audit",
                "/analytics/reports/{name}",
                "/hermes/triggers",
                "/hermes/events",
                "/environments-v2",
                "/annotations",
            )
        }
    question = SWITCHES[switch]
    assert found[question].reading == value, found[question].seen


@pytest.mark.parametrize("time_format", ["ms", "iso"])
@pytest.mark.parametrize("first_page", ["1", "0"])
def test_the_probe_tells_both_audit_answers_under_each_page_numbering(first_page, time_format):
    with SandboxServer(SandboxConfig(**SMALL, audit_first_page=first_page, audit_time_format=time_format)) as server:
        found = readings(server)
    assert found[probe_api.Q_AUDIT_PAGE].reading == first_page, found[probe_api.Q_AUDIT_PAGE].seen
    assert found[probe_api.Q_AUDIT_FORMAT].reading == time_format, found[probe_api.Q_AUDIT_FORMAT].seen
    assert found[probe_api.Q_AUDIT_PAGE].fits and found[probe_api.Q_AUDIT_FORMAT].fits


def test_the_probe_reads_the_sandbox_defaults():
    defaults = SandboxConfig()
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        found = readings(server)
    expected = {question: getattr(defaults, switch) for switch, question in SWITCHES.items()}
    assert {q: found[q].reading for q in expected} == expected
    assert all(found[q].fits for q in expected)  # the GitOps questions too: the gitops_* streams fit each reading
    assert found[probe_api.Q_COMMITTERS].reading in ("accepts", "rejects")
    assert found[probe_api.Q_HERMES].reading == "observed" and found[probe_api.Q_RETRY_AFTER].reading == "unknown"


def test_a_key_without_the_audit_scope_cannot_tell_the_audit_answers_and_tells_the_rest():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        found = readings(server, SANDBOX_LIMITED_API_KEY)
    for question in (probe_api.Q_AUDIT_FORMAT, probe_api.Q_AUDIT_PAGE):
        assert found[question].fits is None and "HTTP 403" in found[question].seen
        assert "'audit' scope" in found[question].seen
    assert found[probe_api.Q_IMAGES].reading == "offset" and found[probe_api.Q_WORKFLOW].reading == "exact"


@pytest.mark.parametrize("state, seen", [("empty", "the account has 0 GitOps runtime(s)"), ("granted", "has 3")])
def test_the_probe_counts_the_accounts_gitops_runtimes(state, seen):
    config = SandboxConfig(**SMALL, **({"gitops_account": state} if state == "empty" else {}))
    with SandboxServer(config) as server:
        found = readings(server)
    assert seen in found[probe_api.Q_GITOPS_RELEASES].seen
    assert found[probe_api.Q_GITOPS_QUERIES].reading == "current"  # the schema is there without runtimes


def test_a_key_without_gitops_access_cannot_tell_the_gitops_answers_and_tells_the_rest():
    with SandboxServer(SandboxConfig(**SMALL, gitops_access="forbidden")) as server:
        found = readings(server)
        assert server.stats()["graphql"] == {  # no page of 50 after a Forbidden page of 51
            "query": 4,
            "mutation": 0,
            "subscription": 0,
            "unparsable": 0,
            "by_field": {"runtimes": 1, "gitopsReleases": 1, "promotions": 1},
        }
    # The first question's document is refused by validation before any field is resolved: Forbidden cannot show.
    assert found[probe_api.Q_GITOPS_QUERIES].reading == "current"
    for question in (probe_api.Q_GITOPS_RELEASES, probe_api.Q_GITOPS_PAGE_CAP):
        assert found[question].reading == "unknown" and "Forbidden" in found[question].seen
    assert found[probe_api.Q_IMAGES].reading == "offset"
