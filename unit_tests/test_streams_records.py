"""What a user gets from each stream: records of one page, every page of paged listings, children of parents.

Every sync runs the connector end to end (entrypoint `read`) against the CDK's HttpMocker; each mocked request must
be sent (the `http_mocker` fixture checks it) and no unmocked request may be sent (the mocker fails it).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from codefresh_sandbox import plain
from unit_tests import builders as b
from unit_tests.audit_server import AuditLog
from unit_tests.conftest import (
    ACCOUNT_ID,
    API_KEY,
    any_params,
    error,
    log_lines,
    records_of,
    request,
    response,
    run_read,
    sent_requests,
    serialized_messages,
    user,
)
from unit_tests.stream_cases import (
    ALL_STREAMS,
    RECENT,
    RECENT_ISO,
    canonical,
    case,
    first_only,
    plain_case,
    recent,
    report_rows_request,
)

pytestmark = pytest.mark.usefixtures("parse_manifest_once", "slept")


# --- one page --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ALL_STREAMS)
def test_one_page_gives_the_records_with_stamped_keys_and_without_secrets(http_mocker, stream):
    c = case(stream)
    c.mock(http_mocker)

    output = run_read(stream, **c.config)

    records = records_of(output)
    # The same records, whatever order the concurrent reads finished in.
    assert canonical(records) == canonical(c.expected)
    assert not output.errors
    everything = "\n".join(serialized_messages(output))
    for secret in c.secrets + [API_KEY]:
        assert secret not in everything
    if c.first_params:
        # The first page (audit first asks single-entry questions: pageSize=1).
        params = next(
            r["params"] for r in sent_requests(http_mocker, c.own_path()) if r["params"].get("pageSize") != ["1"]
        )
        assert {k: params.get(k, [None])[0] for k in c.first_params} == c.first_params


@pytest.mark.parametrize(
    "endpoint",
    [
        # Streams of the manifest read as a plain endpoint would be: the case comes from the entry alone.
        plain.PlainEndpoint("agents", "/agents", (b.agent(0), b.agent(1)), "id"),
        plain.PlainEndpoint(
            "execution_contexts", "/execution-contexts", (b.execution_context(0),), "_id", records_key="docs"
        ),
        plain.PlainEndpoint("views", "/views/", (b.view(0), b.view(1)), "_id", records_key="docs", paging="page"),
        plain.PlainEndpoint(
            "projects",
            "/projects",
            (b.project(0, "2026-10-22T08:49:50.162Z"),),
            "id",
            records_key="projects",
            paging="offset",
        ),
    ],
    ids=lambda endpoint: endpoint.stream,
)
def test_a_plain_entry_is_a_case_of_its_own(http_mocker, endpoint):
    """What codefresh_sandbox/plain.py's entries become in the per-stream tests: the example is the one page the
    stream's first request gets, and the records the sync emits."""
    c = plain_case(endpoint)
    c.mock(http_mocker)
    output = run_read(endpoint.stream, **c.config)
    assert canonical(records_of(output)) == canonical(list(endpoint.example)) and not output.errors
    assert c.scope == case(endpoint.stream).scope  # the manifest's


# --- every page of the paged listings ------------------------------------------------------------------------------


OFFSET_PAGED = {
    "projects": ("projects", "projects", lambda i: b.project(i, "2026-10-22T08:49:50.162Z"), "id"),
    "pipelines": ("pipelines", "docs", lambda i: b.pipeline(i, "2026-10-15T10:38:34.121Z"), "id"),
    "step_types": ("step-types", "docs", b.step_type, "id"),
    "runtime_environments": ("runtime-environments", None, b.runtime_environment, "name"),
}


@pytest.mark.parametrize("stream", list(OFFSET_PAGED))
def test_offset_pages_are_read_until_a_short_page(http_mocker, stream):
    path, key, make, pk = OFFSET_PAGED[stream]
    first, second = [make(i) for i in range(100)], [make(i) for i in range(100, 103)]
    wrap = (lambda items: {key: items}) if key else (lambda items: items)
    http_mocker.get(request(path, {"limit": "100"}), response(wrap(first)))
    http_mocker.get(request(path, {"limit": "100", "offset": "100"}), response(wrap(second)))

    records = records_of(run_read(stream))

    assert len(records) == 103
    assert len({r[pk] for r in records}) == 103


