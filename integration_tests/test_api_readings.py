"""The connector against the sandbox under each reading of the API the evidence leaves open (FIDELITY.md; the
sandbox's switches are in codefresh_sandbox/README.md "Readings"): analytics ranges without data, analytics
windows per report, the audit list's time form and entry cap, a restricted key, the status vocabulary, Hermes,
environments with or without `_id`.

Each test compares what the connector emits with what the sandbox holds."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any, Dict, List, Optional

import jsonschema
import pytest
from airbyte_cdk.models import AirbyteStateMessage, AirbyteStream, SyncMode
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, discover

from codefresh_sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_LIMITED_API_KEY,
    SANDBOX_RESTRICTED_API_KEY,
    SMALL_ACCOUNT,
    SandboxConfig,
    SandboxServer,
)
from codefresh_sandbox import analytics as sandbox_analytics
from codefresh_sandbox import audit as sandbox_audit
from integration_tests.syncs import final_state, read_streams, records
from source_codefresh import SourceCodefresh
from source_codefresh import source as source_module

SMALL = dict(SMALL_ACCOUNT, audit=300, hermes_triggers=8, hermes_events=12)


def sync(
    server: SandboxServer,
    streams: List[str],
    sync_mode: SyncMode = SyncMode.full_refresh,
    state: Optional[List[AirbyteStateMessage]] = None,
    api_key: str = SANDBOX_API_KEY,
    expect_failure: bool = False,
    **config: Any,
) -> EntrypointOutput:
    return read_streams(
        server,
        streams,
        sync_mode,
        state,
        expect_failure,
        api_key=api_key,
        max_requests_per_minute=100000,
        num_workers=8,
        **config,
    )


def logs(output: EntrypointOutput) -> List[str]:
    return [m.log.message for m in output.logs]


_DISCOVERED: Dict[str, AirbyteStream] = {}


def discovered(server: SandboxServer) -> Dict[str, AirbyteStream]:
    """The discovered streams by name (read once: they do not depend on the sandbox)."""
    if not _DISCOVERED:
        cfg = {"api_key": SANDBOX_API_KEY, "base_url": server.base_url}
        catalog = discover(SourceCodefresh(config=cfg), cfg).catalog.catalog
        _DISCOVERED.update({stream.name: stream for stream in catalog.streams})
    return _DISCOVERED


def schemas(server: SandboxServer) -> Dict[str, Dict[str, Any]]:
    return {name: stream.json_schema for name, stream in discovered(server).items()}


def assert_valid(server: SandboxServer, stream: str, rows: List[Dict[str, Any]]) -> None:
    schema = schemas(server)[stream]
    for row in rows:
        jsonschema.validate(row, schema)


# --- analytics -------------------------------------------------------------------------------------------------------


def _ground_truth(server: SandboxServer, granularity: str) -> Dict[tuple, Dict[str, Any]]:
    """Every row the connector should emit: each report that supports `granularity`, from the first whole bucket
    within a year back to today, as the sandbox computes it in one piece (no window limits)."""
    today = datetime.now(timezone.utc).date()
    earliest = today - timedelta(days=365)
    first = {"day": earliest, "week": earliest - timedelta(days=earliest.weekday()), "month": earliest.replace(day=1)}[
        granularity
    ]
    if first < earliest:
        first = first + timedelta(days=7) if granularity == "week" else (first + timedelta(days=32)).replace(day=1)
    truth = {}
    for name, report in sandbox_analytics.REPORTS.items():
        if granularity not in {d["granularity"] for d in report["dims"]}:
            continue
        for row in sandbox_analytics.report_rows(server.data, name, first, today, granularity):
            truth[(name, row["time"][:10], row.get("key", "-"))] = row
    return truth


@pytest.mark.parametrize("empty_range", ["error_500", "empty_200"])
@pytest.mark.parametrize("granularity", ["day", "week", "month"])
def test_analytics_rows_are_exactly_the_reports_data_in_windows_every_report_accepts(granularity, empty_range):
    with SandboxServer(SandboxConfig(analytics_empty_range=empty_range, **SMALL)) as server:
        output = sync(server, ["analytics_reports"], analytics_granularity=granularity)

        rows = records(output, "analytics_reports")
        emitted = Counter((r["reportName"], r["time"][:10], r["key"]) for r in rows)
        truth = _ground_truth(server, granularity)
        assert set(emitted) == set(truth) and set(emitted.values()) == {1}, "every row once, none missing"
        for row in rows:
            expected = truth[(row["reportName"], row["time"][:10], row["key"])]
            assert {k: row[k] for k in expected if k != "key"} == {k: v for k, v in expected.items() if k != "key"}
        stats = server.stats()["by_status"]
        assert 400 not in stats, "no window a report rejects was sent"
        assert (500 in stats) == (empty_range == "error_500")  # ranges before the first build have no data
        assert not output.errors
        skipped_reports = {
            name
            for name, r in sandbox_analytics.REPORTS.items()
            if granularity not in {d["granularity"] for d in r["dims"]}
        }
        for name in skipped_reports:
            assert len([line for line in logs(output) if f"Skipping report '{name}'" in line]) == 1
        assert_valid(server, "analytics_reports", rows)


BUILD_REPORTS = {name for name, report in sandbox_analytics.REPORTS.items() if report["type"] == "builds"}


@pytest.mark.parametrize("build_rows", ["bucketed", "aggregate"])
def test_build_report_rows_say_the_range_they_cover_whether_or_not_codefresh_buckets_them(build_rows):
    # The docs' draft asks a build report with granularity=day and shows one row without `time`: under either
    # answer each row is emitted once, with the dateRange it was read with; an aggregate row is exactly the
    # sandbox's aggregate over that range, and the rows of a report follow each other without a gap or an overlap.
    with SandboxServer(SandboxConfig(analytics_build_rows=build_rows, **SMALL)) as server:
        output = sync(server, ["analytics_reports"], analytics_granularity="day")

        rows = [r for r in records(output, "analytics_reports") if r["reportName"] in BUILD_REPORTS]
        assert not output.errors and {r["reportName"] for r in rows} == BUILD_REPORTS
        assert set(Counter((r["reportName"], r["time"], r["key"]) for r in rows).values()) == {1}
        for row in rows:
            first, last = date.fromisoformat(row["date_range_first"]), date.fromisoformat(row["date_range_last"])
            assert first <= date.fromisoformat(row["time"][:10]) <= last, row
            if build_rows == "aggregate":
                (truth,) = sandbox_analytics.report_rows(server.data, row["reportName"], first, last, None)
                assert {k: row[k] for k in truth} == truth, row
        if build_rows == "aggregate":
            for name in BUILD_REPORTS:
                spans = sorted(
                    (date.fromisoformat(r["time"][:10]), date.fromisoformat(r["date_range_last"]))
                    for r in rows
                    if r["reportName"] == name
                )
                assert len(spans) > 1, "several windows were read"
                assert all(b[0] == a[1] + timedelta(days=1) for a, b in pairwise(spans)), spans
        else:
            truth = _ground_truth(server, "day")
            assert {(r["reportName"], r["time"][:10]) for r in rows} == {
                (name, day) for (name, day, _) in truth if name in BUILD_REPORTS
            }
        assert_valid(server, "analytics_reports", rows)


def test_analytics_incremental_reads_the_last_bucket_again_in_a_window_the_report_accepts():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        first = sync(server, ["analytics_reports"], SyncMode.incremental, analytics_granularity="month")
        server.reset_stats()
        second = sync(
            server,
            ["analytics_reports"],
            SyncMode.incremental,
            state=final_state(first),
            analytics_granularity="month",
        )

        # The newest bucket each report emitted is the one that can still change; the sandbox's data is fixed in time,
        # so that bucket comes from the first sync, never from this machine's clock.
        newest: Dict[str, str] = {}
        for row in records(first, "analytics_reports"):
            newest[row["reportName"]] = max(newest.get(row["reportName"], ""), row["time"][:10])
        again = records(second, "analytics_reports")
        assert again, "the last bucket is read again"
        assert {(r["reportName"], r["time"][:10]) for r in again} <= set(newest.items()), "only the last bucket again"
        assert 400 not in server.stats()["by_status"], "activeCommitters still got at least three months"
        assert not second.errors


# --- audit -------------------------------------------------------------------------------------------------------


def audit_ids(output: EntrypointOutput) -> Counter:
    return Counter(r["id"] for r in records(output, "audit"))


def audit_lines(output: EntrypointOutput) -> List[str]:
    """What the connector said about the audit log, and every warning or error of the sync."""
    return [
        m.log.message
        for m in output.logs
        if m.log.message.startswith("Stream 'audit'") or m.log.level.name in ("WARN", "ERROR", "FATAL")
    ]


@pytest.mark.parametrize("time_format", ["ms", "iso"])
@pytest.mark.parametrize("first_page", ["1", "0"], ids=["pages from 1", "pages from 0"])
def test_audit_logs_hold_every_entry_once_whichever_page_numbering_and_time_form(first_page, time_format):
    config = SandboxConfig(audit_first_page=first_page, audit_time_format=time_format, **SMALL)
    with SandboxServer(config) as server:
        every = {e["id"] for e in server.data.audit.records}
        form = "epoch milliseconds" if time_format == "ms" else "ISO date-times"
        said = [f"Stream 'audit': Codefresh filters the audit log by {form}"]

        full = sync(server, ["audit"])
        assert audit_ids(full) == Counter(every), "every entry exactly once"
        first = sync(server, ["audit"], SyncMode.incremental)
        assert audit_ids(first) == Counter(every)
        for output in (full, first):
            assert [line[: len(said[0])] for line in audit_lines(output)] == said, "one line, nothing else"

        # Newer actions, more than one page of them (the connector reads 100 a page): the next sync emits just them.
        server.data.advance(minutes=60)
        added = sandbox_audit.add_entries(server.data, 130)
        second = sync(server, ["audit"], SyncMode.incremental, state=final_state(first))
        assert audit_ids(second) == Counter(e["id"] for e in added)
        assert [line[: len(said[0])] for line in audit_lines(second)] == said
        third = sync(server, ["audit"], SyncMode.incremental, state=final_state(second))
        assert not records(third, "audit"), "nothing new: nothing emitted again"
        assert_valid(server, "audit", records(first, "audit") + records(second, "audit"))


@pytest.fixture
def manifest_with_cap(tmp_path, monkeypatch):
    """The connector's manifest with the documented 50,000-entry cap lowered to the sandbox's small one."""
    text = source_module.manifest_path().read_text()
    assert "        entry_cap: 50000\n" in text
    patched = tmp_path / "manifest.yaml"
    patched.write_text(text.replace("        entry_cap: 50000\n", "        entry_cap: 100\n"))
    monkeypatch.setattr(source_module, "manifest_path", lambda: patched)
    return 100


@pytest.mark.parametrize("first_page", ["1", "0"], ids=["pages from 1", "pages from 0"])
def test_an_audit_window_at_the_cap_is_split_not_truncated(manifest_with_cap, first_page):
    with SandboxServer(SandboxConfig(audit_cap=manifest_with_cap, audit_first_page=first_page, **SMALL)) as server:
        output = sync(server, ["audit"])

        ids = Counter(r["id"] for r in records(output, "audit"))
        assert set(ids) == {e["id"] for e in server.data.audit.records} and set(ids.values()) == {1}
        assert len(server.data.audit.records) > 2 * manifest_with_cap
        assert any("reading it in two halves" in line for line in logs(output))


# --- 403: a restricted key, a missing scope ------------------------------------------------------------------------

ALL_STREAMS = [
    "current_user",
    "accounts",
    "teams",
    "account_settings",
    "api_keys",
    "projects",
    "pipelines",
    "pipeline_triggers",
    "builds",
    "build_details",
    "build_steps",
    "triggers",
    "trigger_events",
    "step_types",
    "contexts",
    "execution_contexts",
    "runtime_environments",
    "agents",
    "helm_repos",
    "environments",
    "views",
    "images",
    "audit",
    "analytics_metadata",
    "analytics_reports",
]


def test_a_restricted_key_fails_the_sync_saying_so_and_empties_nothing():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        output = sync(server, ALL_STREAMS, api_key=SANDBOX_RESTRICTED_API_KEY, expect_failure=True)

        assert not output.records, "nothing emitted: a full refresh would have overwritten the tables with nothing"
        failures = [m.trace.error for m in output.errors if m.trace.error.stream_descriptor is not None]
        assert {f.stream_descriptor.name for f in failures} == set(ALL_STREAMS)
        assert {f.message for f in failures} == {failures[0].message}, "one sentence"
        assert "restricted the key" in failures[0].message and "unusual activity" in failures[0].message
        assert not [line for line in logs(output) if "Skipping stream" in line]
        # At most one request per stream and endpoint, plus the question to GET /user.
        assert server.stats()["requests"] <= 2 * len(ALL_STREAMS)


def test_a_key_without_two_scopes_skips_just_those_streams_with_one_request_and_one_line_each():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        output = sync(
            server,
            ["audit", "accounts", "teams", "builds"],
            SyncMode.incremental,
            api_key=SANDBOX_LIMITED_API_KEY,
        )

        assert not output.errors
        assert not records(output, "audit") and not records(output, "accounts")
        assert records(output, "teams") and records(output, "builds")
        for stream in ("audit", "accounts"):
            assert len([line for line in logs(output) if f"Skipping stream '{stream}'" in line]) == 1
        routes = server.stats()["by_route"]
        assert routes["GET /api/audit"] == 1, "one request, not one per 180-day window"
        assert routes["GET /api/accounts/{accountId}/users"] == 1
        assert not [line for line in logs(output) if "Ignoring response" in line]


# --- status vocabulary, Hermes --------------------------------------------------------------------------------------


def test_build_steps_carry_the_real_step_vocabulary():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        output = sync(server, ["build_steps"], start_date="2026-07-01T00:00:00Z")
        steps = records(output, "build_steps")
        statuses = {s.get("status") for s in steps}
        assert "failure" in statuses and "error" not in statuses
        assert "approved" in statuses
        assert "Initializing" not in {s["name"] for s in steps}
        init = [s for s in steps if s["name"] == "Initializing Process"]
        assert init and all("type" not in s and "result" not in s for s in init)
        assert_valid(server, "build_steps", steps)


def test_trigger_events_are_the_accounts_own_and_triggers_keep_their_empty_event_data():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        output = sync(server, ["triggers", "trigger_events"])

        events = records(output, "trigger_events")
        assert len(events) == server.expected()["hermes_events"]
        assert all(e["account"] != "000000000000" and "secret" not in e for e in events)
        secrets = [e["secret"] for e in server.data.hermes_events.records if e["secret"]]
        emitted = json.dumps(events)
        assert secrets and not [s for s in secrets if s in emitted]  # nor in the webhook URLs that carry it
        assert any("secret=REDACTED" in (e.get("endpoint") or "") for e in events)
        links = records(output, "triggers")
        assert len(links) == server.expected()["hermes_triggers"]
        assert all(link["event-data"] == {"uri": "", "type": "", "kind": "", "account": ""} for link in links)
        assert_valid(server, "triggers", links)


# --- environments: items with or without `_id` (FIDELITY.md 2) -------------------------------------------------------


@pytest.mark.parametrize("environments_id", ["present", "absent"])
def test_environments_have_a_distinct_key_whether_or_not_items_carry_an_id(environments_id):
    with SandboxServer(SandboxConfig(environments_id=environments_id, **SMALL)) as server:
        primary_key = discovered(server)["environments"].source_defined_primary_key
        output = sync(server, ["environments"])
        served = server.data.environments.records

        assert not output.errors
        assert all(("_id" in e) == (environments_id == "present") for e in served), "the switch works"
        rows = records(output, "environments")
        assert len(rows) == len(served) == server.expected()["environments"] > 1
        keys = [tuple(r.get(field) for (field,) in primary_key) for r in rows]  # top-level key fields
        assert all(None not in key and "" not in key for key in keys), "every record has a non-null key"
        assert len(set(keys)) == len(keys), "no two records share a key"
        assert primary_key == [["name"]] and [r["name"] for r in rows] == [e["metadata"]["name"] for e in served]
        assert_valid(server, "environments", rows)
