"""One mocked sync per stream: the requests it sends, one page of answers, and the records a user should get.

`case(name)` builds a fresh `StreamCase` for each stream of the manifest: a plain stream's from its entry in
codefresh_sandbox/plain.py (the example the sandbox serves too), every other stream's from its builder here. A case
knows
- `parents`: requests for the records a child stream needs (GET /user, the builds listing, the analytics metadata),
- `own`: the stream's own requests with a one-page answer each (for pipeline_triggers, which sends no request of its
  own, the pipelines listing it reads its records from),
- `expected`: the records the sync emits, with the keys the manifest stamps and without the secrets it drops,
- `config`: overrides, e.g. a start date three days ago so that time-windowed streams read exactly one window,
- `first_params`: for requests matched with ANY_QUERY_PARAMS (unknown end of window, session header), query
  parameters the first request must carry (None: must not carry).
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml
from airbyte_cdk.sources.declarative.parsers.manifest_reference_resolver import ManifestReferenceResolver
from airbyte_cdk.test.mock_http import HttpMocker, HttpRequest

from codefresh_sandbox import plain
from source_codefresh.spec import manifest_path
from unit_tests import builders as b
from unit_tests.audit_server import AuditLog
from unit_tests.conftest import ACCOUNT_ID, any_params, error_traces, request, response, user

# A start date three days back: windowed streams (builds, audit, analytics_reports) read one window.
RECENT = b.midnight_days_ago(3)
RECENT_ISO = b.iso(RECENT)
RECENT_MS = str(int(RECENT.timestamp() * 1000))


def recent(hours: float) -> str:
    """A timestamp `hours` after RECENT (always in the past: RECENT is three days back)."""
    return b.iso(RECENT + timedelta(hours=hours))


@dataclass
class StreamCase:
    name: str
    own: List[Tuple[HttpRequest, Any]]
    expected: List[Dict[str, Any]]
    parents: List[Tuple[HttpRequest, Any]] = field(default_factory=list)
    config: Dict[str, Any] = field(default_factory=dict)
    scope: Optional[str] = None
    records_key: Optional[str] = None  # the envelope key the records are under, as a user reads it in a message
    first_params: Dict[str, str] = field(default_factory=dict)
    # Strings that must appear nowhere in the output (secrets the stream drops).
    secrets: List[str] = field(default_factory=list)
    # A stream that asks single-entry questions before its pages (audit) is answered by a mocked server:
    # `install(http_mocker, injected)` with the answer(s) for its first page, or None.
    install: Optional[Callable[[HttpMocker, Any], None]] = None

    def own_path(self, index: int = 0) -> str:
        """The path under the API root of the stream's own request `index`, e.g. `builds/<id>`."""
        return self.own[index][0].path

    def mock(
        self,
        http_mocker: HttpMocker,
        own_answer: Optional[Callable[[int, Any], Any]] = None,
    ) -> None:
        """Registers the parents' answers and the stream's own: `own_answer(index, body)` may replace the latter
        with an HttpResponse or a list of them."""
        for req, body in self.parents:
            http_mocker.get(req, response(body))
        if self.install is not None:
            self.install(http_mocker, own_answer(0, self.own[0][1]) if own_answer else None)
            return
        for index, (req, body) in enumerate(self.own):
            answer = own_answer(index, body) if own_answer else None
            if answer is None:
                answer = response(body)
            http_mocker.get(req, answer)


def _strip(record: Dict[str, Any], *paths: Tuple[str, ...]) -> Dict[str, Any]:
    out = copy.deepcopy(record)
    for path in paths:
        node = out
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return out


# --- one builder per stream ------------------------------------------------------------------------------------------


def _current_user() -> StreamCase:
    me = user()
    return StreamCase("current_user", [(request("user"), me)], [{**me, "active_account_id": ACCOUNT_ID}])


