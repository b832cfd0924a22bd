"""Pipelines family: projects, pipelines (with their git and cron triggers), hermes trigger links and events, and
the one write, running a pipeline.

    GET  /projects                 offset paging   {"projects": [...]}
    GET  /pipelines                offset paging   {"docs": [...], "count": <total matching>}
    GET  /pipelines/names          offset paging   {"docs": [{"metadata": {id, name, ...}}], "count"} (the names only)
    GET  /hermes/triggers          bare array      {event, pipeline, filters (absent when empty), event-data (empty)}
    GET  /hermes/events            bare array      {uri, type, kind, account, secret, status, endpoint, ...}; public
                                                   events (account 000000000000) only with ?public=true
    POST /pipelines/run/{name}     JSON string     the new build id (name = project%2Fpipeline or the id)

Four well-known pipelines exist in project `demo` whatever the seed: `demo/hello-world` (runs end in `success`),
`demo/failing-build` (`error`), `demo/terminated-build` (`terminated`) and `demo/denied-approval` (`denied`: its
approval step is denied). No other pipeline name contains `failing`, `terminated` or `denied`.
"""

from __future__ import annotations

import json
import random
from typing import Any, Dict, List, Optional

from .common import (
    Collection,
    Gen,
    Request,
    Response,
    bad_request,
    dumps,
    iso,
    json_response,
    not_found,
    offset_window,
    raw_json,
    route,
)

WELL_KNOWN = ["hello-world", "failing-build", "terminated-build", "denied-approval"]
PUBLIC_ACCOUNT = "000000000000"  # hermes: events every account may use
PIPELINE_WORDS = [
    "ci",
    "cd",
    "build",
    "deploy",
    "release",
    "nightly",
    "pr-checks",
    "e2e",
    "lint",
    "publish",
    "canary",
    "rollback",
    "docs",
    "perf",
    "security-scan",
    "helm-release",
    "smoke",
    "migrate",
]
PROJECT_WORDS = [
    "payments",
    "checkout",
    "search",
    "platform",
    "data",
    "web",
    "mobile",
    "infra",
    "identity",
    "catalog",
    "billing",
    "growth",
    "ml",
    "observability",
    "tooling",
    "edge",
]

# (step name, step type, stage) in pipeline order; every pipeline has main_clone and build.
STEP_CATALOG = [
    ("main_clone", "git-clone", "clone"),
    ("lint", "freestyle", "test"),
    ("build", "build", "build"),
    ("unit_tests", "freestyle", "test"),
    ("security_scan", "freestyle", "test"),
    ("integration_tests", "freestyle", "test"),
    ("push", "push", "push"),
    ("approve_deploy", "pending-approval", "deploy"),
    ("deploy", "helm", "deploy"),
    ("notify", "freestyle", "notify"),
]
CRON_EXPRESSIONS = [
    ("0 3 * * *", "nightly"),
    ("*/30 * * * *", "half-hourly"),
    ("0 6 * * 1", "weekly"),
    ("15 1 * * *", "cleanup"),
]


class PipelineInfo:
    """What builds and runs need to know about a pipeline (the record itself is `doc`)."""

    __slots__ = (
        "cron_triggers",
        "doc",
        "final_yaml_json",
        "git_triggers",
        "id",
        "index",
        "last_executed",
        "name",
        "outcome",
        "project",
        "project_id",
        "repo",
        "runtime",
        "short_name",
        "steps",
        "yaml",
        "yaml_json",
    )

    def __init__(self, **kw: Any):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


# ---------------------------------------------------------------------------------------------------------------
# YAML (a tiny emitter: JSON scalars are valid YAML)
# ---------------------------------------------------------------------------------------------------------------
def to_yaml(value: Any, indent: int = 0) -> str:
    pad = "  " * indent
    lines: List[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            else:
                lines.append(f"{pad}{k}: {json.dumps(v)}")
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, dict) and v:
                inner = to_yaml(v, indent + 1).lstrip()
                lines.append(f"{pad}- {inner}")
            else:
                lines.append(f"{pad}- {json.dumps(v)}")
    else:
        lines.append(pad + json.dumps(value))
    return "\n".join(lines)


