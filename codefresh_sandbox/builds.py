"""Builds family: the build list, one build, its context revisions (per-step data) and annotations.

    GET /workflow                            cursor pages   {"workflows": {"docs": [...], "total"},
                                                             "pagination": {"page", "nextPage": true|false, ...}}
        limit (<= 100), page = 1, 2, 3 ...; startDate/endDate bound `created` (read as
        `workflow_dates` says); status, pipeline (ids),
        branchName, revision, trigger, pipelineTriggerId filter. Newest first.
    GET /builds/{id}                         object         the build, as in the list: with userYamlDescriptor and
                                                            finalWorkflowYaml (several kB each), steps (names),
                                                            exposedVariables, exportedVariables
    GET /workflow/{id}/context-revision      bare array     revisions; the last one has context.stepsMetadata
    GET /annotations                         bare array     {_id, accountId, entityId, entityType, entityName,
                                                            key, value, __v}; filters entityType, entityId, key,
                                                            value, id; nothing matching: `[]`, or a 404 with
                                                            `annotations_none="not_found_404"`

The build state (status changes of pipeline runs, `advance()`) lives in `data.SandboxData`; this module knows the
shapes. Details and revisions are generated on demand from a per-build seed, so they are always the same for the
same build state. A build's two YAML texts are its pipeline's (stored once per pipeline, already JSON-escaped) with
the build's revision spliced in, so a 20,000-build sandbox does not hold 20,000 copies of them.
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List, Optional

from .common import (
    BRANCHES,
    DAY_MS,
    HOUR_MS,
    MINUTE_MS,
    Gen,
    Request,
    Response,
    bad_request,
    capped_limit,
    envelope,
    iso,
    json_response,
    not_found,
    parse_bound,
    parse_iso_ms,
    raw_json,
    route,
)

UNFINISHED_STATUSES = ["pending", "elected", "running", "pending-approval", "delayed", "terminating"]
# A build whose approval was denied ends `denied` (a dashboard filters /workflow by status=denied, FIDELITY S11).
TERMINAL_STATUSES = ("success", "error", "terminated", "denied")
PSEUDO_STEPS = ("Initializing Process", "Initializing")
# The status a build's last step ends with: steps end `failure`, not `error` (context revisions, KB); approval
# steps end `approved` or `denied` (docs approval.md); a running build's last step is still `running`.
LAST_STEP_STATUS = {
    "success": "success",
    "error": "failure",
    "terminated": "terminated",
    "denied": "denied",
    "pending-approval": "pending-approval",
}


class BuildState:
    """One build: `doc` is exactly what the list returns; the rest drives its details and lifecycle."""

    __slots__ = (
        "created_ms",
        "cut",
        "doc",
        "final_cut",
        "final_status",
        "finished_ms",
        "index",
        "is_run",
        "pipeline",
        "polls",
        "seed",
        "started_ms",
    )

    def __init__(self, **kw: Any):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def has_revision(self) -> bool:
        return self.started_ms is not None

    @property
    def steps_count(self) -> int:
        """Entries of the last revision's stepsMetadata, not counting the pseudo-step `Initializing`."""
        return 1 + self.cut if self.started_ms is not None else 0

    @property
    def finished(self) -> bool:
        return self.doc["status"] in TERMINAL_STATUSES


