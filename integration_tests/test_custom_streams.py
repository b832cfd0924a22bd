"""Custom streams (the `custom_streams` setting) against the sandbox: one stream of each paging family read in full
(exact records, none twice, cursor pages in order), an incremental custom stream over two syncs, and the entries
that are refused before any request is sent."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Dict, List, Optional

import pytest
from airbyte_cdk.models import AirbyteStateMessage, FailureType, Status, SyncMode
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput

from codefresh_sandbox import SANDBOX_API_KEY, SandboxConfig, SandboxServer
from codefresh_sandbox.expected import EXAMPLE_CUSTOM_STREAMS
from integration_tests.syncs import final_state, read_streams, records
from source_codefresh import SourceCodefresh

REGISTRIES, PIPELINE_NAMES = EXAMPLE_CUSTOM_STREAMS
MORE_VIEWS = {"name": "more_views", "path": "views/", "records_key": "docs", "primary_key": "_id", "pagination": "page"}
FAILED_BUILDS = {
    "name": "failed_builds",
    "path": "workflow",
    "records_key": "workflows.docs",
    "primary_key": "id",
    "pagination": "cursor",
    "params": [{"name": "status", "value": "error"}, {"name": "status", "value": "terminated"}],
}
CREDENTIALS = ("password", "token", "secretAccessKey", "clientSecret", "keyfile")


@pytest.fixture(scope="module")
def sandbox():
    # More than one page of each paged family (100 a page): 230 views (3 pages); 313 of the 1500 builds failed or
    # were terminated (4 pages).
    with SandboxServer(SandboxConfig(views=230, builds=1500)) as server:
        yield server


@pytest.fixture
def fresh(sandbox):
    sandbox.clear_faults()
    sandbox.reset_stats()
    return sandbox


def sync(
    server: SandboxServer,
    *entries: Dict[str, Any],
    state: Optional[List[AirbyteStateMessage]] = None,
    mode: SyncMode = SyncMode.full_refresh,
    expect_failure: bool = False,
) -> EntrypointOutput:
    """One sync of the custom streams `entries` (and of nothing else)."""
    return read_streams(server, [e["name"] for e in entries], mode, state, expect_failure, custom_streams=list(entries))


def without_credentials(record: Dict[str, Any]) -> Dict[str, Any]:
    """The record as a sync emits it: without its credentials (and without its null fields, which the CDK's
    message serializer leaves out, for every stream)."""
    return {key: value for key, value in record.items() if key not in CREDENTIALS and value is not None}


# --- each paging family -----------------------------------------------------------------------------------------------


def test_no_paging_reads_the_registries_without_their_credentials(fresh):
    output = sync(fresh, REGISTRIES)

    assert records(output, "registries") == [without_credentials(r) for r in fresh.data.registries.records]
    assert fresh.stats()["by_route"] == {"GET /api/registries": 1}
    for message in output.records:
        assert not set(CREDENTIALS) & set(message.record.data)


def test_offset_paging_reads_every_pipeline_name_once_with_its_nested_key_on_top(fresh):
    output = sync(fresh, PIPELINE_NAMES)

    got = records(output, "pipeline_names")
    pipelines = fresh.data.pipelines.records
    assert [r["metadata_id"] for r in got] == [p["metadata"]["id"] for p in pipelines]
    assert len({r["metadata_id"] for r in got}) == len(got) == fresh.expected()["pipeline_names"] == 250
    assert [r["metadata_updated_at"] for r in got] == [p["metadata"]["updated_at"] for p in pipelines]
    assert fresh.stats()["by_route"] == {"GET /api/pipelines/names": 3}  # 100 + 100 + 50


def test_page_paging_reads_every_view_once(fresh):
    output = sync(fresh, MORE_VIEWS)

    got = records(output, "more_views")
    assert got == fresh.data.views.records and len(got) == fresh.expected()["views"] == 230
    assert len({r["_id"] for r in got}) == 230
    assert fresh.stats()["by_route"] == {"GET /api/views/": 3}


def test_cursor_paging_reads_the_filtered_builds_in_page_order(fresh):
    output = sync(fresh, FAILED_BUILDS)

    got = [r["id"] for r in records(output, "failed_builds")]
    newest_first = [st.doc for st in reversed(fresh.data.builds)]
    wanted = [b["id"] for b in newest_first if b["status"] in ("error", "terminated")]
    assert got == wanted and len(set(got)) == len(got) > 100  # more than one page, in the listing's order
    stats = fresh.stats()
    assert stats["pagination_errors"] == 0  # every page was the session's next one
    assert stats["by_route"] == {"GET /api/workflow": (len(wanted) + 99) // 100}


def test_every_paging_family_at_once(fresh):
    output = sync(fresh, REGISTRIES, PIPELINE_NAMES, MORE_VIEWS, FAILED_BUILDS)

    counts = Counter(m.record.stream for m in output.records)
    expected = fresh.expected()
    assert counts["registries"] == expected["registries"] and counts["pipeline_names"] == expected["pipeline_names"]
    assert counts["more_views"] == expected["views"] and counts["failed_builds"] > 100
    assert not output.errors and fresh.stats()["pagination_errors"] == 0


# --- incremental ------------------------------------------------------------------------------------------------------


def test_an_incremental_custom_stream_emits_only_new_builds_on_the_second_sync():
    listing = {
        "name": "build_listing",
        "path": "workflow",
        "records_key": "workflows.docs",
        "primary_key": "id",
        "pagination": "cursor",
        "cursor_field": "created",
    }
    with SandboxServer(SandboxConfig(builds=300)) as server:
        first = sync(server, listing, mode=SyncMode.incremental)
        first_ids = [r["id"] for r in records(first, "build_listing")]
        assert sorted(first_ids) == sorted(server.data.build_ids()) and len(set(first_ids)) == 300
        state = final_state(first)
        newest = max(r["created"] for r in records(first, "build_listing"))
        assert state[0].stream.stream_state.__dict__ == {"created": newest}

        added = server.advance(new_builds=25, finish_running=True, minutes=60)["added"]
        second = sync(server, listing, state=state, mode=SyncMode.incremental)

        assert sorted(r["id"] for r in records(second, "build_listing")) == sorted(added)
        assert len(added) == 25
        newest_now = max(r["created"] for r in records(second, "build_listing"))
        assert final_state(second)[0].stream.stream_state.__dict__ == {"created": newest_now}

        third = sync(server, listing, state=final_state(second), mode=SyncMode.incremental)
        assert records(third, "build_listing") == []


# --- refused before any request ---------------------------------------------------------------------------------------


def check(server: SandboxServer, *entries: Dict[str, Any]):
    cfg = {"api_key": SANDBOX_API_KEY, "base_url": server.base_url, "custom_streams": list(entries)}
    return SourceCodefresh(config=cfg).check(logging.getLogger(), cfg)


@pytest.mark.parametrize(
    "bad,message",
    [
        (
            {**REGISTRIES, "name": "builds"},
            "custom_streams entry 2 ('builds'): 'builds' is the name of a built-in stream; give the custom stream "
            "another name, e.g. custom_builds.",
        ),
        (
            {**REGISTRIES, "name": "rebuild_all", "path": "builds/rebuild/5f1a2b3c4d5e6f7a8b9c0d1e"},
            "custom_streams entry 2 ('rebuild_all'): path 'builds/rebuild/5f1a2b3c4d5e6f7a8b9c0d1e' is refused because "
            "a GET of builds/rebuild/{id} starts the build again: the connector only reads, so point path at an "
            "endpoint that only reads.",
        ),
        (
            {**REGISTRIES, "name": "exfiltrate", "path": "https://attacker.example/api/registries"},
            "custom_streams entry 2 ('exfiltrate'): path 'https://attacker.example/api/registries' is a URL or names a "
            "host: write only the path under the API root (base_url), e.g. registries.",
        ),
        (
            {**REGISTRIES, "name": "exfiltrate", "path": "//attacker.example/registries"},
            "custom_streams entry 2 ('exfiltrate'): path '//attacker.example/registries' is a URL or names a host: "
            "write only the path under the API root (base_url), e.g. registries.",
        ),
    ],
)
def test_a_refused_entry_fails_check_before_any_request(fresh, bad, message):
    status = check(fresh, PIPELINE_NAMES, bad)

    assert status.status == Status.FAILED and status.message == message
    assert fresh.stats()["requests"] == 0


def test_a_usable_config_passes_check(fresh):
    assert check(fresh, REGISTRIES, PIPELINE_NAMES, MORE_VIEWS, FAILED_BUILDS).status == Status.SUCCEEDED


def test_a_missing_records_key_fails_the_stream_with_one_sentence(fresh):
    output = sync(fresh, {**REGISTRIES, "records_key": "registries"}, expect_failure=True)

    assert records(output, "registries") == []
    traces = [m.trace.error for m in output.errors if "records_key" in m.trace.error.message]
    assert traces and traces[0].failure_type == FailureType.config_error
    assert traces[0].message == (
        f"Codefresh answered GET {fresh.base_url}/registries with JSON that has no 'registries' list (top-level keys: "
        "list), so custom stream 'registries' reads nothing: set its records_key in custom_streams to the key that "
        "holds the records (dotted when nested), or leave it empty when the answer is the list itself."
    )


@pytest.mark.parametrize(
    "path,key,wrong,right", [("pipelines", "metadata.id", "page", "offset"), ("views/", "_id", "offset", "page")]
)
def test_a_pagination_the_endpoint_ignores_ends_with_one_sentence_instead_of_reading_forever(
    fresh, path, key, wrong, right
):
    entry = {"name": "misread", "path": path, "records_key": "docs", "primary_key": key, "pagination": wrong}

    output = sync(fresh, entry, expect_failure=True)

    assert fresh.stats()["by_route"] == {f"GET /api/{path}": 2}  # the first page, and its repetition
    # The repetition is seen once its records are read (the paginator's check, the same for every stream); the stream
    # then fails, so a destination commits neither page.
    assert len(records(output, "misread")) == 200
    traces = [m.trace.error for m in output.errors if "with the same records as page 1" in m.trace.error.message]
    assert traces and traces[0].failure_type == FailureType.config_error
    assert traces[0].message.endswith(
        "does not page the way the pagination of custom stream 'misread' asks: set its pagination in custom_streams "
        "to the paging the endpoint uses (offset, page or cursor), or to none."
    )
    assert len(records(sync(fresh, {**entry, "pagination": right}), "misread")) == len(
        getattr(fresh.data, "pipelines" if path == "pipelines" else "views")
    )