def step_spec(name: str, kind: str, stage: str, repo: Dict[str, str], rng: random.Random) -> Dict[str, Any]:
    """One step of a pipeline's `spec.steps`, with the options real pipelines carry (environment, conditions,
    retries), so that a pipeline's YAML is several kB like a real one."""
    full = f"{repo['owner']}/{repo['name']}"
    if kind == "git-clone":
        return {
            "title": "Cloning repository",
            "type": kind,
            "repo": full,
            "revision": "${{CF_BRANCH}}",
            "git": "github",
            "stage": stage,
            "depth": rng.choice([None, 1, 50]),
            "exclude_blobs": False,
        }
    if kind == "build":
        return {
            "title": "Building Docker image",
            "type": kind,
            "image_name": full,
            "tag": "${{CF_SHORT_REVISION}}",
            "dockerfile": "Dockerfile",
            "stage": stage,
            "working_directory": "${{main_clone}}",
            "registry": "dockerhub",
            "disable_push": True,
            "build_arguments": [
                f"NODE_VERSION={rng.choice(['18', '20', '22'])}",
                "BUILD_DATE=${{CF_BUILD_TIMESTAMP}}",
                "GIT_COMMIT=${{CF_REVISION}}",
                f"SERVICE={repo['name']}",
            ],
            "tags": ["${{CF_BRANCH_TAG_NORMALIZED}}", "${{CF_SHORT_REVISION}}"],
            "metadata": {"set": [{"CF_QUALITY": True}, {"owner": f"team-{rng.choice(['a', 'b', 'c'])}"}]},
            "buildkit": rng.random() < 0.5,
        }
    if kind == "push":
        return {
            "title": "Pushing image",
            "type": kind,
            "candidate": "${{build}}",
            "tag": "${{CF_BRANCH_TAG_NORMALIZED}}",
            "registry": "dockerhub",
            "stage": stage,
            "tags": ["${{CF_SHORT_REVISION}}", "latest"],
            "when": {"branch": {"only": ["main", "/^release\\/.*/"]}},
        }
    if kind == "pending-approval":
        return {
            "title": "Approve deployment",
            "type": kind,
            "timeout": {"duration": 2, "finalState": "denied"},
            "stage": stage,
            "when": {"branch": {"only": ["main"]}},
            "description": "A platform engineer approves production deployments during office hours.",
        }
    if kind == "helm":
        return {
            "title": "Deploying with Helm",
            "type": kind,
            "stage": stage,
            "working_directory": "${{main_clone}}",
            "arguments": {
                "action": "install",
                "chart_name": f"charts/{repo['name']}",
                "release_name": repo["name"],
                "kube_context": "prod-cluster",
                "helm_version": "3.14.0",
                "namespace": rng.choice(["default", "apps", repo["name"]]),
                "custom_values": [
                    "image.tag=${{CF_SHORT_REVISION}}",
                    f"replicaCount={rng.randint(2, 6)}",
                    "ingress.enabled=true",
                    f"ingress.host={repo['name']}.acme.example",
                ],
                "cmd_ps": "--wait --timeout 10m0s --atomic",
            },
            "retry": {"maxAttempts": 2, "delay": 10, "exponentialFactor": 2},
            "when": {
                "condition": {
                    "all": {
                        "mainBranch": "'${{CF_BRANCH}}' == 'main'",
                        "noSkip": "includes('${{CF_COMMIT_MESSAGE}}', '[skip deploy]') == false",
                    }
                }
            },
        }
    commands = {
        "lint": ["npm ci --prefer-offline --no-audit", "npm run lint -- --max-warnings 0", "npm run format:check"],
        "unit_tests": [
            "npm ci --prefer-offline --no-audit",
            "npm test -- --ci --coverage --reporters=default",
            "cp coverage/lcov.info ${{CF_VOLUME_PATH}}/lcov.info",
            "cf_export COVERAGE_FILE=${{CF_VOLUME_PATH}}/lcov.info",
        ],
        "security_scan": [
            "trivy fs --exit-code 1 --severity HIGH,CRITICAL --ignore-unfixed .",
            "trivy config --exit-code 0 ./charts",
        ],
        "integration_tests": [
            "make integration SERVICE_URL=http://app:8080",
            "make report > ${{CF_VOLUME_PATH}}/integration-report.txt",
        ],
        "notify": [
            'curl -sf -X POST "$SLACK_WEBHOOK" -d @message.json',
            'echo "Notified ${{CF_BUILD_INITIATOR}} about ${{CF_BUILD_URL}}"',
        ],
    }.get(name, ["echo done"])
    step: Dict[str, Any] = {
        "title": name.replace("_", " ").capitalize(),
        "type": "freestyle",
        "image": rng.choice(["node:20-alpine", "node:22-bookworm-slim", "aquasec/trivy:0.50.1", "alpine:3.19"]),
        "working_directory": "${{main_clone}}",
        "commands": commands,
        "stage": stage,
        "environment": [
            "CI=true",
            "NODE_ENV=test",
            f"SERVICE_NAME={repo['name']}",
            "NPM_CONFIG_CACHE=${{CF_VOLUME_PATH}}/.npm",
        ]
        + (["DEBUG=app:*"] if rng.random() < 0.3 else []),
    }
    if rng.random() < 0.4:
        step["retry"] = {"maxAttempts": 3, "delay": 5, "exponentialFactor": 2}
    if rng.random() < 0.3:
        step["when"] = {"branch": {"ignore": ["/^renovate\\/.*/", "/^dependabot\\/.*/"]}}
    if name == "integration_tests":
        step["services"] = {
            "composition": {
                "app": {"image": "${{build}}", "ports": [8080]},
                "db": {"image": "postgres:16-alpine", "environment": ["POSTGRES_PASSWORD=test"]},
            },
            "readiness": {
                "timeoutSeconds": 30,
                "periodSeconds": 5,
                "image": "byrnedo/alpine-curl",
                "commands": ["curl -sf http://app:8080/health"],
            },
        }
    return step


