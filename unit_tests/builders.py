"""Small, realistic Codefresh API answers for the mock-HTTP stream tests.

The shapes follow the sandbox's generators (codefresh_sandbox/*.py) and a full read against it, trimmed to
the fields a test looks at plus a few neighbours, so that a fixture looks like what the API sends. Every builder
takes an index `i` (and sometimes a timestamp) and returns a fresh dict, so tests can change it freely.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, Iterable, List, Optional

from unit_tests.conftest import ACCOUNT_ID

Record = Dict[str, Any]


def oid(i: int, kind: str = "") -> str:
    """A 24-hex Mongo-style id, unique and stable per (kind, i)."""
    return hashlib.sha1(f"{kind}:{i}".encode()).hexdigest()[:24]


def iso(moment: datetime) -> str:
    """Codefresh's timestamp form: ISO-8601 UTC with milliseconds."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def days_ago(days: float, now: Optional[datetime] = None) -> datetime:
    return (now or datetime.now(timezone.utc)) - timedelta(days=days)


def midnight_days_ago(days: int) -> datetime:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


# --- account ---------------------------------------------------------------------------------------------------


def account_user(i: int) -> Record:
    name = ["ada.lovelace", "grace.allen", "linus.backus", "ken.turing"][i % 4] + (f"{i}" if i >= 4 else "")
    return {
        "_id": oid(i, "u"),
        "userName": name,
        "email": f"{name}@acme.example",
        "status": "activated",
        "roles": ["User", "Admin"] if i == 0 else ["User"],
        "account": [ACCOUNT_ID],
        "register_date": "2026-03-02T20:10:13.018Z",
        "user_data": {"name": name.replace(".", " ").title(), "image": f"https://avatars.example.com/u/{1000 + i}"},
        "hasPassword": True,
    }


def team(i: int) -> Record:
    return {
        "_id": oid(i, "t"),
        "name": ["users", "admins", "backend", "sre"][i % 4],
        "type": "default" if i < 2 else "custom",
        "account": ACCOUNT_ID,
        "tags": ["eu"],
        "users": [{"_id": oid(0, "u"), "userName": "ada.lovelace"}],
    }


def account_settings() -> Record:
    return {
        "_id": oid(1, "as"),
        "accountId": ACCOUNT_ID,
        "createdAt": "2024-07-06T16:33:27.365Z",
        "updatedAt": "2026-10-11T22:05:27.322Z",
        "schemaVersion": 2,
        "settings": {"modules": [{"name": "classic", "enabled": True}, {"name": "analytics", "enabled": True}]},
        "__v": 0,
    }


def api_key(i: int) -> Record:
    return {
        "_id": oid(i, "k"),
        "name": ["sandbox", "ci-readonly", "airbyte"][i % 3],
        "tokenPrefix": f"3f76b{i}",
        "created": "2025-06-21T10:05:28.697Z",
        "subject": {"type": "user", "ref": oid(0, "u")},
        "scopes": ["agent", "step-type", "view", "workflow"],
    }


# --- projects and pipelines ------------------------------------------------------------------------------------------


def project(i: int, updated_at: str = "2026-08-22T08:49:50.162Z") -> Record:
    return {
        "id": oid(i, "p"),
        "projectName": f"project-{i:03d}",
        "accountId": ACCOUNT_ID,
        "tags": ["team-a"],
        "variables": [{"key": "REGION", "value": "us-east-1"}],
        "favorite": False,
        "pipelinesNumber": 2,
        "updatedAt": updated_at,
        "metadata": {"createdAt": "2025-07-02T02:31:59.201Z"},
    }


