"""Incremental GitOps streams against the sandbox's GraphQL API: the first sync emits every release, promotion,
workflow and workflow node once; after the sandbox moves on (unfinished records finish, one of each kind keeps
running, new ones arrive, some of them still running), the second sync emits exactly the new records and those that
were unfinished, and the third exactly those still unfinished, across page boundaries, under each reading of the API
that changes how they are read (and with the date filters ignored). A saved state that cannot be a position fails the
stream with one sentence. No mutation is ever sent."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import pytest
from airbyte_cdk.models import AirbyteStateMessage, SyncMode
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput
from airbyte_cdk.test.state_builder import StateBuilder

from codefresh_sandbox import SandboxConfig, SandboxServer
from integration_tests.syncs import final_state, read_streams, records
from integration_tests.test_gitops import SIZES

STREAMS = ("gitops_releases", "gitops_promotions", "gitops_workflows", "gitops_workflow_nodes")
# SIZES: 80 releases and 60 promotions: two pages of 50; 40 workflows: two pages of 20 where every list pages. The
# second sync reads 60 new records of each kind, past a page boundary again.
NEW = 60
NEW_UNFINISHED = 4


# The date filter each root field is sent with: the window's start.
DATE_FILTERS = {
    "gitopsReleases": "syncStartDateFrom",
    "promotions": "startDate",
    "productReleases": "startDate",
    "workflows": "startDateFrom",
}


def date_filters(bodies: List[Dict[str, Any]]) -> Dict[str, Set[datetime]]:
    """The date filter values each root field was sent with."""
    found: Dict[str, Set[datetime]] = {}
    for body in bodies:
        field = next(f for f in DATE_FILTERS if f" {f}(" in body["query"])
        value = body["variables"]["filters"][DATE_FILTERS[field]]
        found.setdefault(field, set()).add(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return found


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def products(server: SandboxServer) -> Dict[str, Any]:
    return {"gitops_products": sorted({a["product"] for a in server.data.gitops.apps})}


def applications(server: SandboxServer) -> Dict[str, Any]:
    return {"gitops_applications": sorted({a["name"] for a in server.data.gitops.apps})}


def nothing(server: SandboxServer) -> Dict[str, Any]:
    return {}


READINGS: Dict[str, Tuple[Dict[str, str], Callable[[SandboxServer], Dict[str, Any]]]] = {
    "default": ({}, nothing),
    "date_filters_ignored": ({"gitops_date_filters": "ignored"}, nothing),
    "before_promotions": ({"gitops_schema": "before_promotions"}, products),
    "before_promotions_filters_ignored": (
        {"gitops_schema": "before_promotions", "gitops_date_filters": "ignored"},
        products,
    ),
    "releases_per_application": ({"gitops_releases_filter": "required"}, applications),
    "every_list_pages": ({"gitops_list_pagination": "every_list"}, nothing),
}


def sync(
    server: SandboxServer, config: Dict[str, Any], state: Optional[List[AirbyteStateMessage]] = None
) -> EntrypointOutput:
    output = read_streams(server, STREAMS, SyncMode.incremental, state, max_requests_per_minute=100000, **config)
    assert not output.errors, [e.trace.error.message for e in output.errors if e.trace and e.trace.error]
    return output


def emitted(output: EntrypointOutput) -> Dict[str, List[Any]]:
    """The key of every record each stream emitted (a release by its sandbox key, `<app uid>:<historyId>`)."""
    return {
        "gitops_releases": [
            (r["applicationMetadata"]["uid"], r["historyId"]) for r in records(output, "gitops_releases")
        ],
        "gitops_promotions": [r["id"] for r in records(output, "gitops_promotions")],
        "gitops_workflows": [r["uid"] for r in records(output, "gitops_workflows")],
        "gitops_workflow_nodes": [(r["workflow_uid"], r["id"]) for r in records(output, "gitops_workflow_nodes")],
    }


def truth(server: SandboxServer, releases: Set[str], promotions: Set[str], workflows: Set[str]) -> Dict[str, Set[Any]]:
    """What a sync must emit for the sandbox's records of these ids (the nodes of those workflows, as they are now)."""
    g = server.data.gitops
    release_key = {r["_key"]: (r["applicationMetadata"]["uid"], r["historyId"]) for r in g.releases}
    return {
        "gitops_releases": {release_key[k] for k in releases},
        "gitops_promotions": set(promotions),
        "gitops_workflows": set(workflows),
        "gitops_workflow_nodes": {
            (w["metadata"]["uid"], n["id"])
            for w in g.workflows
            if w["metadata"]["uid"] in workflows
            for n in w["status"]["nodes"]
        },
    }