# ---------------------------------------------------------------------------------------------------------------
# the build object
# ---------------------------------------------------------------------------------------------------------------
def make_build(
    g: Gen,
    data: Any,
    p: Any,
    created: int,
    status: str,
    final_status: str,
    started: Optional[int],
    finished: Optional[int],
    cut: int,
    final_cut: int,
    trigger_kind: Optional[str] = None,
    branch: Optional[str] = None,
    sha: Optional[str] = None,
    initiator: Optional[Dict[str, str]] = None,
    pipeline_trigger: Optional[Dict[str, Any]] = None,
    is_run: bool = False,
) -> BuildState:
    """A build of pipeline `p` (a pipelines.PipelineInfo). `cut` = real steps in its stepsMetadata."""
    users = data.people
    if trigger_kind is None:
        r = g.rng.random()
        if p.git_triggers and r < 0.7:
            trigger_kind, pipeline_trigger = "webhook", g.pick(p.git_triggers)
        elif p.cron_triggers and r < 0.8:
            trigger_kind, pipeline_trigger = "cron", p.cron_triggers[0]
        else:
            trigger_kind = "manual"
    person = initiator or g.pick(users)
    committer = g.pick(users)
    repo = p.repo
    if branch is None:
        branch = "main" if trigger_kind == "cron" else g.pick(BRANCHES)
    sha = sha or g.hex(40)
    repo_url = f"https://github.com/{repo['owner']}/{repo['name']}"
    pr = trigger_kind == "webhook" and pipeline_trigger is not None and pipeline_trigger["events"][0].startswith("pull")
    event, event_name, event_label = {
        "webhook": ("pullrequest.opened", "pullrequest", "Pull request opened")
        if pr
        else ("push.heads", "push", "Push commits"),
        "cron": ("cron", "cron", "Cron"),
    }.get(trigger_kind, (None, None, None))
    updated = finished or started or created
    bid = g.oid(created)
    terminated = status == "terminated"
    doc = {
        "id": bid,
        "account": data.account_id,
        "serviceId": p.id,
        "serviceName": p.short_name,
        "pipelineName": p.name,
        "project": p.project,
        "projectId": p.project_id,
        "status": status,
        "progress": g.oid(created),
        "pendingLicense": False,
        "pendingReason": {"pending": "Waiting for an available runtime", "delayed": "Concurrency limit reached"}.get(
            status
        ),
        "delayed": 1 if status == "delayed" else 0,
        "pendingApprovals": [{"stepName": "approve_deploy", "requestedAt": iso(updated)}]
        if status == "pending-approval"
        else [],
        "terminationRequest": termination_requests(bid, person["userName"], finished) if terminated else [],
        "systemEvents": system_events(bid, p, status, cut, finished),
        "created": iso(created),
        "started": iso(started),
        "finished": iso(finished),
        "updated": iso(updated),
        "trigger": "build",
        "triggerType": trigger_kind,
        "triggeredBy": "cron" if trigger_kind == "cron" else person["userName"],
        "pipelineTriggerId": pipeline_trigger["id"] if pipeline_trigger else None,
        "pipelineTriggerName": pipeline_trigger["name"] if pipeline_trigger else None,
        "webhookTriggered": trigger_kind == "webhook",
        "event": event,
        "eventName": event_name,
        "eventLabel": event_label,
        "initiator": None if trigger_kind == "cron" else person["userName"],
        "initiatorAvatar": None if trigger_kind == "cron" else person["avatar"],
        "triggersCount": 1,
        "provider": "github",
        "repoOwner": repo["owner"],
        "repoName": repo["name"],
        "repoURL": repo_url,
        "branchName": branch,
        "branchURL": f"{repo_url}/tree/{branch}",
        "revision": sha,
        "commitMessage": g.commit_message(),
        "commitURL": f"{repo_url}/commit/{sha}",
        "committer": committer["userName"],
        "committerAvatar": committer["avatar"] if g.chance(0.9) else None,
        "annotations": [],
        "runtime": {"name": p.runtime, "schedulerConfig": {"type": "KubernetesPod"}},
        "packId": data.pack_id,
        "buildStrategy": "regular",
        "autoGeneratedYaml": False,
        "hasExtendedYaml": False,
        "hasImplicitGitCloneStep": False,
        "useDebugger": False,
        "keepPVCsForPendingApproval": False,
        "permitRestartFromFailedSteps": True,
        "request": json.dumps(
            {"method": "POST", "originalUrl": f"/api/pipelines/run/{p.name.replace('/', '%2F')}"}, separators=(",", ":")
        )
        if trigger_kind in ("manual", "api")
        else None,
        "steps": [],
        "exposedVariables": {  # the lists are shared by every build: never mutated
            "pipeline": p.doc["spec"]["variables"],
            "pipelineTrigger": TRIGGER_VARIABLES if trigger_kind == "webhook" else [],
            "project": PROJECT_VARIABLES,
            "shared": SHARED_VARIABLES,
        },
        "exportedVariables": {},
    }
    st = BuildState(
        index=-1,
        doc=doc,
        seed=g.rng.getrandbits(32),
        pipeline=p,
        cut=cut,
        final_cut=final_cut,
        final_status=final_status,
        polls=0,
        is_run=is_run,
        created_ms=created,
        started_ms=started,
        finished_ms=finished,
    )
    settle(st)
    return st