def _accounts() -> StreamCase:
    people = [b.account_user(0), b.account_user(1)]
    return StreamCase(
        "accounts",
        own=[(request(f"accounts/{ACCOUNT_ID}/users"), people)],
        parents=[(request("user"), user())],
        expected=people,
        scope="account admin",
    )


def _teams() -> StreamCase:
    teams = [b.team(0), b.team(1)]
    return StreamCase("teams", [(request("team"), teams)], teams, scope="team")


def _account_settings() -> StreamCase:
    settings = b.account_settings()
    return StreamCase(
        "account_settings",
        own=[(request("account-settings"), settings)],
        parents=[(request("user"), user())],
        expected=[{**settings, "account_id": ACCOUNT_ID}],
        scope="account admin",
    )


def _api_keys() -> StreamCase:
    keys = [b.api_key(0), b.api_key(1)]
    return StreamCase("api_keys", [(request("auth/keys"), keys)], keys, scope="auth")


def _projects() -> StreamCase:
    projects = [b.project(0, "2026-10-22T08:49:50.162Z"), b.project(1, "2026-10-02T11:00:00.000Z")]
    return StreamCase(
        "projects",
        [(request("projects", {"limit": "100"}), {"projects": projects})],
        projects,
        scope="project",
        records_key="projects",
    )


def _pipelines() -> StreamCase:
    pipelines = [
        b.pipeline(0, "2026-10-15T10:38:34.121Z", triggers=[b.git_trigger(0, 0)], cron_triggers=[b.cron_trigger(0, 0)]),
        b.pipeline(1, "2026-10-01T09:00:00.000Z"),
    ]
    expected = []
    for p in pipelines:
        record = {**copy.deepcopy(p), "id": p["metadata"]["id"], "updated_at": p["metadata"]["updated_at"]}
        for trigger in record["spec"]["triggers"]:
            trigger.pop("secret")  # the webhook secret of git triggers
        expected.append(record)
    return StreamCase(
        "pipelines",
        [(request("pipelines", {"limit": "100"}), {"docs": pipelines, "count": 2})],
        expected,
        scope="pipeline",
        records_key="docs",
        secrets=[b.git_trigger(0, 0)["secret"]],
    )


def _pipeline_triggers() -> StreamCase:
    first = b.pipeline(0, triggers=[b.git_trigger(0, 0)], cron_triggers=[b.cron_trigger(0, 0)])
    second = b.pipeline(1, triggers=[b.git_trigger(0, 1), b.git_trigger(1, 1)])
    expected = [
        {**_strip(t, ("secret",)), "pipeline_id": p["metadata"]["id"]}
        for p in (first, second)
        for t in p["spec"]["triggers"] + p["spec"]["cronTriggers"]
    ]
    secrets = [t["secret"] for p in (first, second) for t in p["spec"]["triggers"]]
    return StreamCase(
        "pipeline_triggers",
        [(request("pipelines", {"limit": "100"}), {"docs": [first, second], "count": 2})],
        expected,
        scope="pipeline",
        records_key="docs",
        secrets=secrets,
    )


def _listed_builds(partitions: int = 2) -> List[Tuple[int, Dict[str, Any]]]:
    """(index, build) of the builds the listing returns, newest first as /workflow lists them."""
    return [(2, b.build(2, recent(34))), (1, b.build(1, recent(10)))][-partitions:]


def _builds_listing(builds: List[Dict[str, Any]]) -> Tuple[HttpRequest, Any]:
    return any_params("workflow"), b.cursor_page(builds, 1, False, "workflows")


BUILDS_FIRST_PARAMS = {"page": "1", "limit": "100", "startDate": RECENT_ISO}


def _builds() -> StreamCase:
    builds = [build for _, build in _listed_builds()]
    return StreamCase(
        "builds",
        [_builds_listing(builds)],
        builds,
        config={"start_date": RECENT_ISO},
        scope="workflow",
        records_key="workflows.docs",
        first_params=BUILDS_FIRST_PARAMS,
    )