def hooks_spec(repo: Dict[str, str]) -> Dict[str, Any]:
    return {
        "on_elected": {"exec": {"image": "alpine:3.19", "commands": ['echo "Build ${{CF_BUILD_ID}} elected"']}},
        "on_fail": {
            "exec": {
                "image": "curlimages/curl:8.7.1",
                "commands": [
                    'curl -sf -X POST "$SLACK_WEBHOOK" -d \'{"text": "'
                    + repo["name"]
                    + " build ${{CF_BUILD_ID}} failed\"}'"
                ],
            }
        },
        "on_finish": {"cleanup": {"image": "alpine:3.19", "commands": ["rm -rf ${{CF_VOLUME_PATH}}/tmp"]}},
    }


def user_yaml(name: str, repo: Dict[str, str], spec: Dict[str, Any]) -> str:
    """The pipeline as its author wrote it (`originalYamlString`, a build's `userYamlDescriptor`)."""
    header = (
        f"# {name}: build, test and ship {repo['owner']}/{repo['name']}.\n"
        "# More about Codefresh pipelines: https://codefresh.io/docs/docs/pipelines/what-is-the-codefresh-yaml/\n"
        "# Stages run in order; steps of a stage run one after the other unless marked parallel.\n"
    )
    body = {"version": spec["version"], "stages": spec["stages"], "hooks": spec["hooks"], "steps": spec["steps"]}
    return header + to_yaml(body) + "\n"


REVISION_PLACEHOLDER = "__SANDBOX_BUILD_REVISION__"