def everything(server: SandboxServer) -> Dict[str, Set[Any]]:
    g = server.data.gitops
    return truth(
        server,
        {r["_key"] for r in g.releases},
        {p["id"] for p in g.promotions},
        {w["metadata"]["uid"] for w in g.workflows},
    )


def unfinished(server: SandboxServer) -> Dict[str, Set[Any]]:
    still = server.data.gitops.unfinished()
    return truth(server, set(still["releases"]), set(still["promotions"]), set(still["workflows"]))


def union(a: Dict[str, Set[Any]], b: Dict[str, Set[Any]]) -> Dict[str, Set[Any]]:
    return {stream: a[stream] | b[stream] for stream in STREAMS}


def check_exact(output: EntrypointOutput, want: Dict[str, Set[Any]], when: str) -> None:
    got = emitted(output)
    for stream in STREAMS:
        assert len(got[stream]) == len(set(got[stream])), f"{when}, {stream}: a record twice"
        assert set(got[stream]) == want[stream], f"{when}, {stream}: records missing or extra"


def state_sizes(output: EntrypointOutput) -> Dict[str, int]:
    return {
        s.stream.stream_descriptor.name: len(json.dumps(s.stream.stream_state.__dict__)) for s in final_state(output)
    }


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_the_second_sync_reads_only_the_new_records_and_those_that_were_unfinished(reading, sent_bodies):
    switches, extra = READINGS[reading]
    with SandboxServer(SandboxConfig(**{**SIZES, **switches})) as server:
        config = extra(server)
        first = sync(server, config)
        check_exact(first, everything(server), "first sync")
        was_unfinished = unfinished(server)
        assert all(was_unfinished[s] for s in STREAMS), "the sandbox has records still changing at the first sync"

        # One of each kind keeps running (a promotion waiting on an approval); the others finish; 60 of each arrive,
        # the newest 4 of each still running.
        still = server.data.gitops.unfinished()
        g = server.data.gitops
        # The second sync starts at the first record still unfinished: each query's date filter says so.
        read_from = {
            "gitopsReleases": min(ms(r["_created_ms"]) for r in g.releases if r["_key"] in still["releases"]),
            "promotions": min(ms(p["_created_ms"]) for p in g.promotions if p["id"] in still["promotions"]),
            "workflows": min(ms(w["_created_ms"]) for w in g.workflows if w["metadata"]["uid"] in still["workflows"]),
        }
        kept = [still["releases"][0], still["promotions"][0], still["workflows"][0]]
        moved = server.advance(
            minutes=60, new_gitops=NEW, new_unfinished=NEW_UNFINISHED, keep_running=kept, finish_running=True
        )["gitops"]
        added_releases = {r["_key"] for r in g.releases if r["_key"] in moved["added"]}
        added = truth(
            server,
            added_releases,
            {p["id"] for p in g.promotions if p["id"] in moved["added"]},
            {w["metadata"]["uid"] for w in g.workflows if w["metadata"]["uid"] in moved["added"]},
        )
        assert len(added_releases) == NEW and len(added["gitops_promotions"]) == len(added["gitops_workflows"]) == NEW
        finished = set(moved["finished"])
        assert finished and not finished & set(kept)

        server.reset_stats()
        sent_bodies.clear()
        second = sync(server, config, final_state(first))
        sent = date_filters(sent_bodies)
        if "productReleases" in sent:  # before_promotions: per product after the refused promotions query
            sent["promotions"] |= sent.pop("productReleases")
        assert sent == {field: {start} for field, start in read_from.items()}
        check_exact(second, union(added, unfinished_then(server, was_unfinished)), "second sync")
        # The records that were unfinished come with their end now (the kept ones still running).
        statuses = {r["id"]: r["status"] for r in records(second, "gitops_promotions")}
        assert all(statuses[p] in ("SUCCEEDED", "FAILED", "TERMINATED") for p in finished if p in statuses)
        phases = {r["uid"]: r["status"]["phase"] for r in records(second, "gitops_workflows")}
        assert all(phases[w] != "Running" for w in finished if w in phases)
        assert phases[kept[2]] == "Running"
        assert server.stats()["graphql"]["mutation"] == 0

        # Nothing new: only what is still unfinished (the kept records and the new running ones).
        third = sync(server, config, final_state(second))
        check_exact(third, unfinished(server), "third sync")
        assert all(size < 4096 for size in state_sizes(third).values()), state_sizes(third)