def settle(st: BuildState) -> None:
    """The fields that follow a build's progress: the steps it ran (names) and what it exported."""
    d = st.doc
    d["steps"] = [name for name, _ in st.pipeline.steps[: st.cut]] if st.started_ms is not None else []
    d["exportedVariables"] = (
        {"IMAGE_TAG": d["revision"][:7], "DEPLOY_ENV": "staging"} if d["status"] == "success" else {}
    )


TRIGGER_VARIABLES = [{"key": "TRIGGER_SOURCE", "value": "git"}]
PROJECT_VARIABLES = [{"key": "REGION", "value": "eu-west-1"}]
SHARED_VARIABLES = [{"key": "SLACK_CHANNEL", "value": "#builds"}]


def _details_rng(build_id: str) -> random.Random:
    """A build's own generator for its optional details, so that they do not shift the other records' draws; made
    only for the builds that have such details (seeding one per build costs a second at 20,000 builds)."""
    return random.Random(int(build_id, 16))


def _local_oid(rng: random.Random, ms: Optional[int]) -> str:
    return f"{(ms or 0) // 1000 & 0xFFFFFFFF:08x}{rng.getrandbits(64):016x}"


def termination_requests(build_id: str, user: Optional[str], when: Optional[int]) -> List[Dict[str, Any]]:
    """`terminationRequest[]` of a terminated build: `{_id, byBuildManager, cause, date, message, workflowStatus}`
    (the shape of Airbyte's schema imported from real answers; causes and messages are the sandbox's)."""
    rng = _details_rng(build_id)
    by_manager = rng.random() < 0.35
    return [
        {
            "_id": _local_oid(rng, when),
            "byBuildManager": by_manager,
            "cause": "policy" if by_manager else "user",
            "date": iso(when),
            "message": "Terminated by the pipeline's termination policy: a newer build started on the same branch"
            if by_manager
            else f"Build terminated by {user or 'a user'}",
            "workflowStatus": rng.choice(["running", "pending", "elected"]),
        }
    ]


def system_events(build_id: str, p: Any, status: str, cut: int, when: Optional[int]) -> List[Dict[str, Any]]:
    """`systemEvents[]`: `{_id, kind, message, retriable, step, stepKind, stepName}` (Airbyte's imported schema;
    Codefresh's own notifier keeps the `kind: error` ones). Most failed builds name their failed step; every 25th
    finished build (by the counter part of its id) carries a warning."""
    events: List[Dict[str, Any]] = []
    failed = status == "error" and cut > 0
    warned = when is not None and int(build_id[-6:], 16) % 25 == 0
    if not (failed or warned):
        return events
    rng = _details_rng(build_id)
    if failed and rng.random() < 0.6:
        name, kind = p.steps[min(cut, len(p.steps)) - 1]
        events.append(
            {
                "_id": _local_oid(rng, when),
                "kind": "error",
                "message": f"Failed to run step {name}: the container exited with code {rng.choice([1, 2, 137])}",
                "retriable": rng.random() < 0.3,
                "step": name,
                "stepKind": kind,
                "stepName": name.replace("_", " ").capitalize(),
            }
        )
    if warned:
        events.append(
            {
                "_id": _local_oid(rng, when),
                "kind": "warning",
                "message": "The build used more than 90% of its memory limit",
                "retriable": False,
                "step": None,
                "stepKind": None,
                "stepName": None,
            }
        )
    return events