def git_trigger(i: int, pipeline_index: int = 0) -> Record:
    return {
        "id": oid(pipeline_index * 10 + i, "gt"),
        "name": f"service-{pipeline_index}-push",
        "type": "git",
        "repo": f"acme-platform/service-{pipeline_index}",
        "events": ["push.heads"],
        "branchRegex": "/^main$/gi",
        "provider": "github",
        "context": "github-acme",
        "disabled": False,
        "status": "active",
        "endpoint": f"https://g.codefresh.io/api/providers/github/hook/e826c4e4fe5{i}",
        "secret": f"webhook-secret-{pipeline_index}-{i}-9c1e5b2d4f608a1c",
        "options": {"noCache": False, "noCfCache": False, "resetVolume": False},
        "variables": [],
    }


def cron_trigger(i: int, pipeline_index: int = 0) -> Record:
    return {
        "id": oid(pipeline_index * 10 + i, "ct"),
        "name": "nightly",
        "type": "cron",
        "expression": "0 2 * * *",
        "message": "nightly",
        "event": f"cron:codefresh:0 2 * * *:nightly:2685602c3d8925a{i}",
        "gitTriggerId": None,
        "branch": "main",
        "variables": [],
        "disabled": False,
        "status": "active",
    }


def pipeline(
    i: int,
    updated_at: str = "2026-08-15T10:38:34.121Z",
    triggers: Optional[List[Record]] = None,
    cron_triggers: Optional[List[Record]] = None,
) -> Record:
    pid = oid(i, "pl")
    return {
        "version": "1.0",
        "kind": "pipeline",
        "metadata": {
            "id": pid,
            "name": f"demo/service-{i:03d}",
            "shortName": f"service-{i:03d}",
            "project": "demo",
            "projectId": oid(0, "p"),
            "accountId": ACCOUNT_ID,
            "created_at": "2026-04-02T03:40:29.210Z",
            "updated_at": updated_at,
            "labels": {"tags": []},
            "isPublic": False,
            "revision": 3,
        },
        "spec": {
            "triggers": triggers if triggers is not None else [],
            "cronTriggers": cron_triggers if cron_triggers is not None else [],
            "variables": [{"key": "IMAGE_NAME", "value": f"acme-platform/service-{i}"}],
            "contexts": [],
            "stages": ["clone", "build"],
            "steps": {"main_clone": {"type": "git-clone"}, "build": {"type": "build"}},
            "runtimeEnvironment": {"name": "acme-sandbox/default", "cpu": "1000m", "memory": "2048Mi"},
        },
        "last_executed": None,
    }


# --- builds -----------------------------------------------------------------------------------------------------------


def build(i: int, created: str, status: str = "success") -> Record:
    started = utc(created) + timedelta(seconds=12)
    finished = started + timedelta(minutes=6)
    return {
        "id": oid(i, "b"),
        "account": ACCOUNT_ID,
        "serviceId": oid(0, "pl"),
        "serviceName": "service-000",
        "pipelineName": "demo/service-000",
        "project": "demo",
        "status": status,
        "progress": oid(i, "pg"),
        "created": created,
        "started": iso(started),
        "finished": iso(finished) if status in ("success", "error", "terminated") else None,
        "updated": iso(finished),
        "trigger": "build",
        "triggerType": "manual",
        "webhookTriggered": False,
        "repoOwner": "acme-platform",
        "repoName": "service-0",
        "branchName": "main",
        "revision": "64ecfbeb2eeaf8b3f3e5118aab0dbf1175770452",
        "commitMessage": "Improve logging",
        "annotations": [],
    }


def build_detail(i: int, created: str, status: str = "success") -> Record:
    return {
        **build(i, created, status),
        "userYamlDescriptor": 'version: "1.0"\nsteps: {}\n',
        "steps": [{"name": "build", "title": "build", "type": "build", "status": status}],
        "exposedVariables": {"pipeline": [{"key": "IMAGE_NAME", "value": "acme-platform/service-0"}]},
        "exportedVariables": {},
    }