def unfinished_then(server: SandboxServer, was: Dict[str, Set[Any]]) -> Dict[str, Set[Any]]:
    """The records unfinished at the first sync, with the nodes their workflows have now."""
    g = server.data.gitops
    nodes = {
        (w["metadata"]["uid"], n["id"])
        for w in g.workflows
        if w["metadata"]["uid"] in was["gitops_workflows"]
        for n in w["status"]["nodes"]
    }
    return {**was, "gitops_workflow_nodes": nodes}


def test_the_counts_of_a_first_and_a_second_sync(capsys):
    """The figures of docs/api-notes.md 11.10: records, requests by root field and state sizes of two syncs."""
    with SandboxServer(SandboxConfig(**SIZES)) as server:
        first = sync(server, {})
        first_asked = dict(server.stats()["graphql"]["by_field"])
        was = {kind: len(ids) for kind, ids in server.data.gitops.unfinished().items()}
        kept = [server.data.gitops.unfinished()["promotions"][0]]
        server.advance(minutes=60, new_gitops=NEW, new_unfinished=NEW_UNFINISHED, keep_running=kept)
        server.reset_stats()
        second = sync(server, {}, final_state(first))
        second_asked = dict(server.stats()["graphql"]["by_field"])
    counts = {
        "first": {s: len(v) for s, v in emitted(first).items()},
        "first_requests": first_asked,
        "second": {s: len(v) for s, v in emitted(second).items()},
        "second_requests": second_asked,
        "state_bytes": state_sizes(second),
    }
    with capsys.disabled():
        print("\ngitops incremental counts:", json.dumps(counts))
    assert [counts["second"][f"gitops_{kind}"] for kind in ("releases", "promotions", "workflows")] == [
        NEW + was[kind] for kind in ("releases", "promotions", "workflows")
    ], "the new records and those unfinished at the first sync"
    assert second_asked == {"gitopsReleases": 2, "promotions": 2, "workflows": 2}


BAD_STATES = [
    ("gitops_promotions", {"createdAt": "2999-01-01T00:00:00.000Z", "unfinished": []}, "in the future"),
    ("gitops_releases", {"sync_started_at": "1969-12-31T23:59:59.000Z", "unfinished": []}, "before 1970"),
    ("gitops_workflows", {"created": "2026-10-01T00:00:00.000Z", "unfinished": [["1900-01-01T00:00:00Z"]]}, "not"),
    ("gitops_workflow_nodes", {"workflow_created": "yesterday"}, "not an ISO-8601 date-time"),
]


@pytest.mark.parametrize("stream,state,why", BAD_STATES, ids=[s for s, _, _ in BAD_STATES])
def test_a_state_that_is_no_position_fails_with_one_sentence(stream, state, why):
    with SandboxServer(SandboxConfig(**SIZES)) as server:
        saved = StateBuilder().with_stream_state(stream, state).build()
        output = read_streams(
            server, [stream], SyncMode.incremental, saved, expect_failure=True, max_requests_per_minute=100000
        )
        asked = server.stats()["graphql"]["by_field"]
    messages = [e.trace.error.message for e in output.errors]
    assert len(messages) == 1 and messages[0].startswith(f"The saved state of stream '{stream}' cannot be read (")
    assert why in messages[0] and messages[0].endswith("reads it again from start_date.")
    assert output.records == [] and asked == {}