def test_views_are_read_page_by_page_until_a_short_page(http_mocker):
    first, second = [b.view(i) for i in range(100)], [b.view(i) for i in range(100, 103)]
    http_mocker.get(request("views/", {"limit": "100", "page": "1"}), response({"docs": first, "total": 103}))
    http_mocker.get(request("views/", {"limit": "100", "page": "2"}), response({"docs": second, "total": 103}))

    records = records_of(run_read("views"))

    assert [r["_id"] for r in records] == [v["_id"] for v in first + second]


def test_audit_logs_are_read_page_by_page_with_page_size(http_mocker):
    entries = [b.audit_entry(i, recent(60 - i * 0.1)) for i in range(103)]
    AuditLog(entries).install(http_mocker)

    records = records_of(run_read("audit", start_date=RECENT_ISO))

    assert len(records) == len({r["id"] for r in records}) == 103
    pages = [s for s in sent_requests(http_mocker, "audit") if s["params"]["pageSize"] != ["1"]]
    # The first page without `page`, then 1, 2: page 1 repeats the first page on this server (numbered from 1).
    assert [(s["params"].get("page"), s["params"]["pageSize"]) for s in pages] == [
        (None, ["100"]),
        (["1"], ["100"]),
        (["2"], ["100"]),
    ]
    # Both pages belong to the same window.
    assert len({(s["params"]["from"][0], s["params"]["to"][0]) for s in pages}) == 1


CURSOR_PAGED = {
    # stream: (path, envelope key of the docs, record builder, primary key)
    "builds": ("workflow", "workflows", lambda i: b.build(i, recent(60 - i * 0.1)), "id"),
    "images": ("images", None, lambda i: b.image(i, recent(60 - i * 0.1)), "_id"),
}


@pytest.mark.parametrize("stream", list(CURSOR_PAGED))
def test_cursor_backed_pages_share_one_pagination_session_and_stop_when_next_page_is_false(http_mocker, stream):
    path, nested, make, pk = CURSOR_PAGED[stream]
    first, second = [make(i) for i in range(100)], [make(i) for i in range(100, 103)]
    http_mocker.get(
        any_params(path),
        [response(b.cursor_page(first, 1, True, nested)), response(b.cursor_page(second, 2, False, nested))],
    )

    records = records_of(run_read(stream, start_date=RECENT_ISO))

    assert len({r[pk] for r in records}) == 103
    sent = sent_requests(http_mocker, path)
    assert [s["params"]["page"] for s in sent] == [["1"], ["2"]]  # in order, and nothing after nextPage: false
    assert all("offset" not in s["params"] for s in sent)  # cursor pages: exactly what /workflow is known to accept
    sessions = {s["headers"].get("X-Pagination-Session-Id") for s in sent}
    assert len(sessions) == 1
    (session,) = sessions
    assert session and session.startswith("source-codefresh-")


def test_each_builds_window_is_its_own_pagination_session(http_mocker):
    # From 2025-06-01 to today: several 180-day windows, each one listing that starts at page 1.
    http_mocker.get(any_params("workflow"), response(b.cursor_page([], 1, False, "workflows")))

    run_read("builds", start_date="2025-06-01T00:00:00Z")

    sent = sent_requests(http_mocker, "workflow")
    assert len(sent) >= 3
    assert all(s["params"]["page"] == ["1"] for s in sent)
    sessions = [s["headers"]["X-Pagination-Session-Id"] for s in sent]
    assert len(set(sessions)) == len(sent)
    windows = sorted((s["params"]["startDate"][0], s["params"]["endDate"][0]) for s in sent)
    assert windows[0][0] == "2025-06-01T00:00:00.000Z"
    for (start, end), (next_start, _) in itertools.pairwise(windows):
        assert b.utc(next_start) - b.utc(start) == timedelta(days=180)  # contiguous windows
        # endDate: the midnight after the window's last millisecond (next_start - 1 ms), so any reading of the
        # date returns the whole window; the cursor keeps exactly its builds.
        last = b.utc(next_start) - timedelta(milliseconds=1)
        assert b.utc(end) == last.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def test_a_cursor_backed_listing_stops_on_an_empty_page(http_mocker):
    http_mocker.get(
        any_params("images"),
        [response(b.cursor_page([b.image(0)], 1, True)), response(b.cursor_page([], 2, True))],
    )

    records = records_of(run_read("images"))

    assert [r["_id"] for r in records] == [b.image(0)["_id"]]
    assert len(sent_requests(http_mocker, "images")) == 2