def item_json(st: BuildState, doc_json: bytes) -> bytes:
    """The build's JSON as the API answers it, list or detail: its record plus the two YAML texts of its pipeline,
    the final one with the build's revision."""
    p = st.pipeline
    head, tail = p.final_yaml_json
    return b"".join(
        (
            doc_json[:-1],
            b',"userYamlDescriptor":"',
            p.yaml_json,
            b'","finalWorkflowYaml":"',
            head,
            st.doc["revision"].encode(),
            tail,
            b'"}',
        )
    )


def plan_cut(g: Gen, n_steps: int, status: str) -> int:
    if status == "success":
        return n_steps
    return g.randint(1, max(1, n_steps))


def generate(g: Gen, cfg: Any, data: Any) -> List[BuildState]:
    """cfg.builds builds over cfg.build_days before the anchor; the newest ~2 % unfinished (created in the last
    hour). Returns them oldest first."""
    n = cfg.builds
    infos = data.pipeline_infos
    if n <= 0 or not infos:
        return []
    anchor = g.anchor_ms
    n_unfinished = round(n * cfg.unfinished_fraction)
    n_finished = n - n_unfinished
    span = cfg.build_days * DAY_MS - HOUR_MS
    rnd = g.rng.random
    createds = sorted(int(rnd() * span) for _ in range(n_finished))
    createds = [anchor - cfg.build_days * DAY_MS + c for c in createds]
    createds += sorted(anchor - HOUR_MS + int(rnd() * (HOUR_MS - MINUTE_MS)) for _ in range(n_unfinished))
    for i in range(1, n):  # unique `created`
        if createds[i] <= createds[i - 1]:
            createds[i] = createds[i - 1] + 1
    n_pipes = len(infos)
    out: List[BuildState] = []
    for i, created in enumerate(createds):
        p = infos[min(n_pipes - 1, int(n_pipes * rnd() ** 1.7))]
        n_steps = len(p.steps)
        if i < n_finished:
            r = rnd()
            status = "success" if r < 0.78 else "error" if r < 0.92 else "terminated"
            final_status = status
            cut = final_cut = plan_cut(g, n_steps, status)
            if status == "terminated" and rnd() < 0.35:  # terminated before it started: no revision
                started, cut = None, 0
                finished = created + g.randint(2_000, 90_000)
            else:
                started = created + g.randint(1_000, 45_000)
                finished = started + g.randint(40_000, 25 * MINUTE_MS)
            finished = min(finished, anchor - 1_000)
        else:
            status = UNFINISHED_STATUSES[(i - n_finished) % len(UNFINISHED_STATUSES)]
            final_status = "success" if rnd() < 0.85 else "error"
            final_cut = plan_cut(g, n_steps, final_status)
            finished = None
            started = None if status == "pending" else min(created + g.randint(1_000, 30_000), anchor - 500)
            if status == "pending" or status == "elected":
                cut = 0
            elif status == "pending-approval" and any(k == "pending-approval" for _, k in p.steps):
                cut = [k for _, k in p.steps].index("pending-approval") + 1
            else:
                cut = g.randint(1, n_steps)
            final_cut = max(final_cut, cut)
        st = make_build(g, data, p, created, status, final_status, started, finished, cut, final_cut)
        if g.chance(0.05):
            add_annotation(
                data,
                st,
                g.pick(["release", "jira", "deployed-to"]),
                g.pick(["v1.4.2", "PROJ-1234", "staging", "production"]),
                created,
                g.oid(created),
            )
        out.append(st)
        if p.last_executed is None or st.doc["created"] > p.last_executed:
            p.last_executed = st.doc["created"]
    return out