def processed_yaml(spec: Dict[str, Any]) -> str:
    """The YAML Codefresh runs (a build's `finalWorkflowYaml`): the author's steps with every default spelled out,
    no comments, and the clone step's revision resolved (`REVISION_PLACEHOLDER`, replaced per build)."""
    steps: Dict[str, Any] = {}
    for step_name, step in spec["steps"].items():
        full = {
            "title": step.get("title"),
            "type": step["type"],
            "fail_fast": True,
            "stage": step.get("stage"),
            **{k: v for k, v in step.items() if k not in ("title", "type", "stage")},
            "retry": step.get("retry") or {"maxAttempts": 1, "delay": 5, "exponentialFactor": 1},
            "timeout": step.get("timeout") or "60m",
            "docker_machine": None,
            "registry_context": None,
            "strict_fail_fast": False,
            "metadata": step.get("metadata") or {"set": []},
            "annotations": {"set": [], "unset": []},
        }
        if step["type"] == "git-clone":
            full["revision"] = REVISION_PLACEHOLDER
            full["credentials"] = {"username": "${{CF_REPO_OWNER}}", "password": "${{GITHUB_TOKEN}}"}
        if step["type"] == "freestyle":
            full.setdefault("shell", "sh")
            full["volumes"] = ["${{CF_VOLUME_NAME}}:/codefresh/volume"]
        steps[step_name] = full
    body = {
        "version": spec["version"],
        "mode": "sequential",
        "fail_fast": True,
        "stages": spec["stages"],
        "hooks": spec["hooks"],
        "success_criteria": {"steps": {"ignore": []}},
        "steps": steps,
    }
    return to_yaml(body) + "\n"


def json_string_body(text: str) -> bytes:
    """`text` as the inside of a JSON string (escaped, without the quotes): such pieces can be concatenated."""
    return json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8")


# ---------------------------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------------------------
def make_project(g: Gen, i: int, account_id: str) -> Dict[str, Any]:
    """An item of GET /projects (`pipelinesNumber` is filled in once pipelines exist)."""
    created = g.past_ms(720, 120)
    name = "demo" if i == 0 else f"{PROJECT_WORDS[i % len(PROJECT_WORDS)]}-{i:03d}"
    return {
        "id": g.oid(created),
        "projectName": name,
        "accountId": account_id,
        "tags": g.sample(["team-a", "team-b", "prod", "staging", "legacy", "critical"], g.randint(0, 3)),
        "variables": [{"key": "REGION", "value": g.pick(["eu-west-1", "us-east-1", "ap-south-1"])}]
        + ([{"key": "DEPLOY_TOKEN", "value": "*****", "encrypted": True}] if g.chance(0.3) else []),
        "favorite": g.chance(0.1),
        "pipelinesNumber": 0,
        "updatedAt": iso(g.past_ms(100, 1)),
        "metadata": {"createdAt": iso(created)},
        "image": g.pick(
            [
                None,
                None,
                "https://cdn.example.com/projects/icon-rocket.svg",
                "https://cdn.example.com/projects/icon-cube.svg",
            ]
        ),
    }


