"""scripts/probe_api.py: its verdicts from canned answers, one per reading of each open question, and its safety
(GETs to a fixed list of paths, GraphQL queries of a fixed list of fields and never a mutation, the key only in the
Authorization header and never in its output)."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests_mock
from graphql import OperationDefinitionNode, parse

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "probe_api.py"
spec = importlib.util.spec_from_file_location("probe_api", SCRIPT)
probe_api = importlib.util.module_from_spec(spec)
sys.modules["probe_api"] = probe_api
spec.loader.exec_module(probe_api)
Answer = probe_api.Answer

KEY = "probe-test-key.0123456789abcdef0123456789abcdef"
BASE = "https://g.codefresh.io/api"
GRAPHQL = "https://g.codefresh.io/2.0/api/graphql"
BUILD_CREATED = "2026-11-20T14:03:05.123Z"
AUDIT_CREATED = "2026-11-20T10:00:00.000Z"
AUDIT_CREATED_MS = int(datetime(2026, 11, 20, 10, tzinfo=timezone.utc).timestamp() * 1000)


def ok(body, headers=None) -> Answer:
    return Answer(200, body, headers or {})


def images(first, count=5, pagination=None):
    body = {"docs": [{"_id": f"img-{i}"} for i in range(first, first + count)]}
    return {**body, "pagination": pagination} if pagination is not None else {**body, "total": 40}


def builds(*ids):
    return {
        "workflows": {"docs": [{"id": i, "created": BUILD_CREATED} for i in ids]},
        "pagination": {"page": 1, "nextPage": False},
    }


def audit(*ids):
    return {"data": [{"id": i, "createdAt": AUDIT_CREATED} for i in ids]}


# --- 1. images --------------------------------------------------------------------------------------------------------
IMAGE_CASES = {
    # reading: (page 1, page 2 in the same session, offset=5), fits
    "cursor": (
        images(0, pagination={"nextPage": True}),
        images(5, pagination={"nextPage": True}),
        images(0, pagination={"nextPage": True}),
        True,
    ),
    "offset": (images(0), images(0), images(5), True),
    "both": (images(0), images(5), images(5), True),
    "offset_with_pagination_object": (
        images(0, pagination={"nextPage": True}),
        images(0, pagination={"nextPage": True}),
        images(5, pagination={"nextPage": True}),
        False,
    ),
    "ignores_paging": (images(0, 25), images(0, 25), images(0, 25), False),
}


@pytest.mark.parametrize("reading", list(IMAGE_CASES))
def test_images_paging_reading(reading):
    first, by_page, by_offset, fits = IMAGE_CASES[reading]
    result = probe_api.classify_images(ok(first), ok(by_page), ok(by_offset), 5)
    assert (result.reading, result.fits) == (reading, fits)


def test_images_pagination_object_is_described():
    result = probe_api.classify_images(*(ok(images(i, pagination={"page": 1, "nextPage": True})) for i in (0, 5, 0)), 5)
    assert "pagination object (nextPage: true)" in result.seen
    assert (
        "no pagination object (keys: total)"
        in probe_api.classify_images(ok(images(0)), ok(images(0)), ok(images(5)), 5).seen
    )


def test_images_as_a_bare_array_does_not_fit():
    result = probe_api.classify_images(ok([{"_id": "a"}]), ok([]), ok([]), 5)
    assert (result.reading, result.fits) == ("bare_array", False)


def test_images_too_few_to_tell():
    result = probe_api.classify_images(ok(images(0, 3)), ok(images(0, 3)), ok(images(0, 0)), 5)
    assert (result.reading, result.fits) == ("unknown", None) and "3 image(s)" in result.seen


@pytest.mark.parametrize("status", [401, 403])
def test_images_refused_names_the_scope(status):
    result = probe_api.classify_images(Answer(status, {"message": "Forbidden"}), ok(images(0)), ok(images(5)), 5)
    assert (result.reading, result.fits) == ("unknown", None)
    assert f"HTTP {status}" in result.seen and "'images' scope" in result.seen


# --- 2. workflow dates ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reading, exact, after, dates, fits",
    [
        ("exact", ["b1"], [], ["b1", "b0"], True),
        ("date_only", ["b1", "b0"], ["b1", "b0"], ["b1", "b0"], True),
        ("date_first_instant", [], [], [], True),
    ],
)
def test_workflow_dates_reading(reading, exact, after, dates, fits):
    result = probe_api.classify_workflow_dates(
        ok(builds("b1")), ok(builds(*exact)), ok(builds(*after)), ok(builds(*dates))
    )
    assert (result.reading, result.fits) == (reading, fits)


def test_workflow_windows_frame_the_newest_build():
    windows = probe_api.workflow_windows(BUILD_CREATED)
    assert windows == {
        "exact": (BUILD_CREATED, BUILD_CREATED),
        "after": ("2026-11-20T14:03:05.124Z", "2026-11-20T23:59:59.999Z"),
        "dates": ("2026-11-20", "2026-11-20"),
    }


def test_workflow_without_builds_cannot_tell():
    empty = ok(builds())
    assert probe_api.classify_workflow_dates(empty, empty, empty, empty).fits is None


def test_workflow_refused():
    refused = Answer(403, {"message": "no scope"})
    result = probe_api.classify_workflow_dates(refused, refused, refused, refused)
    assert result.fits is None and "'workflow' scope" in result.seen


# --- 3. audit ---------------------------------------------------------------------------------------------------------
BAD_FROM = Answer(400, {"message": "Invalid 'from'"})


@pytest.mark.parametrize(
    "reading, ms, iso, fits",
    [
        ("ms", (audit("e0"), audit("e1", "e0")), (BAD_FROM, BAD_FROM), True),
        ("iso", (audit("e1", "e0"), audit("e1", "e0")), (audit("e0"), audit("e1", "e0")), True),
        ("both", (audit("e0"), audit("e1", "e0")), (audit("e0"), audit("e1", "e0")), True),
        ("unknown", (audit(), audit()), (audit(), audit()), None),
    ],
)
def test_audit_time_format_reading(reading, ms, iso, fits):
    answers = [a if isinstance(a, Answer) else ok(a) for a in (*ms, *iso)]
    result = probe_api.classify_audit_format(ok(audit("e1", "e0")), *answers)
    assert (result.reading, result.fits) == (reading, fits)


def test_audit_windows_leave_the_newest_entry_out_then_take_it_in():
    windows = probe_api.audit_windows(AUDIT_CREATED)
    assert windows["ms_excluding"][1] == str(AUDIT_CREATED_MS - 1)
    assert windows["ms_including"][1] == str(AUDIT_CREATED_MS + 1)
    assert windows["iso_excluding"] == ("2026-11-19T10:00:00.000Z", "2026-11-20T09:59:59.999Z")


@pytest.mark.parametrize(
    "reading, page0, page1, page2, fits",
    [
        ("1", BAD_FROM, ok(audit("e3", "e2")), ok(audit("e1", "e0")), True),
        ("1", ok(audit("e3", "e2")), ok(audit("e3", "e2")), ok(audit("e1", "e0")), True),
        ("0", ok(audit("e3", "e2")), ok(audit("e1", "e0")), ok(audit()), True),
    ],
    ids=["page 0 refused", "page 0 taken as 1", "0-based"],
)
def test_audit_first_page(reading, page0, page1, page2, fits):
    result = probe_api.classify_audit_first_page(ok(audit("e3", "e2")), page0, page1, page2)
    assert (result.reading, result.fits) == (reading, fits)


# --- 4. analytics -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, reading, fits",
    [
        (Answer(500, {"message": "Could not get analytics report"}), "error_500", True),
        (ok({"data": [], "timeDimensions": {}}), "empty_200", True),
        (Answer(400, {"message": "dateRange in the future"}), "unknown", None),
        (Answer(403, {"message": "admins only"}), "unknown", None),
    ],
)
def test_analytics_empty_range(answer, reading, fits):
    result = probe_api.classify_analytics_empty(answer)
    assert (result.reading, result.fits) == (reading, fits)
    if answer.status == 500:
        assert "Could not get analytics report" in result.seen


BUILD_ROW = {"totalBuilds": "4", "successfulBuilds": "3", "successRate": 75, "totalDuration": 12}


@pytest.mark.parametrize(
    "answer, reading, fits",
    [
        (
            ok({"data": [{**BUILD_ROW, "time": "2026-11-24T00:00:00.000"}, {**BUILD_ROW, "time": "2026-11-25"}]}),
            "bucketed",
            True,
        ),
        (ok({"data": [BUILD_ROW]}), "aggregate", True),
        (ok({"data": [BUILD_ROW, BUILD_ROW]}), "unknown", None),  # several rows without `time`: neither reading
        (ok({"data": [{**BUILD_ROW, "time": "2026-11-24"}, BUILD_ROW]}), "unknown", None),
        (Answer(500, {"message": "Could not get analytics report"}), "unknown", None),  # no builds that week
        (Answer(403, {"message": "admins only"}), "unknown", None),
    ],
)
def test_build_rows(answer, reading, fits):
    result = probe_api.classify_build_rows(answer)
    assert (result.reading, result.fits) == (reading, fits)


@pytest.mark.parametrize(
    "days30, days120, reading, fits",
    [
        (Answer(400, {"message": "min 3 months"}), ok({"data": []}), "rejects", True),
        (ok({"data": []}), ok({"data": []}), "accepts", True),
        (Answer(500, {"message": "Could not get analytics report"}), ok({"data": []}), "accepts", True),
        # Both refused: the report or its month granularity is not there, which says nothing about 30 days.
        (Answer(400, {"message": "no such report"}), Answer(400, {"message": "no such report"}), "unknown", None),
    ],
)
def test_active_committers_30_days(days30, days120, reading, fits):
    result = probe_api.classify_active_committers(days30, days120)
    assert (result.reading, result.fits) == (reading, fits)


# --- 5, 6. rate limits and hermes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "seen, reading, fits", [([], "unknown", None), (["2"], "with", True), ([None], "without", True)]
)
def test_retry_after(seen, reading, fits):
    result = probe_api.classify_retry_after(seen)
    assert (result.reading, result.fits) == (reading, fits)


def test_hermes_counts_empty_event_data_and_public_events():
    empty = {"uri": "", "type": "", "kind": "", "account": "", "secret": ""}
    triggers = ok(
        [
            {"event": "e1", "pipeline": "p", "event-data": empty},
            {"event": "e2", "pipeline": "p", "event-data": {**empty, "uri": "e2"}},
        ]
    )
    result = probe_api.classify_hermes(triggers, ok([{"uri": "e2"}]), ok([{"uri": "e2"}, {"uri": "pub"}]))
    assert result.seen == (
        "1 of 2 trigger(s) have an empty event-data; /hermes/events lists 1 event(s), with public=true 2"
    )


# --- the whole probe against canned HTTP ------------------------------------------------------------------------------
def canned(mocker: requests_mock.Mocker, images_reading: str = "offset") -> None:
    def images_answer(request, context):
        query = parse_qs(urlsplit(request.url).query)
        offset = int(query.get("offset", ["0"])[0])
        page = int(query.get("page", ["1"])[0])
        first = offset if images_reading == "offset" else (page - 1) * 5
        return images(first) if images_reading == "offset" else images(first, pagination={"nextPage": True})

    def workflow_answer(request, context):
        query = parse_qs(urlsplit(request.url).query)
        start = query.get("startDate", [""])[0]
        return builds() if start.endswith(".124Z") else builds("b1")

    def audit_answer(request, context):
        query = parse_qs(urlsplit(request.url).query)
        to, page = query.get("to", [""])[0], query.get("page", ["1"])[0]
        if to and not to.isdigit():
            context.status_code = 400
            return {"message": "Invalid 'to'"}
        if page == "0":
            context.status_code = 400
            return {"message": "page must be >= 1"}
        if to and int(to) < AUDIT_CREATED_MS:
            return audit("e-old")
        return audit("e1", "e0") if page == "1" else audit("e-older")

    def committers_answer(request, context):
        first, last = (date.fromisoformat(d) for d in parse_qs(urlsplit(request.url).query)["dateRange"])
        if (last - first).days < 90:  # needs 3 months to 1 year
            context.status_code = 400
            return {"message": "Time dimensions are not supported for target report: activeCommitters"}
        return {"data": []}

    mocker.get(f"{BASE}/user", json={"_id": "u"})
    mocker.get(f"{BASE}/images", json=images_answer)
    mocker.get(f"{BASE}/workflow", json=workflow_answer)
    mocker.get(f"{BASE}/audit", json=audit_answer)
    mocker.get(
        f"{BASE}/analytics/reports/buildAvgDuration",
        status_code=500,
        json={"message": "Could not get analytics report"},
    )
    mocker.get(f"{BASE}/analytics/reports/activeCommitters", json=committers_answer)
    mocker.get(f"{BASE}/hermes/triggers", json=[])
    mocker.get(f"{BASE}/hermes/events", json=[], headers={"X-Echo": KEY})
    mocker.get(
        f"{BASE}/environments-v2", json={"docs": [{"metadata": {"name": "production"}, "spec": {"type": "argo"}}]}
    )
    mocker.get(f"{BASE}/annotations", status_code=404, json={"message": "Annotations not found"})
    mocker.post(GRAPHQL, json=graphql_answer)


def graphql_answer(request, context):
    """A GitOps API with `promotions`, a cap of 50, no introspection, and whole lists without `pagination`."""
    query = request.json()["query"]
    if "SourceCodefreshProbeFields" in query:
        context.status_code = 400
        return {"errors": FIELDS_ERRORS}
    if "SourceCodefreshProbeReleases" in query:
        return {"data": {"runtimes": {"edges": [{}, {}]}, "gitopsReleases": {"edges": [{}]}}}
    if "first: 51" in query:
        return {"data": {"promotions": None}, "errors": [{"message": CAP_ERROR, "path": ["promotions"]}]}
    if "first: 50" in query:
        return {"data": {"promotions": {"edges": [{}] * 50, "pageInfo": {"hasNextPage": True}}}}
    context.status_code = 400
    return {"errors": [{"message": 'GraphQL introspection is not allowed by Apollo Server, but the query contained '
                                   '__schema or __type. To enable introspection, pass introspection: true to '
                                   'ApolloServer in production'}]}  # fmt: skip


CAP_ERROR = 'Pagination "first" is limited to 50, got 51.'
MISSING = ("applications", "products", "environments", "promotionFlows", "doraMetrics", "sourceCodefreshProbeSentinel")
FIELDS_ERRORS = [{"message": f'Cannot query field "{name}" on type "Query".'} for name in MISSING] + [
    {"message": f'Unknown argument "pagination" on field "Query.{name}".'}
    for name in ("runtimes", "gitSources", "components", "pipelines", "workflows")
]


def test_the_probe_sends_only_safe_gets_and_never_shows_the_key(capsys):
    with requests_mock.Mocker() as mocker:
        canned(mocker)
        # An answer that echoes the key into a message the output quotes.
        mocker.get(
            f"{BASE}/analytics/reports/buildAvgDuration",
            status_code=500,
            json={"message": f"Could not get analytics report (key {KEY})"},
        )
        code = probe_api.main(["--api-key", KEY])
        history = mocker.request_history

    out, err = capsys.readouterr()
    assert code == 0
    assert KEY not in out and KEY not in err and KEY.split(".")[1] not in out
    gets = [r for r in history if r.method == "GET"]
    posts = [r for r in history if r.method == "POST"]
    assert len(gets) + len(posts) == len(history) == 30  # the most the probe sends (docstring, README, docs)
    assert all(any(p.match(urlsplit(r.url).path[len("/api") :]) for p in probe_api.SAFE_READS) for r in gets)
    assert {r.url for r in posts} == {GRAPHQL} and len(posts) == 5
    assert all(urlsplit(r.url).netloc == "g.codefresh.io" and r.headers["Authorization"] == KEY for r in history)
    assert all(KEY not in r.url and KEY not in (r.text or "") for r in history)
    for r in posts:  # every body is one query, made of root fields on the allowlist
        (operation,) = parse(r.json()["query"]).definitions
        assert isinstance(operation, OperationDefinitionNode) and operation.operation.value == "query"
        assert {f.name.value for f in operation.selection_set.selections} <= probe_api.SAFE_QUERY_FIELDS
    assert {"sync", "appRollback"}.isdisjoint(probe_api.SAFE_QUERY_FIELDS)
    # The readings of the canned server, and the verdicts the user reads.
    assert "reading:   offset" in out and "reading:   exact" in out and "reading:   ms" in out
    assert "reading:   error_500" in out and "reading:   rejects" in out
    assert "reading:   current" in out and "reading:   evidenced_only" in out and "reading:   50\n" in out
    assert "Every answer the probe could get fits the connector." in out
    assert "https://github.com/airbytehq/airbyte/issues" in out


def test_pages_of_one_listing_share_a_session_and_listings_do_not():
    with requests_mock.Mocker() as mocker:
        canned(mocker, images_reading="cursor")
        client = probe_api.Client(BASE, KEY, pause_seconds=0)
        findings = probe_api.probe(client, today=datetime(2026, 11, 30, tzinfo=timezone.utc))
        sessions = [
            r.headers.get("X-Pagination-Session-Id")
            for r in mocker.request_history
            if urlsplit(r.url).path.endswith("/images")
        ]
    assert findings[0].reading == "cursor"
    assert sessions[0] == sessions[1] != sessions[2] and all(sessions)


def test_unsafe_paths_are_never_requested():
    client = probe_api.Client(BASE, KEY, pause_seconds=0)
    for path in ("/builds/rebuild/abc", "/workflow/abc/pending-approval/approve", "/pipelines/run/x", "/user/x"):
        with pytest.raises(probe_api.UnsafeRequest):
            client.get(path)
    for field in ("sync", "appRollback", "deleteRuntime", "runtimes { x } mutation"):
        with pytest.raises(probe_api.UnsafeRequest):
            client.query("SourceCodefreshProbeFields", [(field, "", "__typename")])
    with pytest.raises(probe_api.UnsafeRequest):  # the operation's name is the probe's, so never `mutation ...`
        client.query("} mutation M {", [("runtimes", "", "__typename")])
    assert client.sent == [] and not hasattr(client, "post") and not hasattr(client, "mutation")


def test_a_429_stops_the_probe_and_is_reported():
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{BASE}/images", status_code=429, headers={"Retry-After": "7"}, json={"message": "slow down"})
        client = probe_api.Client(BASE, KEY, pause_seconds=0)
        findings = probe_api.probe(client, today=datetime(2026, 11, 30, tzinfo=timezone.utc))
        assert len(mocker.request_history) == 1  # nothing after the 429
    assert findings[0].fits is None and "429" in findings[0].seen
    assert (findings[-1].reading, findings[-1].fits) == ("with", True) and "'7'" in findings[-1].seen


def test_no_request_starts_after_the_time_budget():
    with requests_mock.Mocker() as mocker:
        canned(mocker)
        client = probe_api.Client(BASE, KEY, budget_seconds=-1, pause_seconds=0)
        findings = probe_api.probe(client, today=datetime(2026, 11, 30, tzinfo=timezone.utc))
        assert mocker.request_history == []
    assert findings[0].fits is None and "time budget" in findings[0].seen


def test_a_wrong_key_is_one_sentence_without_the_key(capsys):
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{BASE}/user", status_code=401, json={"message": "Unauthorized"})
        assert probe_api.main(["--api-key", KEY]) == 1
        assert len(mocker.request_history) == 1
    out, err = capsys.readouterr()
    assert (
        err.strip()
        == (
            "Codefresh rejected the API key (HTTP 401) at https://g.codefresh.io/api/user; check the "
            "key and --base-url."
        )
        and KEY not in out + err
    )


def test_a_restricted_key_is_one_sentence(capsys):
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{BASE}/user", status_code=403, json={"message": "restricted for unusual activity"})
        assert probe_api.main(["--api-key", KEY]) == 1
        assert len(mocker.request_history) == 1
    err = capsys.readouterr().err
    assert "403" in err and "restricted the key for unusual activity" in err and KEY not in err


def test_the_key_is_required_and_plain_http_refused(capsys, monkeypatch):
    monkeypatch.delenv("CODEFRESH_API_KEY", raising=False)
    assert probe_api.main([]) == 2
    assert probe_api.main(["--api-key", KEY, "--base-url", "http://codefresh.example.com/api"]) == 2
    err = capsys.readouterr().err
    assert "--api-key KEY or in the CODEFRESH_API_KEY" in err and "plain http" in err and KEY not in err


def test_an_unexpected_error_hides_the_key(capsys):
    probe_api.hide_key_in_tracebacks(KEY)
    try:
        raise RuntimeError(f"boom with {KEY} inside")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = sys.__excepthook__
    err = capsys.readouterr().err
    assert "RuntimeError: boom with <api key> inside" in err and KEY not in err


def test_the_connector_table_has_a_verdict_for_every_reading_the_questions_name():
    readings = {
        "images": {"cursor", "offset", "both", "offset_with_pagination_object", "ignores_paging", "bare_array"},
        "workflow_dates": {"exact", "date_only", "date_first_instant"},
        "audit_time_format": {"ms", "iso", "both"},
        "audit_first_page": {"0", "1"},
        "analytics_empty_range": {"empty_200", "error_500"},
        "analytics_build_rows": {"bucketed", "aggregate"},
        "active_committers_30_days": {"accepts", "rejects"},
        "retry_after": {"with", "without"},
        "environments_id": {"present", "absent", "no_name"},
        "annotations_none": {"empty_200", "not_found_404"},
        "gitops_schema": {"current", "before_promotions"},
        "gitops_invalid_query_status": {"400", "200"},
        "gitops_list_pagination": {"evidenced_only", "every_list", "mixed"},
        "gitops_releases_filter": {"optional", "required"},
        "gitops_page_cap": {"50", "clamp_50", "none", "below_50"},
        "gitops_introspection": {"disabled", "enabled"},
    }
    assert {key: set(table) for key, table in probe_api.CONNECTOR.items()} == readings
    json.dumps(probe_api.CONNECTOR)  # plain data


def _environment(with_id: bool = True, name: str = "production"):
    item = {"metadata": {"name": name} if name else {}, "spec": {"type": "argo"}}
    return {**item, "_id": "6a" + "0" * 22} if with_id else item


@pytest.mark.parametrize(
    "items, reading, fits",
    [
        ([_environment(), _environment(name="qa")], "present", True),
        ([_environment(False), _environment(False, "qa")], "absent", True),
        ([_environment(), _environment(False, "qa")], "mixed", True),
        ([_environment(False, name="")], "no_name", False),
        ([], "unknown", None),
    ],
)
def test_environments_are_keyed_right_whether_or_not_they_carry_an_id(items, reading, fits):
    result = probe_api.classify_environments_id(ok({"docs": items}))
    assert (result.reading, result.fits) == (reading, fits), result.seen


@pytest.mark.parametrize(
    "answer, reading, fits",
    [
        (ok([]), "empty_200", True),
        (Answer(404, {"message": "Annotations not found"}), "not_found_404", True),
        (Answer(403, {"message": "no scope"}), "unknown", None),
        (Answer(500, {"message": "boom"}), "unknown", None),
    ],
)
def test_an_annotation_lookup_matching_nothing_fits_either_answer(answer, reading, fits):
    result = probe_api.classify_annotations_none(answer)
    assert (result.reading, result.fits) == (reading, fits), result.seen


# --- 8. GitOps --------------------------------------------------------------------------------------------------------
def fields_answer(missing, no_pagination=(), status=400, quote='"', v15=False):
    q = lambda name: f"{quote}{name}{quote}"  # noqa: E731
    errors = [{"message": f"Cannot query field {q(name)} on type {q('Query')}."} for name in missing]
    errors += [
        {"message": f"Unknown argument {q('pagination')} on field {q(name)} of type {q('Query')}."}
        if v15
        else {"message": f"Unknown argument {q('pagination')} on field {q('Query.' + name)}."}
        for name in no_pagination
    ]
    return Answer(status, {"errors": errors})


WHOLE = ("runtimes", "gitSources", "components", "pipelines", "workflows")
UNSEEN = ("applications", "products", "environments", "promotionFlows", "doraMetrics", probe_api.SENTINEL)


@pytest.mark.parametrize(
    "answer, readings",
    [
        (fields_answer(UNSEEN, WHOLE), ("current", "400", "evidenced_only")),
        (fields_answer((*UNSEEN, "promotions"), (), status=200), ("before_promotions", "200", "every_list")),
        (fields_answer(UNSEEN, ("workflows",), quote="'"), ("current", "400", "mixed")),  # graphql-core's quotes
        (fields_answer(UNSEEN, WHOLE, v15=True), ("current", "400", "evidenced_only")),  # graphql-js 15's words
    ],
)
def test_gitops_fields_readings(answer, readings):
    found = probe_api.classify_gitops_fields(answer)
    assert tuple(f.reading for f in found) == readings
    assert [f.question for f in found] == [probe_api.Q_GITOPS_QUERIES, probe_api.Q_GITOPS_STATUS,
                                           probe_api.Q_GITOPS_LIST_PAGINATION]  # fmt: skip
    assert all(f.fits is True for f in found)  # the GitOps streams fit each reading


def test_gitops_fields_name_what_is_there_and_what_the_server_suggests():
    suggests = 'Did you mean "application" or "applicationsList"?'
    required = 'Field "productReleases" argument "productName" of type "String!" is required, but it was not provided.'
    errors = [
        f'Cannot query field "applications" on type "Query". {suggests}',
        f'Cannot query field "{probe_api.SENTINEL}" on type "Query".',
        required,
    ]
    answer = Answer(400, {"errors": [{"message": m} for m in errors]})
    (queries, _, _) = probe_api.classify_gitops_fields(answer)
    assert "absent: applications;" in queries.seen and "present: runtimes, clusters" in queries.seen
    assert "the server suggests: application, applicationsList" in queries.seen
    assert 'argument "productName" of type "String!" is required' in queries.seen


def test_gitops_fields_cannot_be_read_from_a_server_that_does_not_refuse_the_sentinel():
    found = probe_api.classify_gitops_fields(ok({"data": {"runtimes": {"edges": []}}}))
    assert all(f.reading == "unknown" and "without refusing a field no schema has" in f.seen for f in found)


@pytest.mark.parametrize(
    "answer, why",
    [
        (Answer(401, {"error": "Unauthorized: Invalid token."}), "HTTP 401 (Unauthorized: Invalid token.)"),
        (Answer(200, {"data": {"runtimes": None}, "errors": [{"message": "Forbidden", "extensions": 403}]}),
         "Forbidden"),
        (Answer(None, problem="ConnectionError"), "no answer"),
    ],
)  # fmt: skip
def test_gitops_answers_that_tell_nothing(answer, why):
    """A refused key, Forbidden, no answer: every GitOps question could not tell (and says why)."""
    found = probe_api.classify_gitops_fields(answer) + [
        probe_api.classify_gitops_releases(answer),
        probe_api.classify_gitops_page_cap("promotions", answer, None),
        probe_api.classify_gitops_introspection(answer),
    ]
    assert all(f.reading == "unknown" and why in f.seen for f in found), [f.seen for f in found]


@pytest.mark.parametrize(
    "answer, reading",
    [
        (ok({"data": {"runtimes": {"edges": [{}] * 3}, "gitopsReleases": {"edges": [{}]}}}), "optional"),
        (Answer(200, {"data": {"runtimes": {"edges": []}, "gitopsReleases": None},
                      "errors": [{"message": "filters.name is required"}]}), "required"),
    ],
)  # fmt: skip
def test_gitops_releases_without_a_filter(answer, reading):
    found = probe_api.classify_gitops_releases(answer)
    assert found.reading == reading and "GitOps runtime(s)" in found.seen


def cap(status=200, edges=None, more=False, error=None):
    body = {
        "data": {"promotions": None if edges is None else {"edges": [{}] * edges, "pageInfo": {"hasNextPage": more}}}
    }
    return Answer(status, {**body, "errors": [{"message": error}]} if error else body)


@pytest.mark.parametrize(
    "page_51, page_50, reading",
    [
        (cap(error=CAP_ERROR), cap(edges=50, more=True), "50"),
        (cap(edges=51, more=True), None, "none"),
        (cap(edges=12), None, "none"),
        (cap(edges=50, more=True), None, "clamp_50"),
        (cap(error="first must be <= 20"), cap(error="first must be <= 20, got 50"), "below_50"),
        (cap(error="no such product"), cap(error="no such product"), "unknown"),
    ],
)
def test_gitops_page_cap(page_51, page_50, reading):
    assert probe_api.classify_gitops_page_cap("promotions", page_51, page_50).reading == reading


def test_gitops_introspection():
    answered = ok({"data": {"__schema": {"queryType": {"name": "Query"}}}})
    assert probe_api.classify_gitops_introspection(answered).reading == "enabled"
    refused = Answer(400, {"errors": [{"message": "GraphQL introspection has been disabled"}]})
    assert probe_api.classify_gitops_introspection(refused).reading == "disabled"


@pytest.mark.parametrize(
    "base, url",
    [
        ("https://g.codefresh.io/api", GRAPHQL),
        ("http://127.0.0.1:8765/api", "http://127.0.0.1:8765/2.0/api/graphql"),
        ("https://cf.example.com/codefresh/api", "https://cf.example.com/codefresh/2.0/api/graphql"),
        ("https://cf.example.com", "https://cf.example.com/2.0/api/graphql"),
    ],
)
def test_the_graphql_url_is_next_to_the_api(base, url):
    assert probe_api.graphql_url_of(base) == url
    assert probe_api.Client(base + "/", KEY).graphql_url == url


def test_a_graphql_url_given_is_used_and_checked(capsys):
    with requests_mock.Mocker() as mocker:
        canned(mocker)
        mocker.post("https://gitops.example.com/graphql", json=graphql_answer)
        assert probe_api.main(["--api-key", KEY, "--graphql-url", "https://gitops.example.com/graphql"]) == 0
        posts = {r.url for r in mocker.request_history if r.method == "POST"}
    assert posts == {"https://gitops.example.com/graphql"}
    assert probe_api.main(["--api-key", KEY, "--graphql-url", "http://gitops.example.com/graphql"]) == 2
    assert "--graphql-url 'http://gitops.example.com/graphql' uses plain http" in capsys.readouterr().err