def add_annotation(data: Any, st: BuildState, key: str, value: Any, ms: int, annotation_id: str) -> None:
    """Attach an annotation to a build (embedded) and to the /annotations index. Caller holds the data lock."""
    st.doc["annotations"].append(
        {
            "annotationId": annotation_id,
            "entityId": st.doc["id"],
            "entityType": "build",
            "key": key,
            "value": value,
            "type": "string" if isinstance(value, str) else "number",
            "display": False,
            "updatedAt": iso(ms),
        }
    )
    data.annotations.append(
        {
            "_id": annotation_id,
            "accountId": data.account_id,
            "entityId": st.doc["id"],
            "entityType": "build",
            "entityName": st.doc["pipelineName"],
            "key": key,
            "value": value,
            "__v": 0,
        }
    )


# ---------------------------------------------------------------------------------------------------------------
# steps, revisions, details (on demand, deterministic per build state)
# ---------------------------------------------------------------------------------------------------------------
def steps_metadata(st: BuildState, now_ms: int) -> Dict[str, Dict[str, Any]]:
    """context.stepsMetadata of the last revision: pseudo-steps then `cut` pipeline steps."""
    if st.started_ms is None:
        return {}
    rng = random.Random(st.seed)
    status = st.doc["status"]
    start = st.started_ms
    end = st.finished_ms if st.finished_ms is not None else max(now_ms, start + 60_000)
    container = lambda: f"{rng.getrandbits(256):064x}"  # noqa: E731
    workdir = f"/codefresh/volume/{st.pipeline.repo['name']}"
    out: Dict[str, Dict[str, Any]] = {}

    def put(name: str, kind: str, state: str, s: int, f: Optional[int]) -> None:
        out[name] = {
            "type": kind,
            "result": state if f is not None else None,
            "status": state,
            "startTimestamp": iso(s),
            "finishTimestamp": iso(f),
            "totalTime": None if f is None else f - s,
            "maxAttempts": 1,
            "currentAttempt": 1,
            "containerId": container(),
            "workingDirectory": workdir,
        }

    def put_pseudo_steps(state: str, f: Optional[int]) -> None:
        # `Initializing Process` has no `type` and no `result`; `Initializing` holds only a container id (KB example).
        out["Initializing Process"] = {
            "status": state,
            "startTimestamp": iso(start),
            "finishTimestamp": iso(f),
            "totalTime": None if f is None else f - start,
        }
        out["Initializing"] = {"containerId": container()}

    init_proc = rng.randint(1_000, 4_000)
    init = rng.randint(3_000, 15_000)
    if status == "elected":
        put_pseudo_steps("running", None)
        return out
    put_pseudo_steps("success", start + init_proc)
    cursor = start + init_proc + init
    steps = st.pipeline.steps[: st.cut]
    if not steps:
        return out
    post = 1_000 if st.finished_ms is not None else 0
    weights = [0.2 + rng.random() for _ in steps]
    budget = max(len(steps) * 500, end - post - cursor)
    total_w = sum(weights)
    for j, (name, kind) in enumerate(steps):
        last = j == len(steps) - 1
        dur = max(300, int(budget * weights[j] / total_w))
        if not last:
            put(name, kind, "approved" if kind == "pending-approval" else "success", cursor, cursor + dur)
        elif status not in TERMINAL_STATUSES:
            put(name, kind, LAST_STEP_STATUS.get(status, "running"), cursor, None)
        else:
            state = LAST_STEP_STATUS[status]
            put(
                name,
                kind,
                "approved" if kind == "pending-approval" and state == "success" else state,
                cursor,
                cursor + dur,
            )
        cursor += dur
    return out