def step(status: str = "success", total_ms: int = 61000, kind: str = "build") -> Record:
    return {
        "type": kind,
        "result": status,
        "status": status,
        "startTimestamp": "2026-11-20T10:00:12.000Z",
        "finishTimestamp": "2026-11-20T10:01:13.000Z",
        "totalTime": total_ms,
        "maxAttempts": 1,
        "currentAttempt": 1,
    }


def context_revisions(build_id: str, steps: Dict[str, Record]) -> List[Record]:
    """GET /workflow/{id}/context-revision: a first (running) revision and the last one, which holds the steps."""
    first = {
        "_id": f"{build_id}r1",
        "context": {"workflowMetadata": {"status": "running"}, "stepsMetadata": {"old-step": step("running")}},
        "metadata": {"account": ACCOUNT_ID, "process": build_id, "revision": 1},
    }
    last = {
        "_id": f"{build_id}r2",
        "context": {"workflowMetadata": {"status": "success"}, "stepsMetadata": steps},
        "metadata": {"account": ACCOUNT_ID, "process": build_id, "revision": 2},
    }
    return [first, last]


def default_steps() -> Dict[str, Record]:
    return {
        "Initializing Process": step(total_ms=2014, kind="builtin"),
        "Initializing": step(total_ms=500, kind="builtin"),
        "main_clone": step(total_ms=4000, kind="git-clone"),
        "build": step(),
    }


# --- configuration ------------------------------------------------------------------------------------------------


def hermes_event(i: int) -> Record:
    secret = f"event-secret-{i}-0b1c2d3e4f5061728394"
    return {
        "uri": f"registry:dockerhub:acme:service-{i}:push:e826c4e4fe5{i}",
        "type": "registry",
        "kind": "dockerhub",
        "account": ACCOUNT_ID,
        "secret": secret,
        "status": "active",
        "endpoint": f"https://g.codefresh.io/nomios/dockerhub?account={ACCOUNT_ID[:12]}&secret={secret}",
        "description": f"dockerhub acme/service-{i} push",
        "help": None,
    }


def hermes_trigger(i: int) -> Record:
    event = hermes_event(i)
    return {
        "event": event["uri"],
        "pipeline": oid(i, "pl"),
        "filters": {"tag": "latest"},
        "event-data": {k: event[k] for k in ("uri", "type", "kind", "account", "secret")},
    }


def step_type(i: int) -> Record:
    return {
        "version": "1.0",
        "kind": "step-type",
        "metadata": {
            "id": oid(i, "st"),
            "name": f"acme-step-{i:03d}",
            "version": "2.2.2",
            "official": i % 2 == 0,
            "isPublic": True,
            "created_at": "2023-07-30T16:38:54.057Z",
            "updated_at": "2026-03-07T04:52:47.502Z",
        },
        "spec": {"arguments": '{"type": "object"}', "steps": {"main": {"image": "alpine:3.20"}}},
        "metrics": {"finished": 154364},
    }


def context(i: int) -> Record:
    kinds = [
        ("git.github", {"auth": {"type": "basic", "username": "acme-bot", "password": f"ghp_secret{i:036d}"}}),
        ("secret", {"NPM_TOKEN": f"npm_secret{i:036d}"}),
        ("config", {"REGION": "eu-west-1"}),
    ]
    kind, data = kinds[i % len(kinds)]
    return {
        "apiVersion": "v1",
        "kind": "context",
        "owner": "account",
        "metadata": {"name": f"{kind.split('.')[-1]}-{i:02d}", "default": i == 0, "system": False},
        "spec": {"type": kind, "data": data},
    }


def execution_context(i: int) -> Record:
    return {
        "_id": oid(i, "ec"),
        "name": "default" if i == 0 else f"exec-ctx-{i:02d}",
        "description": "Pipelines that deploy with the deployer role",
        "account": ACCOUNT_ID,
        "accountDefault": i == 0,
        "tags": ["deploy"],
        "createdAt": "2026-07-13T16:42:09.771Z",
        "updatedAt": "2026-09-30T00:27:28.101Z",
        "__v": 0,
    }