def make_git_trigger(g: Gen, pipeline_id: str, repo: Dict[str, str], i: int, created: int) -> Dict[str, Any]:
    pr = i == 1
    tid = g.oid(created)
    return {
        "id": tid,
        "name": "pull-request" if pr else f"{repo['name']}-push",
        "type": "git",
        "repo": f"{repo['owner']}/{repo['name']}",
        "events": ["pullrequest.opened", "pullrequest.synchronize"] if pr else ["push.heads"],
        "branchRegex": "/.*/gi" if pr else g.pick(["/^main$/gi", "/.*/gi", "/^(main|release\\/.*)$/gi"]),
        "branchRegexInput": "regex",
        "pullRequestTargetBranchRegex": "/^main$/gi" if pr else None,
        "commentRegex": "/.*/gi",
        "modifiedFilesGlob": g.pick(["", "", "src/**", "charts/**"]),
        "provider": "github",
        "context": "github-acme",
        "disabled": g.chance(0.1),
        "verified": True,
        "status": "active",
        "endpoint": f"https://g.codefresh.io/api/providers/github/hook/{g.hex(12)}",
        "secret": g.hex(20),
        "options": {"noCache": False, "noCfCache": False, "resetVolume": False},
        "variables": [{"key": "TRIGGER_SOURCE", "value": "git"}] if g.chance(0.3) else [],
        "runtimeEnvironment": None
        if g.chance(0.7)
        else {"name": "acme-sandbox/default", "cpu": "1000m", "memory": "2048Mi", "dindStorage": "nodiskcache"},
        "lastExecutionDate": None,
    }


def make_cron_trigger(g: Gen, git_trigger: Optional[Dict[str, Any]], created: int) -> Dict[str, Any]:
    expression, message = g.pick(CRON_EXPRESSIONS)
    uid = g.hex(16)
    return {
        "id": g.oid(created),
        "name": message,
        "type": "cron",
        "expression": expression,
        "message": message,
        "event": f"cron:codefresh:{expression}:{message}:{uid}",
        "gitTriggerId": git_trigger["id"] if git_trigger else None,
        "branch": "main" if git_trigger else None,
        "variables": [],
        "options": {"noCache": False, "noCfCache": False, "resetVolume": False},
        "disabled": g.chance(0.1),
        "verified": True,
        "status": "active",
    }


def make_pipeline(g: Gen, i: int, project: Dict[str, Any], account_id: str, runtimes: List[str]) -> PipelineInfo:
    created = g.past_ms(700, 91)
    pid = g.oid(created)
    short = (
        WELL_KNOWN[i]
        if i < len(WELL_KNOWN) and project["projectName"] == "demo"
        else f"{g.pick(PIPELINE_WORDS)}-{i:03d}"
    )
    name = f"{project['projectName']}/{short}"
    repo = g.repo()
    # `denied-approval` always has the approval step: its runs end `denied` there.
    chosen = [
        s
        for s in STEP_CATALOG
        if s[0] in ("main_clone", "build")
        or (short == "denied-approval" and s[0] == "approve_deploy")
        or g.chance(0.45)
    ]
    local = random.Random(int(pid, 16))  # the YAML's details, without shifting the other records' draws
    steps = {n: step_spec(n, k, st, repo, local) for n, k, st in chosen}
    stages = list(dict.fromkeys(st for _, _, st in chosen))
    n_git = 0 if g.chance(0.15) else (1 if g.chance(0.6) else 2)
    git = [make_git_trigger(g, pid, repo, t, created) for t in range(n_git)]
    cron = [make_cron_trigger(g, git[0] if git else None, created)] if g.chance(0.3) else []
    variables = [
        {"key": "IMAGE_NAME", "value": f"{repo['owner']}/{repo['name']}"},
        {"key": "SERVICE_PORT", "value": str(g.pick([8080, 3000, 5000]))},
    ]
    if g.chance(0.3):
        variables.append({"key": "NPM_TOKEN", "value": "*****", "encrypted": True})
    spec = {"version": "1.0", "stages": stages, "hooks": hooks_spec(repo), "steps": steps}
    yaml = user_yaml(name, repo, spec)
    runtime = g.pick(runtimes)
    doc = {
        "version": "1.0",
        "kind": "pipeline",
        "metadata": {
            "id": pid,
            "name": name,
            "shortName": short,
            "project": project["projectName"],
            "projectId": project["id"],
            "accountId": account_id,
            "created_at": iso(created),
            "updated_at": iso(g.past_ms(90, 1)),
            "labels": {
                "tags": g.sample(["backend", "frontend", "critical", "experimental", "team-a"], g.randint(0, 2))
            },
            "isPublic": g.chance(0.05),
            "revision": g.randint(1, 40),
            "originalYamlString": yaml,
            "deprecate": {
                "applicationPort": str(g.pick([8080, 3000])) if g.chance(0.3) else None,
                "repoPipeline": g.chance(0.2),
            },
            "template": {"isTemplate": False, "generatedFrom": None},
        },
        "spec": {
            "triggers": git,
            "cronTriggers": cron,
            "variables": variables,
            "contexts": g.sample(["shared-config", "slack-notify", "aws-prod"], g.randint(0, 2)),
            "steps": steps,
            "stages": stages,
            "runtimeEnvironment": {"name": runtime, "cpu": "1000m", "memory": "2048Mi", "dindStorage": "nodiskcache"},
            "terminationPolicy": [{"type": "branch", "event": "onCreate"}] if g.chance(0.3) else [],
            "concurrency": g.pick([None, 0, 1, 5]),
            "triggerConcurrency": g.pick([None, 1]),
            "branchConcurrency": g.pick([None, 1]),
            "priority": 0,
            "externalResources": [],
            "packId": g.hex(24) if g.chance(0.2) else None,
            "options": {"noCache": False, "noCfCache": False, "resetVolume": False, "enableNotifications": True},
            "specTemplate": None,
        },
        "last_executed": None,
    }
    outcome = (
        "error"
        if "failing" in name
        else "terminated"
        if "terminated" in name
        else "denied"
        if "denied" in name
        else "success"
    )
    final_head, final_tail = processed_yaml(spec).split(REVISION_PLACEHOLDER, 1)
    return PipelineInfo(
        index=i,
        id=pid,
        name=name,
        short_name=short,
        project=project["projectName"],
        project_id=project["id"],
        repo=repo,
        steps=[(n, k) for n, k, _ in chosen],
        git_triggers=git,
        cron_triggers=cron,
        runtime=runtime,
        yaml=yaml,
        yaml_json=json_string_body(yaml),
        final_yaml_json=(json_string_body(final_head), json_string_body(final_tail)),
        doc=doc,
        outcome=outcome,
        last_executed=None,
    )