def context_revisions(data: Any, st: BuildState, now_ms: int) -> List[Dict[str, Any]]:
    if st.started_ms is None:
        return []
    steps = steps_metadata(st, now_ms)
    status = st.doc["status"]
    done = st.finished_ms is not None
    proc = steps["Initializing Process"]
    pre_start, pre_finish = proc["startTimestamp"], proc["finishTimestamp"]
    workflow = {
        "startTimestamp": iso(st.started_ms),
        "preStepsStartTimestamp": pre_start,
        "preStepsFinishTimestamp": pre_finish,
        "preStepsTotalTime": proc["totalTime"],
        "preStepsStatus": "success" if pre_finish else "running",
        "result": LAST_STEP_STATUS.get(status, status) if done else None,
        "status": status,
        "mode": "sequential",
        "finishTimestamp": iso(st.finished_ms),
        "totalTime": st.finished_ms - st.started_ms if done else None,
        "postStepsStartTimestamp": iso(st.finished_ms - 1_000) if done else None,
        "postStepsFinishTimestamp": iso(st.finished_ms) if done else None,
        "postStepsTotalTime": 1_000 if done else None,
        "postStepsStatus": "success" if done else None,
    }
    workflow["flow-logger-id"] = f"{st.doc['progress']}_{st.started_ms}"
    if done:
        workflow["finishTimestamp-system"] = iso(st.finished_ms)
    running_workflow = {
        **workflow,
        "result": None,
        "status": "running",
        "finishTimestamp": None,
        "totalTime": None,
        "postStepsStartTimestamp": None,
        "postStepsFinishTimestamp": None,
        "postStepsTotalTime": None,
        "postStepsStatus": None,
        "finishTimestamp-system": None,
    }
    begun = {name: parse_iso_ms(m["startTimestamp"]) for name, m in steps.items() if m.get("startTimestamp")}
    ended = {name: parse_iso_ms(m["finishTimestamp"]) for name, m in steps.items() if m.get("finishTimestamp")}

    def steps_at(t: int) -> Dict[str, Any]:
        """stepsMetadata as it stood at `t`: the steps begun by then, those not ended shown running."""
        out: Dict[str, Any] = {}
        for name, m in steps.items():
            if begun.get(name, t + 1) > t:
                continue
            out[name] = (
                m
                if ended.get(name, t + 1) <= t
                else {
                    **m,
                    **{k: None for k in ("result", "finishTimestamp", "totalTime") if k in m},
                    "status": "running",
                }
            )
        return out

    # Revisions: the start, the end of the pre-steps, up to two finished steps, then the workflow's end and its
    # post operations (`workflow.finish-system`, the last and final one, as in Codefresh's KB example, revision 6);
    # an unfinished build's last revision is its current state.
    snapshots = [
        (
            "workflow.start",
            "Workflow started",
            st.started_ms,
            {
                **running_workflow,
                "preStepsFinishTimestamp": None,
                "preStepsTotalTime": None,
                "preStepsStatus": "running",
            },
        )
    ]
    pre_end = ended.get("Initializing Process")
    if pre_end is not None:
        snapshots.append(("pre-steps.finish", "Pre-steps completed", pre_end, running_workflow))
    real_ends = sorted(
        t for name, t in ended.items() if name not in PSEUDO_STEPS and (not done or t < st.finished_ms - 1_000)
    )
    for t in sorted(set(real_ends[:1] + real_ends[-1:])):
        snapshots.append(("step.finish", "Step completed", t, running_workflow))
    if done:
        snapshots.append(
            (
                "workflow.finish",
                "Workflow completed",
                st.finished_ms - 1_000,
                {
                    **workflow,
                    "postStepsFinishTimestamp": None,
                    "postStepsTotalTime": None,
                    "postStepsStatus": "running",
                    "finishTimestamp-system": None,
                },
            )
        )
        snapshots.append(("workflow.finish-system", "Workflow post operations completed", st.finished_ms, workflow))
    elif len(snapshots) == 1 or status != "elected":
        snapshots.append(("step.update", "Step updated", max(now_ms, st.started_ms), workflow))
    out = []
    for revision, (event, description, t, meta) in enumerate(snapshots, start=1):
        last = revision == len(snapshots)
        out.append(
            {
                "_id": f"{t // 1000 & 0xFFFFFFFF:08x}{random.Random(st.seed + revision).getrandbits(64):016x}",
                "context": {"workflowMetadata": meta, "stepsMetadata": steps if last else steps_at(t)},
                "metadata": {
                    "account": data.account_id,
                    "process": st.doc["id"],
                    "description": description,
                    "revision": revision,
                    "annotations": {"event": event, "final": last and done},
                },
            }
        )
    return out