def test_images_without_a_pagination_object_are_read_by_offset_until_an_empty_page(http_mocker):
    # The spec's reading of /images: limit/offset, no pagination object; a short page is not taken as the end.
    first, second = [b.image(i, recent(60 - i * 0.1)) for i in range(100)], [b.image(i) for i in range(100, 103)]
    http_mocker.get(
        any_params("images"),
        [response(b.offset_page(first)), response(b.offset_page(second)), response(b.offset_page([]))],
    )

    records = records_of(run_read("images"))

    assert sorted(r["_id"] for r in records) == sorted(r["_id"] for r in first + second)
    sent = sent_requests(http_mocker, "images")
    assert [(s["params"]["page"], s["params"].get("offset")) for s in sent] == [
        (["1"], None),
        (["2"], ["100"]),
        (["3"], ["103"]),
    ]
    assert all(s["params"]["limit"] == ["100"] for s in sent)
    assert len({s["headers"]["X-Pagination-Session-Id"] for s in sent}) == 1


@pytest.mark.timeout(60)  # without the guard the read would loop on the repeated page
def test_images_from_a_server_that_ignores_paging_fail_the_sync_with_one_sentence(http_mocker):
    same = [b.image(i) for i in range(25)]
    http_mocker.get(any_params("images"), [response(b.offset_page(same)), response(b.offset_page(same))])

    output = run_read("images", expect_failure=True)

    errors = [m.trace.error.message for m in output.errors]
    assert errors and errors[0].startswith(
        "Codefresh answered page 2 of https://g.codefresh.io/api/images with the same records as page 1, so it "
        "ignores the paging parameters"
    )
    assert len(sent_requests(http_mocker, "images")) == 2  # no third request: no loop


@pytest.mark.timeout(60)  # without the guard the read would loop on the repeated page
def test_builds_from_a_server_that_repeats_a_page_fail_the_sync_with_one_sentence(http_mocker):
    # A cursor that never moves, answering nextPage: true forever: before, the listing never ended.
    same = [b.build(i, recent(60 - i * 0.1)) for i in range(100)]
    http_mocker.get(any_params("workflow"), response(b.cursor_page(same, 1, True, "workflows")))

    output = run_read("builds", expect_failure=True, start_date=RECENT_ISO)

    errors = [m.trace.error.message for m in output.errors]
    assert errors and errors[0].startswith(
        "Codefresh answered page 2 of https://g.codefresh.io/api/workflow with the same records as page 1"
    )
    assert len(sent_requests(http_mocker, "workflow")) == 2


# --- parents and children --------------------------------------------------------------------------------------------


ACCOUNT_STREAMS = {
    "accounts": (f"accounts/{ACCOUNT_ID}/users", [b.account_user(0)]),
    "account_settings": ("account-settings", b.account_settings()),
}


@pytest.mark.parametrize("stream", list(ACCOUNT_STREAMS))
def test_account_streams_use_the_active_account_of_the_key(http_mocker, stream):
    path, body = ACCOUNT_STREAMS[stream]
    me = user()
    # The active account is matched by name, wherever it is in the list (the conftest user has it second).
    me["account"] = list(reversed(me["account"]))
    http_mocker.get(request("user"), response(me))
    http_mocker.get(request(path), response(body))

    records = records_of(run_read(stream))

    assert len(records) == 1
    if stream == "account_settings":
        assert records[0]["account_id"] == ACCOUNT_ID


@pytest.mark.parametrize("stream", ["build_details", "build_steps"])
def test_per_build_streams_read_every_build_of_the_listing(http_mocker, stream):
    c = case(stream)
    c.mock(http_mocker)

    records = records_of(run_read(stream, **c.config))

    build_ids = {r["id"] if stream == "build_details" else r["build_id"] for r in records}
    assert build_ids == {b.oid(1, "b"), b.oid(2, "b")}
    assert len(sent_requests(http_mocker, "workflow")) == 1  # one listing, not one per child


