"""The sandbox's data: `SandboxConfig` (sizes, seed, anchor, server options) and `SandboxData` (every record,
generated once and deterministically, plus the mutable build state).

Generation order is fixed (accounts, runtimes, resources, pipelines, builds, images, audit, analytics; then the
plain endpoints' copies of their examples, which draw nothing) and every draw comes from one `random.Random(seed)`,
so the same config always yields the same JSON. Record shapes live in
the family modules; this module orchestrates them and owns what changes at run time:

- pipeline runs (`start_run`, then one state per `GET /builds/{id}`),
- `advance()` (the sandbox clock moves on, new builds appear, unfinished builds finish),
- the expected counts a test compares a sync against (`expected_counts()`).

Everything mutable is guarded by `self.lock`.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, List, Optional

from . import accounts, analytics, audit, builds, gitops_data, images, pipelines, plain, progress, resources
from .builds import BuildState
from .common import DAY_MS, MINUTE_MS, Gen, dumps, iso, parse_iso_ms

# The anchor of the sandbox's own tests, whose requests name days of the data (test_sandbox.py, ...).
FIXED_ANCHOR = "2026-11-01T00:00:00Z"


def recent_anchor(today: Optional[date] = None) -> str:
    """The default anchor (the data's "now"): midnight UTC of the first day of last month, so the account is as recent
    on any date as a real one is (what the connector reads depends on today: analytics a year back at most, builds
    followed for some hours). On 2026-12-06 it is 2026-11-01, the anchor the figures of the docs were taken with."""
    today = today or datetime.now(timezone.utc).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return f"{last_month.isoformat()}T00:00:00Z"


@dataclass
class SandboxConfig:
    """Everything that shapes a sandbox. Sizes are record counts; the defaults give every paged endpoint several
    pages of 100."""

    seed: int = 42
    anchor: str = field(default_factory=recent_anchor)  # the data's "now"; builds span `build_days` before it
    builds: int = 500
    build_days: int = 90
    unfinished_fraction: float = 0.02  # the newest ~2 % of builds are not finished
    pipelines: int = 250
    projects: int = 130
    step_types: int = 230
    runtime_environments: int = 120
    hermes_triggers: int = 40
    hermes_events: int = 30
    contexts: int = 25
    execution_contexts: int = 6
    agents: int = 5
    helm_repos: int = 6
    environments: int = 8
    views: int = 15
    images: int = 450
    audit: int = 1200
    account_users: int = 12
    teams: int = 4
    api_keys: int = 5
    registries: int = 7  # GET /registries (one of each kind)
    clusters: int = 4  # GET /clusters
    plain_records: int = 150  # each plain endpoint's records (plain.py): the example's, then copies; two pages of 100
    run_polls_to_finish: int = 2  # GET /builds/{id} polls until a pipeline run is terminal
    # readings of the API the evidence leaves open (README "Readings"); the defaults are the best-supported ones
    images_paging: str = "offset"  # offset | cursor | ignores_paging (images.IMAGES_PAGING)
    audit_time_format: str = "ms"  # /audit reads from/to as `ms` (epoch ms) or `iso`; the other is ignored
    audit_cap: int = 50_000  # /audit lists at most this many entries per query (docs: 50,000)
    audit_first_page: str = "1"  # /audit numbers its pages from `1` or from `0` (no `page`: the first)
    analytics_empty_range: str = "error_500"  # a report range without data: `error_500` (documented) or `empty_200`
    analytics_build_rows: str = "bucketed"  # build-duration reports: a row per granularity bucket, or one `aggregate`
    workflow_dates: str = "exact"  # /workflow startDate/endDate: exact | date_only | date_first_instant
    annotations_none: str = "empty_200"  # GET /annotations matching nothing: `empty_200` ([]) or `not_found_404`
    environments_id: str = "present"  # GET /environments-v2 items: with an `_id` (`present`) or without (`absent`)
    # GitOps (POST /2.0/api/graphql, gitops.py): sizes, the readings of the GraphQL API, the account's GitOps state
    gitops_runtimes: int = 3
    gitops_clusters: int = 12  # in all: each runtime's own, then managed ones (`prod-N`, `staging-N`) in turn
    gitops_apps: int = 8  # Argo CD applications: a product in staging and in production
    gitops_releases: int = 400  # their syncs (the deployment history), spread over `build_days`
    gitops_promotions: int = 120
    gitops_workflows: int = 240
    gitops_pipelines: int = 6  # Argo Events pipelines
    gitops_schema: str = "current"  # `current` | `before_promotions`: a server older than v1.3808.0 (no `promotions`)
    gitops_page_cap: str = "50"  # `50`: a larger `first` or `last` is an error | `none`
    gitops_invalid_query_status: str = "400"  # the HTTP status of a query refused before execution: `400` | `200`
    gitops_list_pagination: str = "evidenced_only"  # which lists take `pagination`: `evidenced_only` | `every_list`
    gitops_releases_filter: str = "optional"  # gitopsReleases without an application: `optional` | `required`
    gitops_introspection: str = "disabled"  # `disabled` | `enabled`
    gitops_account: str = "enabled"  # `enabled` | `empty`: an account without GitOps (no runtime, every list empty)
    gitops_access: str = "granted"  # `granted` | `forbidden`: a key without GitOps access (every field: Forbidden)
    gitops_date_filters: str = "honoured"  # `honoured` | `ignored`: the GraphQL lists' date filters
    # server options
    host: str = "127.0.0.1"
    port: int = 0  # 0 = an ephemeral port
    latency_ms: float = 0.0  # added to every /api answer
    faults: List[Dict[str, Any]] = field(default_factory=list)
    verbose: bool = False  # log one line per request (never headers)
    # build logs (progress.py): the archive's shapes, and the archives a test needs
    build_log_shape: str = "mixed"  # `list` | `object` | `mixed`: `steps` and `logs` as arrays or objects
    build_log_huge_every: int = 0  # every N-th build (by age) has a step with a huge log
    build_log_huge_mb: float = 50.0  # ... of this many MB of text
    build_log_missing_every: int = 0  # every N-th build's archive is gone (storage 404)
    build_log_expired_every: int = 0  # every N-th build's progress job hands out an expired URL (403)
    build_log_url_ttl_seconds: int = 900  # lifetime of the other signed URLs
    build_log_url_base: Optional[str] = None  # the storage origin in signed URLs (default: the storage port's)
    storage_port: int = 0  # the log storage's own port (0 = an ephemeral port)


# A small account for tests: every endpoint still pages (a few pages at the connector's page size of 100 where it
# matters) and every stream has records, in a sandbox that starts in a fraction of a second.
# `SandboxConfig(**dict(SMALL_ACCOUNT, builds=20))` to change one size.
SMALL_ACCOUNT: Dict[str, Any] = dict(
    builds=60,
    pipelines=12,
    projects=4,
    step_types=10,
    runtime_environments=6,
    images=30,
    audit=40,
    hermes_triggers=5,
    hermes_events=5,
    account_users=4,
    views=3,
    gitops_releases=80,
    gitops_promotions=30,
    gitops_workflows=40,
)

READINGS = {
    "images_paging": images.IMAGES_PAGING,
    "audit_time_format": ("ms", "iso"),
    "audit_first_page": audit.FIRST_PAGES,
    "analytics_empty_range": ("error_500", "empty_200"),
    "analytics_build_rows": analytics.BUILD_ROWS,
    "workflow_dates": builds.WORKFLOW_DATES,
    "annotations_none": builds.ANNOTATIONS_NONE,
    "environments_id": resources.ENVIRONMENTS_ID,
    **gitops_data.READINGS,
}
# The account's state (and a reading the probe does not ask): validated and offered as flags like the readings.
STATES = gitops_data.STATES


class SandboxData:
    def __init__(self, config: Optional[SandboxConfig] = None):
        cfg = config or SandboxConfig()
        for name, allowed in {**READINGS, **STATES}.items():
            if getattr(cfg, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(cfg, name)!r}")
        if cfg.audit_cap < 1:
            raise ValueError("audit_cap must be at least 1")
        if cfg.build_log_shape not in progress.LOG_SHAPES:
            shapes = ", ".join(progress.LOG_SHAPES)
            raise ValueError(f"build_log_shape must be one of {shapes}, not {cfg.build_log_shape!r}")
        self.config = cfg
        self.seed = cfg.seed
        self.anchor_ms = parse_iso_ms(cfg.anchor)
        self.clock_ms = self.anchor_ms  # the sandbox clock: moves on with runs and advance()
        self.lock = threading.RLock()
        self.deleted_every: Optional[int] = None  # set by the server from a `deleted_builds` fault rule
        g = Gen(cfg.seed, self.anchor_ms)

        accounts.generate(g, cfg, self)
        self.people = [
            {
                "userName": u["userName"],
                "avatar": u["user_data"]["image"] or f"https://avatars.example.com/u/{u['userName']}",
            }
            for u in self.users.records
        ]
        resources.generate_runtimes(g, cfg, self)
        resources.generate(g, cfg, self)
        pipelines.generate(g, cfg, self)

        self.pack_id = g.oid(self.anchor_ms - 400 * DAY_MS)
        self.annotations: List[Dict[str, Any]] = []
        self.builds: List[BuildState] = []  # oldest first (ascending `created`)
        self.build_json: List[bytes] = []  # the serialized record of each build, without its YAML texts
        self.created_ms: List[int] = []
        self.by_id: Dict[str, BuildState] = {}
        self.by_progress: Dict[str, BuildState] = {}  # by the build's progress (logs) job id
        self.unfinished: set = set()
        for st in builds.generate(g, cfg, self):
            self._append(st)
        pipelines.finalize(self)

        images.generate(g, cfg, self)
        audit.generate(g, cfg, self)
        analytics.generate(g, cfg, self)
        # Generated last, from their own draws, so that adding them changed no other record.
        resources.generate_registries_and_clusters(Gen(cfg.seed * 6007 + 29, self.anchor_ms), cfg, self)
        self._live = Gen(cfg.seed * 7919 + 17, self.anchor_ms)  # ids and draws of runs and advance()
        self.gitops = gitops_data.GitopsData(cfg, self)  # its own draws too; links releases to the builds above
        plain.generate(cfg, self)  # copies of each plain endpoint's example: no draw at all

    # ---------------------------------------------------------------------------------------------------------
    # builds: storage
    # ---------------------------------------------------------------------------------------------------------
    def _append(self, st: BuildState) -> None:
        st.index = len(self.builds)
        self.builds.append(st)
        self.build_json.append(dumps(st.doc))
        self.created_ms.append(st.created_ms)
        self.by_id[st.doc["id"]] = st
        self.by_progress[st.doc["progress"]] = st
        if not st.finished:
            self.unfinished.add(st.index)

    def _store(self, st: BuildState) -> None:
        d = st.doc
        d["created"], d["started"], d["finished"] = iso(st.created_ms), iso(st.started_ms), iso(st.finished_ms)
        d["updated"] = iso(st.finished_ms or st.started_ms or st.created_ms)
        builds.settle(st)
        self.build_json[st.index] = dumps(d)
        if st.finished:
            self.unfinished.discard(st.index)
        else:
            self.unfinished.add(st.index)

    def build_item(self, index: int) -> bytes:
        """The JSON of build `index` as GET /workflow and GET /builds/{id} answer it."""
        return builds.item_json(self.builds[index], self.build_json[index])

    def find_build(self, build_id: str) -> Optional[BuildState]:
        return self.by_id.get(build_id)

    def get_build(self, build_id: str) -> Optional[Dict[str, Any]]:
        """A copy of a build's list item (for tests)."""
        with self.lock:
            st = self.by_id.get(build_id)
            return None if st is None else dict(st.doc)

    def build_ids(self) -> List[str]:
        """Every build id, newest first."""
        with self.lock:
            return [st.doc["id"] for st in reversed(self.builds)]

    def is_deleted(self, st: BuildState) -> bool:
        every = self.deleted_every
        return bool(every) and not st.is_run and (st.index + 1) % every == 0

    def select_builds(self, start: Optional[int], end: Optional[int], filters: Dict[str, List[str]]) -> Any:
        """Build indexes, newest first, with `start <= created <= end` and the list filters."""
        with self.lock:
            lo = 0 if start is None else bisect.bisect_left(self.created_ms, start)
            hi = len(self.builds) if end is None else bisect.bisect_right(self.created_ms, end)
            window = range(hi - 1, lo - 1, -1)
            if not filters:
                return window
            fields = {
                "status": "status",
                "pipeline": "serviceId",
                "branchName": "branchName",
                "revision": "revision",
                "trigger": "trigger",
                "pipelineTriggerId": "pipelineTriggerId",
            }
            checks = [(fields[k], set(v)) for k, v in filters.items()]
            return [i for i in window if all(self.builds[i].doc[f] in vs for f, vs in checks)]

    # ---------------------------------------------------------------------------------------------------------
    # builds: lifecycle
    # ---------------------------------------------------------------------------------------------------------
    def _finish(self, st: BuildState, when_ms: int) -> None:
        if st.started_ms is None:
            st.started_ms = min(st.created_ms + 1_000, max(when_ms - 1_000, st.created_ms))
        st.finished_ms = max(when_ms, st.started_ms + 1_000)
        st.cut = st.final_cut
        d = st.doc
        d["status"] = st.final_status
        d["pendingReason"] = None
        d["delayed"] = 0
        d["pendingApprovals"] = []
        if st.final_status == "terminated":
            d["terminationRequest"] = builds.termination_requests(d["id"], d["initiator"], st.finished_ms)
        d["systemEvents"] = builds.system_events(d["id"], st.pipeline, st.final_status, st.cut, st.finished_ms)
        self._store(st)

    def _poll(self, st: BuildState) -> None:
        """One GET /builds/{id} of a pipeline run: pending -> running -> terminal after run_polls_to_finish."""
        st.polls += 1
        if st.polls >= max(1, self.config.run_polls_to_finish):
            self._finish(st, st.created_ms + 1_000 + 5_000 * st.polls)
        elif st.doc["status"] == "pending":
            st.doc["status"] = "running"
            st.doc["pendingReason"] = None
            st.started_ms = st.created_ms + 1_000
            st.cut = 1
            self._store(st)

    def build_detail(self, st: BuildState) -> bytes:
        """GET /builds/{id}: moves a pipeline run on, then answers the build (the same object the list holds)."""
        with self.lock:
            if st.is_run and not st.finished:
                self._poll(st)
            return self.build_item(st.index)

    def start_run(self, p: Any, body: Dict[str, Any]) -> str:
        """POST /pipelines/run/{name}: a new `pending` build carrying the body's annotations."""
        with self.lock:
            g = self._live
            self.clock_ms += 1_000
            created = max(self.clock_ms, self.created_ms[-1] + 1 if self.created_ms else 0)
            wanted = body.get("trigger")
            trigger = next((t for t in p.git_triggers if wanted in (t["id"], t["name"])), None) if wanted else None
            n_steps = len(p.steps)
            kinds = [k for _, k in p.steps]
            final_cut = (
                n_steps
                if p.outcome == "success"
                else kinds.index("pending-approval") + 1
                if p.outcome == "denied" and "pending-approval" in kinds
                else g.randint(1, n_steps)
            )
            st = builds.make_build(
                g,
                self,
                p,
                created,
                "pending",
                p.outcome,
                None,
                None,
                0,
                final_cut,
                trigger_kind="manual",
                branch=str(body.get("branch") or "main"),
                sha=str(body["sha"]) if body.get("sha") else None,
                initiator=self.people[0],
                pipeline_trigger=trigger,
                is_run=True,
            )
            for key, value in (body.get("annotations") or {}).items():
                builds.add_annotation(self, st, str(key), value, created, g.oid(created))
            self._append(st)
            return st.doc["id"]

    def advance(
        self,
        new_builds: int = 0,
        finish_running: bool = True,
        minutes: float = 60,
        new_unfinished: int = 0,
        keep_running: Any = (),
        spread_unfinished: bool = False,
        new_gitops: int = 0,
    ) -> Dict[str, Any]:
        """Move the sandbox clock on by `minutes`; finish every unfinished build (if `finish_running`) but those whose
        id is in `keep_running` (a build waiting on an approval for days); then add `new_builds` builds created in
        the elapsed interval, `new_unfinished` of them still running: the newest, or with `spread_unfinished` spread
        evenly among the new builds (some accounts keep builds pending for days between finished ones). GitOps
        records alike: unfinished releases, promotions and workflows finish (ids in `keep_running` excepted), then
        `new_gitops` of each are added (the newest `new_unfinished` of each running); `gitops` in the answer lists
        their ids."""
        keep = set(keep_running or ())
        with self.lock:
            g = self._live
            old = self.clock_ms
            self.clock_ms = new = old + int(minutes * MINUTE_MS)
            finished: List[str] = []
            if finish_running:
                for i in sorted(self.unfinished):
                    st = self.builds[i]
                    if st.doc["id"] in keep:
                        continue
                    self._finish(st, max(new - 1_000, (st.started_ms or st.created_ms) + 1_000))
                    finished.append(st.doc["id"])
            added: List[str] = []
            infos = self.pipeline_infos
            for j in range(max(0, new_builds) if infos else 0):
                created = old + (j + 1) * (new - old) // (new_builds + 2)
                created = max(created, self.created_ms[-1] + 1 if self.created_ms else created)
                p = infos[min(len(infos) - 1, int(len(infos) * g.rng.random() ** 1.7))]
                n_steps = len(p.steps)
                unfinished = min(max(0, new_unfinished), new_builds)
                if spread_unfinished:
                    running = (j + 1) * unfinished // new_builds != j * unfinished // new_builds
                else:
                    running = j >= new_builds - unfinished
                status = "success" if g.rng.random() < 0.8 else "error"
                final_cut = builds.plan_cut(g, n_steps, status)
                started = created + g.randint(1_000, 20_000)
                if running:
                    st = builds.make_build(
                        g, self, p, created, "running", status, started, None, g.randint(1, final_cut), final_cut
                    )
                else:
                    end = max(started + 1_000, min(started + g.randint(30_000, 600_000), new - 1))
                    st = builds.make_build(g, self, p, created, status, status, started, end, final_cut, final_cut)
                self._append(st)
                added.append(st.doc["id"])
            moved = self.gitops.advance(old, new, finish_running, new_gitops, new_unfinished, keep)
            return {"clock": iso(new), "finished": finished, "added": added, "gitops": moved}

    # ---------------------------------------------------------------------------------------------------------
    # expectations
    # ---------------------------------------------------------------------------------------------------------
    def expected_counts(self) -> Dict[str, int]:
        """For every endpoint family, how many records the API would return now (full listings, no filters).
        `build_details` and `build_steps` leave out builds a `deleted_builds` fault hides."""
        with self.lock:
            deleted = [st for st in self.builds if self.is_deleted(st)]
            deleted_idx = {st.index for st in deleted}
            live = [st for st in self.builds if st.index not in deleted_idx]
            git = sum(len(p.git_triggers) for p in self.pipeline_infos)
            cron = sum(len(p.cron_triggers) for p in self.pipeline_infos)
            return {
                "current_user": 1,
                "account_users": len(self.users),
                "teams": len(self.teams),
                "account_settings": 1,
                "api_keys": len(self.api_keys),
                "pipelines": len(self.pipelines),
                "pipeline_git_triggers": git,
                "pipeline_cron_triggers": cron,
                "pipeline_triggers": git + cron,
                "projects": len(self.projects),
                "step_types": len(self.step_types),
                "runtime_environments": len(self.runtime_environments),
                "hermes_triggers": len(self.hermes_triggers),
                "hermes_events": sum(1 for e in self.hermes_events.records if e["account"] != "000000000000"),
                "hermes_public_events": sum(1 for e in self.hermes_events.records if e["account"] == "000000000000"),
                "contexts": len(self.contexts),
                "execution_contexts": len(self.execution_contexts),
                "agents": len(self.agents),
                "helm_repos": len(self.helm_repos),
                "environments": len(self.environments),
                "views": len(self.views),
                "builds": len(self.builds),
                "builds_unfinished": len(self.unfinished),
                "builds_deleted": len(deleted),
                "builds_without_revision": sum(1 for st in live if st.started_ms is None),
                "build_details": len(live),
                "build_steps": sum(st.steps_count for st in live),
                "build_logs": sum(progress.expected_log_steps(self, st) for st in live if progress.archived(self, st)),
                "pipeline_runs": sum(1 for st in self.builds if st.is_run),
                "annotations": len(self.annotations),
                "images": len(self.images),
                "audit": len(self.audit),
                "analytics_reports": len(analytics.REPORTS),
                "registries": len(self.registries),
                "clusters": len(self.clusters),
                "pipeline_names": len(self.pipelines),
                **{stream: len(items) for stream, items in self.plain.items()},
                **{
                    name: 0 if self.config.gitops_access == "forbidden" else count
                    for name, count in self.gitops.counts().items()
                },
            }