# ---------------------------------------------------------------------------------------------------------------
# handlers
# ---------------------------------------------------------------------------------------------------------------
FILTER_PARAMS = ("status", "pipeline", "branchName", "revision", "trigger", "pipelineTriggerId")


# How the server reads startDate/endDate (SandboxConfig.workflow_dates); FIDELITY.md 1.2 leaves it open:
#   exact               a datetime bound is applied to the millisecond; a bare date covers its whole UTC day
#   date_only           only the date of either bound is read: both cover whole UTC days (inclusive)
#   date_first_instant  only the date is read, as its first instant (00:00:00.000 UTC) for both bounds
WORKFLOW_DATES = ("exact", "date_only", "date_first_instant")


def _bound(req: Request, name: str, upper: bool) -> Optional[int]:
    raw = req.arg(name)
    if raw is None or raw == "":
        return None
    try:
        value = parse_bound(raw, upper)
    except ValueError:
        raise bad_request(f"Invalid {name} '{raw}': expected YYYY-MM-DD or an ISO-8601 datetime") from None
    reading = req.data.config.workflow_dates
    if reading == "exact":
        return value
    day = value - value % DAY_MS
    return day + DAY_MS - 1 if reading == "date_only" and upper else day


def list_builds(req: Request) -> Response:
    data = req.data
    limit = capped_limit(req)
    page = req.int_arg("page", 1, minimum=-(10**9))
    start = _bound(req, "startDate", upper=False)
    end = _bound(req, "endDate", upper=True)
    filters = {name: req.args(name) for name in FILTER_PARAMS if req.args(name)}

    def snapshot() -> Any:
        return data.select_builds(start, end, filters)

    snap = req.app.sessions.turn("workflow", req, page, snapshot)
    window = snap[(page - 1) * limit : page * limit]
    parts = [data.build_item(i) for i in window]
    next_page = b"true" if page * limit < len(snap) else b"false"
    return raw_json(
        envelope(
            b'{"workflows":{"docs":[',
            parts,
            b'],"total":%d},"pagination":{"page":%d,"nextPage":%s,"pageSize":%d}}'
            % (len(snap), page, next_page, limit),
        )
    )


def _live_build(req: Request) -> BuildState:
    st = req.data.find_build(req.params["id"])
    if st is None or req.app.build_deleted(req, st):
        raise not_found(f"Build {req.params['id']} not found")
    return st


def get_build(req: Request) -> Response:
    """A pipeline run moves on one state per GET (see data.SandboxData.build_detail)."""
    return raw_json(req.data.build_detail(_live_build(req)))


def get_context_revisions(req: Request) -> Response:
    st = _live_build(req)
    data = req.data
    with data.lock:
        revisions = context_revisions(data, st, data.clock_ms)
    return json_response(revisions)


# What GET /annotations answers when nothing matches (SandboxConfig.annotations_none); FIDELITY.md 1.12 leaves it open:
#   empty_200      `[]` (a list endpoint with an empty result)
#   not_found_404  404 NOT_FOUND_ERROR, as codefresh-support/disable-triggers treats a 404 there as "no annotations"
ANNOTATIONS_NONE = ("empty_200", "not_found_404")


def get_annotations(req: Request) -> Response:
    wanted = {k: req.arg(k) for k in ("entityType", "entityId", "key", "value", "id") if req.arg(k)}
    with req.data.lock:
        items = list(req.data.annotations)
    out = [a for a in items if all((a["_id"] if k == "id" else str(a[k])) == v for k, v in wanted.items())]
    if not out and req.data.config.annotations_none == "not_found_404":
        raise not_found("Annotations not found")
    return json_response(out)


ROUTES = [
    route("GET", "/workflow", list_builds),
    route("GET", "/builds/{id}", get_build),
    route("GET", "/workflow/{id}/context-revision", get_context_revisions),
    route("GET", "/annotations", get_annotations),
]