def test_pipeline_triggers_flatten_git_and_cron_triggers_of_each_pipeline_without_more_requests(http_mocker):
    c = case("pipeline_triggers")
    c.mock(http_mocker)

    records = records_of(run_read("pipeline_triggers"))

    assert sorted((r["pipeline_id"], r["type"]) for r in records) == sorted(
        [(b.oid(0, "pl"), "git"), (b.oid(0, "pl"), "cron"), (b.oid(1, "pl"), "git"), (b.oid(1, "pl"), "git")]
    )
    assert all("secret" not in r for r in records)
    assert [s["path"] for s in sent_requests(http_mocker)] == ["pipelines"]


REPORTS = ["creditConsumption", "buildAvgDuration"]


def _rows(key: str, value: float):
    return response({"data": [b.report_row(RECENT.date(), key, value)]})


def test_analytics_rows_in_week_buckets_from_monday_and_a_report_without_weeks_skipped(http_mocker):
    monday = RECENT.date() - timedelta(days=RECENT.weekday())
    first, today = monday.isoformat(), b.midnight_days_ago(0).date().isoformat()
    http_mocker.get(request("analytics/metadata"), response(b.analytics_metadata(REPORTS)))
    # Exact query string: ?dateRange=<monday>&dateRange=<today>&granularity=week (whole weeks: a week's row is
    # never read in two parts). creditConsumption has no week granularity: no request at all.
    http_mocker.get(
        report_rows_request("buildAvgDuration", first, today, "week"), response({"data": [b.build_report_row(monday)]})
    )

    output = run_read("analytics_reports", start_date=RECENT_ISO, analytics_granularity="week")

    records = records_of(output)
    assert [(r["reportName"], r["key"], r["time"][:10], r["totalBuilds"]) for r in records] == [
        ("buildAvgDuration", "-", first, "4")
    ]
    assert [r["path"] for r in sent_requests(http_mocker) if r["path"].startswith("analytics/reports/")] == [
        "analytics/reports/buildAvgDuration"
    ]
    lines = [line for line in log_lines(output) if "creditConsumption" in line]
    assert len(lines) == 1 and "does not support granularity 'week'" in lines[0] and "day, month" in lines[0]


def test_analytics_rows_only_of_the_configured_reports(http_mocker):
    first, today = RECENT.date().isoformat(), b.midnight_days_ago(0).date().isoformat()
    http_mocker.get(request("analytics/metadata"), response(b.analytics_metadata(REPORTS)))
    http_mocker.get(report_rows_request("buildAvgDuration", first, today), _rows("demo/a", 2.0))

    output = run_read("analytics_reports", start_date=RECENT_ISO, analytics_reports=["buildAvgDuration"])

    records = records_of(output)

    assert [r["reportName"] for r in records] == ["buildAvgDuration"]


def test_analytics_report_still_computing_is_retried(http_mocker, slept):
    c = case("analytics_reports")
    not_ready = error(432, "analytics report not finished yet", {"Retry-After": "3"})
    c.mock(http_mocker, first_only(lambda page: [not_ready, response(page)]))

    output = run_read("analytics_reports", **c.config)

    assert canonical(records_of(output)) == canonical(c.expected)
    assert not output.errors
    # Retry-After's 3 s, plus the jitter (0 to 1 s), plus the second the CDK adds to every such wait
    # (airbyte_cdk/sources/streams/http/rate_limiting.py).
    assert any(4 <= wait <= 5 for wait in slept), slept


def test_analytics_report_still_computing_without_retry_after_is_retried_with_backoff(http_mocker, slept):
    # Codefresh's docs name the 432 but show no Retry-After header on it: the policy's backoff decides the wait.
    c = case("analytics_reports")
    not_ready = error(432, "analytics report not finished yet")
    c.mock(http_mocker, first_only(lambda page: [not_ready, not_ready, response(page)]))

    output = run_read("analytics_reports", **c.config)

    assert canonical(records_of(output)) == canonical(c.expected)
    assert not output.errors
    assert len([wait for wait in slept if wait >= 1]) == 2, slept  # one wait per 432, none of them zero


def test_analytics_report_that_rejects_the_request_is_skipped_with_one_log_line(http_mocker):
    c = case("analytics_reports")
    message = "Report buildAvgDuration does not support granularity 'day'"
    c.mock(http_mocker, lambda i, body: error(400, message) if i == 1 else None)

    output = run_read("analytics_reports", **c.config)

    assert {r["reportName"] for r in records_of(output)} == {"creditConsumption"}
    assert not output.errors
    lines = [line for line in log_lines(output) if "buildAvgDuration" in line]
    assert len(lines) == 1
    assert message in lines[0]