def _build_details(partitions: int = 2) -> StreamCase:
    listed = _listed_builds(partitions)
    details = [b.build_detail(i, build["created"]) for i, build in listed]
    return StreamCase(
        "build_details",
        own=[(request(f"builds/{d['id']}"), d) for d in details],
        parents=[_builds_listing([build for _, build in listed])],
        expected=details,
        config={"start_date": RECENT_ISO},
        scope="build",
    )


def _build_steps(partitions: int = 2) -> StreamCase:
    builds = [build for _, build in _listed_builds(partitions)]
    own, expected = [], []
    for build in builds:
        steps = b.default_steps()
        own.append((request(f"workflow/{build['id']}/context-revision"), b.context_revisions(build["id"], steps)))
        expected += [
            {"name": name, **step, "build_id": build["id"], "build_created": build["created"]}
            for name, step in steps.items()
            if name != "Initializing"
        ]
    return StreamCase(
        "build_steps",
        own,
        expected,
        parents=[_builds_listing(builds)],
        config={"start_date": RECENT_ISO},
        scope="workflow",
    )


def _triggers() -> StreamCase:
    links = [b.hermes_trigger(0), b.hermes_trigger(1)]
    return StreamCase(
        "triggers",
        [(request("hermes/triggers"), links)],
        [_strip(t, ("event-data", "secret")) for t in links],
        scope="pipeline",
        secrets=[t["event-data"]["secret"] for t in links],
    )


def _trigger_events() -> StreamCase:
    events = [b.hermes_event(0), b.hermes_event(1)]
    return StreamCase(
        "trigger_events",
        [(request("hermes/events"), events)],
        [
            {**_strip(e, ("secret",)), "endpoint": e["endpoint"].replace(e["secret"], "REDACTED")}  # also in the URL
            for e in events
        ],
        scope="pipeline",
        secrets=[e["secret"] for e in events],
    )


def _step_types() -> StreamCase:
    types = [b.step_type(0), b.step_type(1)]
    return StreamCase(
        "step_types",
        [(request("step-types", {"limit": "100"}), {"docs": types})],
        [{**t, "id": t["metadata"]["id"]} for t in types],
        scope="step-type",
        records_key="docs",
    )


def _contexts() -> StreamCase:
    contexts = [b.context(0), b.context(1), b.context(2)]
    secrets = ["ghp_secret", "npm_secret"]
    return StreamCase(
        "contexts",
        [(request("contexts"), contexts)],  # exactly no query parameters: never `decrypt`
        [{**_strip(c, ("spec", "data")), "name": c["metadata"]["name"]} for c in contexts],
        scope="context",
        secrets=secrets,
    )


def _execution_contexts() -> StreamCase:
    items = [b.execution_context(0), b.execution_context(1)]
    return StreamCase(
        "execution_contexts",
        [(request("execution-contexts"), {"docs": items})],
        items,
        scope="execution-context",
        records_key="docs",
    )


def _runtime_environments() -> StreamCase:
    items = [b.runtime_environment(0), b.runtime_environment(1)]
    return StreamCase(
        "runtime_environments",
        [(request("runtime-environments", {"limit": "100"}), items)],
        [{**r, "name": r["metadata"]["name"]} for r in items],
        scope="runtime-environment",
    )


def _agents() -> StreamCase:
    items = [b.agent(0), b.agent(1)]
    return StreamCase("agents", [(request("agents"), items)], items, scope="agent")


def _helm_repos() -> StreamCase:
    items = [b.helm_repository(0), b.helm_repository(1)]
    return StreamCase("helm_repos", [(request("helm/repos"), items)], items, scope="helm")


def _environments() -> StreamCase:
    # No source shows an `_id` on these items (FIDELITY.md 2): one with, one without; the key is `metadata.name`.
    without_id = {k: v for k, v in b.environment(1).items() if k != "_id"}
    items = [b.environment(0), without_id]
    return StreamCase(
        "environments",
        [(request("environments-v2"), {"docs": items, "count": 2})],
        [{**r, "name": r["metadata"]["name"]} for r in items],
        scope="environments-v2",
        records_key="docs",
    )