def runtime_environment(i: int) -> Record:
    return {
        "metadata": {
            "name": f"acme-cluster-{i:03d}/default",
            "agent": False,
            "creationTime": "2025-10-03T01:02:21.962Z",
        },
        "version": 26,
        "description": f"Runtime environment acme-cluster-{i:03d}/default",
        "accountId": ACCOUNT_ID,
        "isDefault": i == 0,
        "isPublic": False,
        "runtimeScheduler": {"type": "KubernetesPod", "cluster": {"namespace": "default"}},
        "dockerDaemonScheduler": {"type": "DindKubernetesPod", "cluster": {"namespace": "default"}},
        "status": {"message": "successfully synced", "updated_at": "2026-10-23T20:36:40.387Z"},
    }


def agent(i: int) -> Record:
    return {
        "id": oid(i, "ag"),
        "name": f"agent-eu-{i:02d}",
        "account": ACCOUNT_ID,
        "runtimes": [f"acme-cluster-{i:03d}/default"],
        "status": {"healthStatus": "HEALTHY", "message": "All good", "reportedAt": "2026-10-31T23:50:31.128Z"},
        "tokenName": f"agent-token-{i:02d}",
        "lastReported": "2026-10-31T23:50:19.128Z",
    }


def helm_repository(i: int) -> Record:
    return {
        "Name": f"helm-repo-{i}",
        "Public": i == 0,
        "CreatedAt": "2026-09-20T19:11:19.270Z",
        "UpdatedAt": "2026-10-19T18:14:18.967Z",
    }


def environment(i: int) -> Record:
    return {
        "_id": oid(i, "en"),
        "accountId": ACCOUNT_ID,
        "metadata": {"name": ["production", "staging", "qa"][i % 3], "labels": {"tier": "prod"}},
        "spec": {"type": "helm-releases", "clusters": [{"name": "acme-cluster-08", "namespace": "production"}]},
        "createdAt": "2026-08-24T20:08:01.085Z",
        "updatedAt": "2026-10-25T06:55:48.828Z",
        "__v": 0,
    }


def view(i: int) -> Record:
    return {
        "_id": oid(i, "v"),
        "name": f"view-{i:03d}",
        "account": ACCOUNT_ID,
        "user": oid(0, "u"),
        "type": "workflows",
        "filters": {"status": ["error", "success"], "branch": ["main"], "pipeline": []},
        "isDefault": i == 0,
        "createdAt": "2026-01-27T18:41:21.629Z",
        "updatedAt": "2026-10-29T17:19:47.639Z",
    }


# --- images, audit, analytics ------------------------------------------------------------------------------------


def image(i: int, created: str = "2026-10-31T22:59:21.139Z") -> Record:
    name = f"acme-web/service-{i % 7}"
    return {
        "_id": oid(i, "im"),
        "internalImageId": f"{i:064x}",
        "internalName": f"r.cfcr.io/{name}:1b0c9ec",
        "imageName": name,
        "imageDisplayName": name,
        "tags": [
            {"_id": oid(i, "tg"), "tag": "1b0c9ec", "registry": "r.cfcr.io", "repository": name, "created": created}
        ],
        "created": created,
        "size": 1374596942,
        "sha": f"sha256:{i:064x}",
        "branch": "main",
        "commit": "1b0c9ecff6204f2d2f336232a27fdf4009bcc25a",
    }


def audit_entry(i: int, created_at: str = "2026-11-20T23:55:43.096Z") -> Record:
    return {
        "id": 1_000_001 + i,
        "createdAt": created_at,
        "accountId": ACCOUNT_ID,
        "userId": oid(0, "u"),
        "userName": "ada.lovelace",
        "userEmail": "ada.lovelace@acme.example",
        "action": "update",
        "entity": "pipeline",
        "entityId": oid(i, "pl"),
        "entityName": f"demo/service-{i:03d}",
        "ip": "10.30.188.91",
        "req_url": f"/api/pipelines/{oid(i, 'pl')}",
        "req_query": {},
        "req_params": {"id": oid(i, "pl")},
        "req_body": {"name": f"demo/service-{i:03d}", "password": "audit-secret-body"},
        "res_body": {"id": oid(i, "pl"), "token": "audit-secret-response"},
        "rs_status": 200,
    }