def make_event(g: Gen, i: int, account_id: str, cron: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """An item of GET /hermes/events. Cron triggers' events come first; `account` 000000000000 = public."""
    secret = g.hex(16)
    if cron is not None:
        return {
            "uri": cron["event"],
            "type": "cron",
            "kind": "codefresh",
            "account": account_id,
            "secret": secret,
            "status": "active",
            "endpoint": None,
            "description": f"Cron event '{cron['expression']}' ({cron['message']})",
            "help": "Runs the pipeline on a schedule",
        }
    kind = g.pick(["dockerhub", "quay", "acr", "jfrog", "ecr"])
    public = g.chance(0.1)
    repo = g.repo()
    uri = f"registry:{kind}:{repo['owner']}:{repo['name']}:push:{g.hex(12)}"
    return {
        "uri": uri,
        "type": "registry",
        "kind": kind,
        "account": "000000000000" if public else account_id,
        "secret": secret,
        "status": g.pick(["active", "active", "active", "inactive"]),
        "endpoint": f"https://g.codefresh.io/nomios/{kind}?account={account_id[:12]}&secret={secret}",
        "description": f"{kind} {repo['owner']}/{repo['name']} push",
        "help": None if g.chance(0.5) else f"Add the endpoint as a webhook of the {kind} repository",
    }


def make_public_event(g: Gen, i: int) -> Dict[str, Any]:
    """A public event of GET /hermes/events?public=true (account 000000000000)."""
    kind = g.pick(["dockerhub", "quay"])
    repo = g.repo()
    return {
        "uri": f"registry:{kind}:{repo['owner']}:{repo['name']}:push:{g.hex(12)}",
        "type": "registry",
        "kind": kind,
        "account": PUBLIC_ACCOUNT,
        "secret": g.hex(16),
        "status": "active",
        "endpoint": f"https://g.codefresh.io/nomios/{kind}?public=true",
        "description": f"{kind} {repo['owner']}/{repo['name']} push (public)",
        "help": None,
    }


def generate(g: Gen, cfg: Any, data: Any) -> None:
    projects = [make_project(g, i, data.account_id) for i in range(cfg.projects)]
    if not projects:
        projects = [make_project(g, 0, data.account_id)]
    runtimes = data.runtime_names or ["acme-sandbox/default"]
    infos: List[PipelineInfo] = []
    for i in range(cfg.pipelines):
        project = projects[0] if i < len(WELL_KNOWN) else projects[g.randint(0, len(projects) - 1)]
        infos.append(make_pipeline(g, i, project, data.account_id, runtimes))
    counts: Dict[str, int] = {}
    for p in infos:
        counts[p.project_id] = counts.get(p.project_id, 0) + 1
    for pr in projects:
        pr["pipelinesNumber"] = counts.get(pr["id"], 0)
    data.projects = Collection(projects)
    data.pipeline_infos = infos
    data.pipelines_by_key = {}
    for p in infos:
        data.pipelines_by_key[p.name] = p
        data.pipelines_by_key[p.id] = p

    crons = [(p, c) for p in infos for c in p.cron_triggers]
    events = [
        make_event(g, i, data.account_id, crons[i][1] if i < len(crons) else None) for i in range(cfg.hermes_events)
    ]
    data.hermes_events = Collection(events)
    links: List[Dict[str, Any]] = []
    seen = set()
    for i, ev in enumerate(events):
        if len(links) >= cfg.hermes_triggers:
            break
        if i < len(crons):
            pairs = [(ev, crons[i][0])]
        else:
            pairs = [(ev, g.pick(infos))] if infos else []
        for e, p in pairs:
            seen.add((e["uri"], p.id))
            links.append(_link(g, e, p))
    attempts = 0
    while infos and events and len(links) < cfg.hermes_triggers and attempts < cfg.hermes_triggers * 20:
        attempts += 1
        e, p = g.pick(events), g.pick(infos)
        if (e["uri"], p.id) not in seen:
            seen.add((e["uri"], p.id))
            links.append(_link(g, e, p))
    data.hermes_triggers = Collection(links)
    # Public events (every account may use them) come on top, listed only with ?public=true.
    public = [make_public_event(g, i) for i in range(cfg.hermes_events // 10 + 1)]
    data.hermes_events = Collection(events + public)


# GET /hermes/triggers fills only event, pipeline and filters: `event-data` is Go's zero-value Event (empty strings,
# its omitempty fields left out) and `filters` (a map with omitempty) is left out when empty (cf-triggers server code).
EMPTY_EVENT_DATA = {"uri": "", "type": "", "kind": "", "account": "", "secret": ""}


def _link(g: Gen, event: Dict[str, Any], p: PipelineInfo) -> Dict[str, Any]:
    filters = {} if event["type"] == "cron" or g.chance(0.5) else {"tag": g.pick(["latest", "^v\\d+"])}
    link: Dict[str, Any] = {"event": event["uri"], "pipeline": p.id}
    if filters:
        link["filters"] = filters
    link["event-data"] = dict(EMPTY_EVENT_DATA)
    return link


def finalize(data: Any) -> None:
    """Serialize the pipelines once builds exist (`last_executed`, git triggers' `lastExecutionDate`)."""
    for p in data.pipeline_infos:
        p.doc["last_executed"] = p.last_executed
        for t in p.git_triggers:
            t["lastExecutionDate"] = p.last_executed if not t["disabled"] else None
    data.pipelines = Collection([p.doc for p in data.pipeline_infos])


# ---------------------------------------------------------------------------------------------------------------
# handlers
# ---------------------------------------------------------------------------------------------------------------
def get_projects(req: Request) -> Response:
    projects = req.data.projects
    name = req.arg("name")
    indexes = (
        range(len(projects)) if not name else [i for i, p in enumerate(projects.records) if p["projectName"] == name]
    )
    window = offset_window(req, len(indexes))
    return raw_json(projects.wrap(b'{"projects":[', (indexes[j] for j in window), b"]}"))


def get_pipelines(req: Request) -> Response:
    """`id` filters by full name (or id), `projectId` by project: `count` is the total of matching pipelines."""
    pipelines = req.data.pipelines
    wanted_name, project_id = req.arg("id"), req.arg("projectId")
    if wanted_name or project_id:
        infos = req.data.pipeline_infos
        indexes = [
            i
            for i, p in enumerate(infos)
            if (not wanted_name or wanted_name in (p.name, p.id)) and (not project_id or p.project_id == project_id)
        ]
    else:
        indexes = range(len(pipelines))
    window = offset_window(req, len(indexes))
    return raw_json(pipelines.wrap(b'{"docs":[', (indexes[j] for j in window), b'],"count":%d}' % len(indexes)))


def get_pipeline_names(req: Request) -> Response:
    """The light listing (handler `getAllAccountPipelinesNames`, same parameters as /pipelines). Its shape is not
    documented: the sandbox answers the /pipelines envelope with each pipeline's identifying metadata only."""
    infos = req.data.pipeline_infos
    wanted_name, project_id = req.arg("id"), req.arg("projectId")
    matching = [
        p
        for p in infos
        if (not wanted_name or wanted_name in (p.name, p.id)) and (not project_id or p.project_id == project_id)
    ]
    window = offset_window(req, len(matching))
    docs = [
        {
            "metadata": {
                key: matching[i].doc["metadata"][key]
                for key in ("id", "name", "shortName", "project", "projectId", "updated_at")
            }
        }
        for i in window
    ]
    return json_response({"docs": docs, "count": len(matching)})


def get_hermes_triggers(req: Request) -> Response:
    links = req.data.hermes_triggers
    return raw_json(links.array(range(len(links))))


def get_hermes_events(req: Request) -> Response:
    """The account's events; public ones (account 000000000000) only with `public=true`, as the server does.
    `type` and `kind` filter exactly."""
    events = req.data.hermes_events
    public, kind, event_type = req.arg("public") == "true", req.arg("kind"), req.arg("type")
    indexes = [
        i
        for i, e in enumerate(events.records)
        if (public or e["account"] != PUBLIC_ACCOUNT)
        and (not kind or e["kind"] == kind)
        and (not event_type or e["type"] == event_type)
    ]
    return raw_json(events.array(indexes))


def run_pipeline(req: Request) -> Response:
    """Start a build. Body (all optional): branch, sha, trigger, variables ([{key, value}] or {name: value}),
    options, contexts, annotations ({key: value}). Answers the build id as a JSON string."""
    name = req.params["name"]
    info: Optional[PipelineInfo] = req.data.pipelines_by_key.get(name)
    req.app.count_post(info.name if info else name)
    if info is None:
        raise not_found(f"Pipeline '{name}' not found")
    body = req.body if req.body is not None else {}
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object")
    if not isinstance(body.get("annotations", {}) or {}, dict):
        raise bad_request("'annotations' must be an object of key: value")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, (list, dict)):
        raise bad_request("'variables' must be a list of {key, value} or an object")
    build_id = req.data.start_run(info, body)
    return Response(200, dumps(build_id), headers={"Location": f"/api/builds/{build_id}"})


ROUTES = [
    route("GET", "/projects", get_projects),
    route("GET", "/pipelines", get_pipelines),
    route("GET", "/pipelines/names", get_pipeline_names),
    route("GET", "/hermes/triggers", get_hermes_triggers),
    route("GET", "/hermes/events", get_hermes_events),
    route("POST", "/pipelines/run/{name}", run_pipeline),
]