def _views() -> StreamCase:
    items = [b.view(0), b.view(1)]
    body = {"docs": items, "total": 2, "limit": 100, "page": 1, "pages": 1, "offset": 0}
    return StreamCase(
        "views",
        [(request("views/", {"limit": "100", "page": "1"}), body)],
        items,
        scope="view",
        records_key="docs",
    )


def _images() -> StreamCase:
    items = [b.image(0, "2026-10-31T22:59:21.139Z"), b.image(1, "2026-10-30T08:00:00.000Z")]
    return StreamCase(
        "images",
        [(any_params("images"), b.cursor_page(items, 1, False))],
        items,
        scope="images",
        records_key="docs",
        first_params={"page": "1", "limit": "100"},
    )


def _audit() -> StreamCase:
    entries = [b.audit_entry(1, recent(40)), b.audit_entry(0, recent(20))]

    def install(http_mocker: HttpMocker, injected: Any) -> None:
        # Bounds in epoch milliseconds (the spec's form); single-entry questions come first (source_codefresh/audit.py).
        log = AuditLog(entries)
        if injected is not None:
            log.inject(injected)
        log.install(http_mocker)

    return StreamCase(
        "audit",
        [(any_params("audit"), {"data": entries})],
        [_strip(e, ("req_body",), ("res_body",)) for e in entries],
        config={"start_date": RECENT_ISO},
        scope="audit",
        records_key="data",
        first_params={"page": None, "pageSize": "100", "from": RECENT_MS},  # the first page: without `page`
        secrets=["audit-secret-body", "audit-secret-response"],
        install=install,
    )


def _analytics_metadata() -> StreamCase:
    metadata = b.analytics_metadata(["creditConsumption", "buildAvgDuration"])
    return StreamCase(
        "analytics_metadata",
        [(request("analytics/metadata"), metadata)],
        list(metadata["reports"].values()),
        scope="account admin",
        records_key="reports",
    )


def report_rows_request(report: str, first_day: str, last_day: str, granularity: str = "day") -> HttpRequest:
    return request(f"analytics/reports/{report}", {"dateRange": [first_day, last_day], "granularity": granularity})


def _analytics_reports(partitions: int = 2) -> StreamCase:
    first, today = RECENT.date(), b.midnight_days_ago(0).date()
    credits = [b.report_row(first, "small", 330.94), b.report_row(first + timedelta(days=1), "large", 12.5)]
    # Build-duration rows: no key, counts as strings; one per day bucket, so `time` keeps them apart.
    durations = [b.build_report_row(first), b.build_report_row(first + timedelta(days=1), 7, 5)]
    own = [
        (report_rows_request("creditConsumption", first.isoformat(), today.isoformat()), {"data": credits}),
        (report_rows_request("buildAvgDuration", first.isoformat(), today.isoformat()), {"data": durations}),
    ][:partitions]
    window = {"date_range_first": first.isoformat(), "date_range_last": today.isoformat()}  # the dateRange asked
    expected = [{**r, **window, "reportName": "creditConsumption"} for r in credits] + [
        {**r, **window, "reportName": "buildAvgDuration", "key": "-"} for r in durations
    ]
    reports = ["creditConsumption", "buildAvgDuration"][:partitions]
    expected = [r for r in expected if r["reportName"] in reports]
    return StreamCase(
        "analytics_reports",
        own,
        expected,
        parents=[(request("analytics/metadata"), b.analytics_metadata(reports))],
        config={"start_date": RECENT_ISO},
        scope="account admin",
        records_key="data",
    )


@functools.lru_cache(maxsize=1)
def _stream_parameters() -> Dict[str, Dict[str, Any]]:
    manifest = ManifestReferenceResolver().preprocess_manifest(yaml.safe_load(manifest_path().read_text()))
    return {
        stream["$parameters"]["name"]: stream["$parameters"] for stream in manifest["definitions"]["streams"].values()
    }