REPORTS = {
    "creditConsumption": ("credits", "Credits consumed per runtime size"),
    "buildAvgDuration": ("builds", "Average build duration per pipeline (seconds)"),
    "activeCommitters": ("committers", "Active committers per month"),
}
# supportedTimeDimensions as documented (KB retrieve-usage-data-api, analytics API draft): (granularity, min, max),
# the bounds as strings like Codefresh's metadata sends them.
TIME_DIMENSIONS = {
    "credits": [(None, "1 day", "1 year"), ("month", "1 day", "1 year"), ("day", "2 days", "45 days")],
    "committers": [("month", "3 months", "1 year")],
    "builds": [
        (None, "1 day", "6 months"),
        ("hour", "1 day", "4 days"),
        ("day", "1 day", "3 months"),
        ("week", "1 day", "6 months"),
        ("month", "1 day", "6 months"),
    ],
}


def analytics_report(name: str) -> Record:
    kind, description = REPORTS.get(name, ("builds", name))
    return {
        "reportName": name,
        "type": kind,
        "description": description,
        "filters": [{"name": "pipelineId", "type": "string[]", "description": "Pipeline ids"}],
        "members": [
            {"name": "time", "title": "Time"},
            {"name": "key", "title": "Key"},
            {"name": "value", "title": "Value"},
        ],
        "mandatoryNonUserFilters": [{"member": "accountId", "operator": "equals"}],
        "supportedTimeDimensions": [
            {"granularity": granularity, "minDateRangeInterval": low, "maxDateRangeInterval": high}
            for granularity, low, high in TIME_DIMENSIONS[kind]
        ],
    }


def analytics_metadata(names: Iterable[str]) -> Record:
    return {"reports": {name: analytics_report(name) for name in names}}


def report_row(day: date, key: Optional[str], value: float) -> Record:
    row: Record = {"time": f"{day.isoformat()}T00:00:00.000Z", "value": value}
    if key is not None:
        row["key"] = key
    return row


def build_report_row(day: Optional[date], builds: int = 4, ok: int = 4) -> Record:
    """A build-duration report row as Codefresh answers it: no `key` (nor `time` without a bucket), counts as
    strings, the success rate in percent (docs.codefresh.io analytics API draft)."""
    row: Record = {
        "totalBuilds": str(builds),
        "successfulBuilds": str(ok),
        "successRate": 100 * ok // max(builds, 1),
        "totalDuration": 72922,
        "initializingDuration": 19224,
        "runningDuration": 53698,
        "pendingApprovalDuration": 0,
        "pendingConcurrencyDuration": 0,
        "delayDuration": 0,
    }
    if day is not None:
        row = {"time": f"{day.isoformat()}T00:00:00.000", **row}
    return row


# --- envelopes ------------------------------------------------------------------------------------------------------


def offset_page(records: List[Record]) -> Record:
    """A page of /images as offset pages (the spec's reading): the records and no `pagination` block."""
    return {"docs": records}


def cursor_page(records: List[Record], page: int, next_page: bool, nested: Optional[str] = None) -> Record:
    """A page of /workflow (nested='workflows') or /images as cursor pages: records plus the `pagination` block
    (`nextPage` is a boolean, as Codefresh's support scripts read it)."""
    pagination = {"page": page, "nextPage": next_page, "pageSize": 100}
    docs = {"docs": records}
    return {nested: docs, "pagination": pagination} if nested else {**docs, "pagination": pagination}