# The first request of each paging family: the connector's page size, and the first page.
PLAIN_FIRST_PARAMS: Dict[str, Optional[Dict[str, str]]] = {
    "none": None,
    "offset": {"limit": "100"},
    "page": {"limit": "100", "page": "1"},
}


def plain_case(endpoint: plain.PlainEndpoint) -> StreamCase:
    """A plain stream: its example as the one page of its request, and as the records (the manifest changes none)."""
    records = [copy.deepcopy(dict(record)) for record in endpoint.example]
    return StreamCase(
        endpoint.stream,
        [(request(endpoint.path.lstrip("/"), PLAIN_FIRST_PARAMS[endpoint.paging]), endpoint.answer(records))],
        records,
        scope=_stream_parameters()[endpoint.stream].get("scope"),  # the manifest's (the sandbox gates none)
        records_key=endpoint.records_key or None,
    )


BUILDERS: Dict[str, Callable[[], StreamCase]] = {
    "current_user": _current_user,
    "accounts": _accounts,
    "teams": _teams,
    "account_settings": _account_settings,
    "api_keys": _api_keys,
    "projects": _projects,
    "pipelines": _pipelines,
    "pipeline_triggers": _pipeline_triggers,
    "builds": _builds,
    "build_details": _build_details,
    "build_steps": _build_steps,
    "triggers": _triggers,
    "trigger_events": _trigger_events,
    "step_types": _step_types,
    "contexts": _contexts,
    "execution_contexts": _execution_contexts,
    "runtime_environments": _runtime_environments,
    "agents": _agents,
    "helm_repos": _helm_repos,
    "environments": _environments,
    "views": _views,
    "images": _images,
    "audit": _audit,
    "analytics_metadata": _analytics_metadata,
    "analytics_reports": _analytics_reports,
    **{endpoint.stream: functools.partial(plain_case, endpoint) for endpoint in plain.ENDPOINTS},
}

ALL_STREAMS = list(BUILDERS)
# The streams of Codefresh's GraphQL API (definitions.gitops), which send POSTs these REST cases do not describe.
GITOPS_STREAMS = [
    "gitops_runtimes",
    "gitops_clusters",
    "gitops_git_sources",
    "gitops_components",
    "gitops_releases",
    "gitops_promotions",
    "gitops_workflows",
    "gitops_workflow_nodes",
    "gitops_pipelines",
]
SCOPED_STREAMS = [name for name in ALL_STREAMS if name != "current_user"]
ENVELOPE_STREAMS = [name for name in ALL_STREAMS if BUILDERS[name]().records_key]
PER_BUILD_STREAMS = ["build_details", "build_steps"]


PARTITIONED = {"build_details", "build_steps", "analytics_reports"}


def case(name: str, partitions: int = 2) -> StreamCase:
    """The case of a stream; `partitions` is the number of builds or reports of a per-build or per-report stream
    (1 for a sync that fails: a failing sync may stop before it sends every request)."""
    return BUILDERS[name](partitions) if name in PARTITIONED else BUILDERS[name]()


# --- what the tests compare ----------------------------------------------------------------------------------------


def canonical(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Records in a stable order, whatever order the concurrent reads finished in.

    Top-level null fields are left out: the CDK's message serializer omits them from every record it emits."""
    records = [{key: value for key, value in record.items() if value is not None} for record in records]
    return sorted(records, key=lambda record: json.dumps(record, sort_keys=True))


def first_only(answer: Callable[[Any], Any]) -> Callable[[int, Any], Any]:
    """An `own_answer` for StreamCase.mock: `answer(page)` for the stream's first own request, the page for the rest."""
    return lambda index, body: answer(body) if index == 0 else None


def stream_failure(output: Any, stream: str) -> Any:
    """The error trace of the failed stream (not the sync's closing 'did not sync successfully' trace)."""
    traces = [t for t in error_traces(output) if t.stream_descriptor is not None]
    assert traces, f"the sync should fail on stream {stream}; error traces: {error_traces(output)}"
    return traces[0]
