"""Resources family: the account's configuration objects.

GET /step-types             offset paging   {"docs": [...]}
GET /runtime-environments   offset paging   bare array
GET /contexts               no paging       bare array   (spec.data holds credentials; `decrypt` is ignored)
GET /execution-contexts     no paging       {"docs": [...]}
GET /agents                 no paging       bare array
GET /helm/repos             no paging       bare array with Go-style keys {Name, Public, CreatedAt, UpdatedAt}
GET /environments-v2        no paging       {"docs": [...], "count": n}   (items with or without `_id`: ENVIRONMENTS_ID)
GET /views/                 page paging     {"docs", "total", "limit", "page", "pages", "offset"} (mongoose-paginate)
GET /registries             no paging       bare array   (each registry carries its credentials)
GET /clusters               no paging       bare array   {_id, selector, provider, providerAgent}
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from .common import MINUTE_MS, Collection, Gen, Request, Response, capped_limit, iso, offset_window, raw_json, route

STEP_VENDORS = [
    "codefresh",
    "slack",
    "aws",
    "gcp",
    "azure",
    "jira",
    "snyk",
    "sonar",
    "helm",
    "kubernetes",
    "github",
    "gitlab",
    "jfrog",
    "datadog",
    "terraform",
    "argo",
    "pagerduty",
    "docker",
    "npm",
    "python",
    "trivy",
    "vault",
    "sentry",
]
STEP_ACTIONS = ["deploy", "notify", "scan", "publish", "login", "apply", "sync", "report", "upload", "release"]
CATEGORIES = ["build", "deployment", "notifications", "security", "testing", "utility", "cloud", "kubernetes"]


# ---------------------------------------------------------------------------------------------------------------
# step types
# ---------------------------------------------------------------------------------------------------------------
def make_step_type(g: Gen, i: int) -> Dict[str, Any]:
    vendor = STEP_VENDORS[i % len(STEP_VENDORS)]
    action = STEP_ACTIONS[(i // len(STEP_VENDORS)) % len(STEP_ACTIONS)]
    suffix = "" if i < len(STEP_VENDORS) * len(STEP_ACTIONS) else f"-{i}"
    name = f"{vendor}-{action}{suffix}"
    official = vendor in ("codefresh", "helm", "kubernetes", "docker") or g.chance(0.2)
    created = g.past_ms(1500, 30)
    updated = max(created, g.past_ms(400, 1))
    version = f"{g.randint(0, 3)}.{g.randint(0, 12)}.{g.randint(0, 9)}"
    arguments = {
        "$schema": "http://json-schema.org/draft-07/schema",
        "type": "object",
        "additionalProperties": False,
        "required": ["TARGET"],
        "properties": {
            "TARGET": {"type": "string", "description": f"What to {action}"},
            "VERBOSE": {"type": "boolean", "default": False},
        },
    }
    freestyle = g.chance(0.6)
    return {
        "version": "1.0",
        "kind": "step-type",
        "metadata": {
            "id": g.oid(created),
            "name": name if official or g.chance(0.5) else f"acme/{name}",
            "version": version,
            "title": f"{vendor.capitalize()} {action}",
            "description": f"{action.capitalize()} with {vendor}",
            "categories": g.sample(CATEGORIES, g.randint(1, 2)),
            "official": official,
            "isPublic": official or g.chance(0.5),
            "latest": g.chance(0.85),
            "stage": "graduated" if official or g.chance(0.6) else "incubating",
            "created_at": iso(created),
            "updated_at": iso(updated),
            "maintainers": [
                {
                    "name": "Codefresh" if official else "Acme Platform Team",
                    "email": "steps@codefresh.io" if official else "platform@acme.example",
                }
            ],
            "sources": [f"https://github.com/codefresh-io/steps/tree/master/incubating/{name}"],
            "sourceURL": f"https://github.com/codefresh-io/steps/tree/master/incubating/{name}/step.yaml",
            "tags": g.sample(["docker", "k8s", "cloud", "notification", "security", "git"], g.randint(0, 3)),
            "icon": {
                "type": "svg",
                "url": f"https://cdn.example.com/steps/{vendor}.svg",
                "background": g.pick(["#f4f4f4", "#ffffff", "#0b5394"]),
            }
            if g.chance(0.8)
            else None,
            "examples": [
                {
                    "description": "example-1",
                    "workflow": {"version": "1.0", "steps": {action: {"type": name, "arguments": {"TARGET": "prod"}}}},
                }
            ],
        },
        "spec": {
            "arguments": json.dumps(arguments),
            "returns": json.dumps({"type": "object", "properties": {"RESULT": {"type": "string"}}})
            if g.chance(0.3)
            else None,
            "steps": {
                "main": {
                    "name": name,
                    "image": f"quay.io/codefreshplugins/{vendor}:{version}",
                    "environment": ["TARGET=${{TARGET}}"],
                }
            }
            if freestyle
            else None,
            "stepsTemplate": None
            if freestyle
            else f"main:\n  name: {name}\n  image: quay.io/codefreshplugins/{vendor}:{version}\n  commands:\n"
            f"    - {action} [[.Arguments.TARGET]]\n",
            "delimiters": {"left": "[[", "right": "]]"},
        },
        "metrics": {"finished": g.randint(0, 250_000)},
    }


# ---------------------------------------------------------------------------------------------------------------
# runtime environments and agents
# ---------------------------------------------------------------------------------------------------------------
def make_runtime(g: Gen, i: int, account_id: str, changed_by: str) -> Dict[str, Any]:
    created = g.past_ms(800, 30)
    if i == 0:
        name = "acme-sandbox/default"
    elif i % 10 == 9:
        name = f"system/default/hybrid/k8s_{i:03d}"
    else:
        name = f"acme-cluster-{i // 10 + 1:02d}/ns-{i % 10:02d}"
    public = name.startswith("system/")
    agent = not public and g.chance(0.7)
    cluster = name.split("/")[0]
    return {
        "metadata": {
            "name": name,
            "agent": agent,
            "changedBy": None if public else changed_by,
            "creationTime": iso(created),
        },
        "version": g.randint(1, 30),
        "extends": ["system/default/hybrid/k8s_low_limits"] if not public else [],
        "description": f"Runtime environment {name}",
        "accountId": None if public else account_id,
        "isDefault": i == 0,
        "isPublic": public,
        "plan": "pay-as-you-go" if public else None,
        "accounts": [] if not public else [account_id],
        "runtimeScheduler": {
            "type": "KubernetesPod",
            "cluster": {
                "clusterProvider": {"accountId": account_id, "selector": cluster},
                "namespace": name.split("/")[-1],
                "nodeSelector": {},
            },
            "annotations": {},
            "envVars": {"CF_HOST_NAME": cluster},
        },
        "dockerDaemonScheduler": {
            "type": "DindKubernetesPod",
            "cluster": {
                "clusterProvider": {"accountId": account_id, "selector": cluster},
                "namespace": name.split("/")[-1],
            },
            "userAccess": True,
            "defaultDindResources": {"requests": {"cpu": "390m", "memory": "255Mi"}, "limits": {"cpu": "1000m"}},
        },
        "status": {"message": "successfully synced", "updated_at": iso(g.past_ms(20))},
        "nonComplete": g.chance(0.05),
        "appProxy": {"externalHost": f"app-proxy.{cluster}.acme.example"} if g.chance(0.2) else None,
        "tags": g.sample(["gpu", "arm64", "spot", "prod"], g.randint(0, 2)),
        "history": [],
    }


def make_agent(g: Gen, i: int, account_id: str, runtimes: List[str]) -> Dict[str, Any]:
    reported = g.past_ms(0.02)
    health = "HEALTHY" if i != 2 else "DEGRADED"
    return {
        "id": g.oid(g.past_ms(500, 40)),
        "name": f"agent-{['eu', 'us', 'ap', 'ci', 'gpu'][i % 5]}-{i:02d}",
        "account": account_id,
        "runtimes": runtimes,
        "status": {
            "healthStatus": health,
            "message": "All good" if health == "HEALTHY" else "Slow reports",
            "reportedAt": iso(reported),
        },
        "tokenName": f"agent-token-{i:02d}",
        "lastReported": iso(reported - g.randint(0, 5) * MINUTE_MS // 5),
    }


# ---------------------------------------------------------------------------------------------------------------
# contexts, execution contexts, helm repos
# ---------------------------------------------------------------------------------------------------------------
def make_context(g: Gen, i: int) -> Dict[str, Any]:
    kind = [
        "git.github",
        "secret",
        "config",
        "helm-repository",
        "storage.s3",
        "secret-yaml",
        "git.bitbucket",
        "config-yaml",
    ][i % 8]
    names = {
        "git.github": "github",
        "secret": "secrets",
        "config": "shared-config",
        "helm-repository": "helm",
        "storage.s3": "s3-artifacts",
        "secret-yaml": "secret-yaml",
        "git.bitbucket": "bitbucket",
        "config-yaml": "config-yaml",
    }
    name = f"{names[kind]}-{i:02d}"
    if kind.startswith("git."):
        data: Dict[str, Any] = {
            "auth": {
                "type": "basic",
                "username": "acme-bot",
                "password": "ghp_" + g.hex(36),
                "apiHost": "api.github.com" if kind == "git.github" else "api.bitbucket.org",
                "apiPathPrefix": "/",
                "sshPrivateKey": None,
            }
        }
    elif kind == "secret":
        data = {"NPM_TOKEN": "npm_" + g.hex(36), "SLACK_WEBHOOK": "https://hooks.slack.example/T0/" + g.hex(24)}
    elif kind == "config":
        data = {"REGION": "eu-west-1", "LOG_LEVEL": g.pick(["info", "debug"])}
    elif kind == "helm-repository":
        data = {
            "repositoryUrl": f"https://charts.acme.example/{i}",
            "variables": {"HELMREPO_USERNAME": "acme", "HELMREPO_PASSWORD": g.hex(16)},
        }
    elif kind == "storage.s3":
        data = {
            "auth": {
                "type": "basic",
                "jsonConfig": {"accessKeyId": "AKIA" + g.hex(16).upper(), "secretAccessKey": g.hex(40)},
            }
        }
    else:
        data = {"yaml": {"registry": {"user": "acme", "token": g.hex(20)}}}
    return {
        "apiVersion": "v1",
        "kind": "context",
        "owner": "user" if g.chance(0.15) else "account",
        "metadata": {"name": name, "default": i == 0, "system": False},
        "spec": {"type": kind, "data": data},
    }


def make_execution_context(g: Gen, i: int, account_id: str) -> Dict[str, Any]:
    created = g.past_ms(400, 20)
    return {
        "_id": g.oid(created),
        "name": "default" if i == 0 else f"exec-ctx-{i:02d}",
        "description": None if g.chance(0.3) else "Pipelines that deploy with the deployer role",
        "account": account_id,
        "accountDefault": i == 0,
        "tags": g.sample(["deploy", "readonly", "admin"], g.randint(0, 2)),
        "createdAt": iso(created),
        "updatedAt": iso(max(created, g.past_ms(60, 1))),
        "__v": 0,
    }


def make_helm_repo(g: Gen, i: int) -> Dict[str, Any]:
    created = g.past_ms(600, 20)
    return {
        "Name": "cf-default" if i == 0 else f"helm-{i:02d}",
        "Public": i == 0 or g.chance(0.3),
        "CreatedAt": iso(created),
        "UpdatedAt": iso(max(created, g.past_ms(30, 1))),
    }


# ---------------------------------------------------------------------------------------------------------------
# environments-v2 and views
# ---------------------------------------------------------------------------------------------------------------
# Whether GET /environments-v2 items carry an `_id` (FIDELITY.md 2): no source shows one (the Go SDK reads only
# `metadata.name` and `spec`), so `present` (a Mongo document's id, the sandbox's guess) and `absent` are both possible.
ENVIRONMENTS_ID = ("present", "absent")


def make_environment(g: Gen, i: int, account_id: str, with_id: bool = True) -> Dict[str, Any]:
    """A GitOps environment: `spec{type: "argo", application, context, project}` as Codefresh's Go SDK reads and
    creates them ([GO] `gitops.go`); `_id` (left out when not `with_id`) and the dates are the sandbox's (no source
    shows them)."""
    created = g.past_ms(300, 10)
    oid = g.oid(created)  # drawn either way, so the reading changes no other id
    name = ["production", "staging", "qa", "dev", "preview", "perf", "dr", "sandbox"][i % 8] + (
        "" if i < 8 else f"-{i}"
    )
    app = g.pick(["checkout", "payments", "search", "web", "gateway"])
    return {
        **({"_id": oid} if with_id else {}),
        "accountId": account_id,
        "metadata": {"name": name, "labels": {"tier": g.pick(["prod", "non-prod"])}},
        "spec": {
            "type": "argo",
            "application": f"{app}-{name}",
            "context": f"argocd-acme-cluster-{g.randint(1, 9):02d}",
            "project": g.pick(["default", app]),
        },
        "createdAt": iso(created),
        "updatedAt": iso(max(created, g.past_ms(10))),
        "__v": 0,
    }


def make_view(g: Gen, i: int, account_id: str, user_ids: List[str]) -> Dict[str, Any]:
    created = g.past_ms(300, 5)
    return {
        "_id": g.oid(created),
        "name": f"view-{i:02d}",
        "account": account_id,
        "user": g.pick(user_ids),
        "type": "workflows",
        "filters": {
            "status": g.sample(["success", "error", "running", "terminated"], g.randint(0, 2)),
            "branch": g.sample(["main", "develop"], g.randint(0, 1)),
            "pipeline": [],
        },
        "isDefault": i == 0,
        "createdAt": iso(created),
        "updatedAt": iso(max(created, g.past_ms(5))),
        "__v": 0,
    }


# ---------------------------------------------------------------------------------------------------------------
# registries and clusters (no built-in stream reads them: custom streams do)
# ---------------------------------------------------------------------------------------------------------------
# Registry kinds and the credential fields each carries (docs/api-notes.md section 5, from Codefresh's Terraform
# provider): domain/username/password for most, token (bintray), accessKeyId/secretAccessKey/region (ECR), keyfile
# (GCR, GAR), clientId/clientSecret (ACR).
REGISTRY_KINDS = [
    ("standard", "other", "registry.acme.example"),
    ("standard", "dockerhub", "docker.io"),
    ("ecr", "ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
    ("gcr", "gcr", "gcr.io"),
    ("acr", "acr", "acme.azurecr.io"),
    ("standard", "bintray", "acme-docker.bintray.io"),
    ("gar", "gar", "europe-docker.pkg.dev"),
]


def make_registry(g: Gen, i: int) -> Dict[str, Any]:
    kind, provider, domain = REGISTRY_KINDS[i % len(REGISTRY_KINDS)]
    created = g.past_ms(700, 10)
    registry: Dict[str, Any] = {
        "_id": g.oid(created),
        "name": f"{provider}-{i:02d}",
        "kind": kind,
        "provider": provider,
        "domain": domain,
        "default": i == 0,
        "primary": i == 0,
        "internal": False,
        "behindFirewall": g.chance(0.2),
        "repositoryPrefix": g.pick(["", "acme", "acme/platform"]),
        "fallbackRegistry": "" if i else None,
    }
    if provider == "ecr":
        registry.update(accessKeyId="AKIA" + g.hex(16).upper(), secretAccessKey=g.hex(40), region="eu-west-1")
    elif provider in ("gcr", "gar"):
        registry["keyfile"] = json.dumps({"type": "service_account", "private_key_id": g.hex(40)})
    elif provider == "acr":
        registry.update(clientId=g.hex(8) + "-" + g.hex(4), clientSecret=g.hex(32))
    elif provider == "bintray":
        registry.update(username="acme-bot", token=g.hex(40))
    else:
        registry.update(username="acme-bot", password="pw-" + g.hex(20))
    return registry


def make_cluster(g: Gen, i: int) -> Dict[str, Any]:
    # The CLI's Cluster entity reads `_id`, `selector` (the name), `provider` and `providerAgent`; nothing more is
    # evidenced.
    return {
        "_id": g.oid(g.past_ms(600, 30)),
        "selector": f"acme-cluster-{i + 1:02d}",
        "provider": g.pick(["custom", "gcloud", "aws", "azure"]),
        "providerAgent": g.pick(["server", "agent"]),
    }


def generate_registries_and_clusters(g: Gen, cfg: Any, data: Any) -> None:
    data.registries = Collection([make_registry(g, i) for i in range(cfg.registries)])
    data.clusters = Collection([make_cluster(g, i) for i in range(cfg.clusters)])


def generate_runtimes(g: Gen, cfg: Any, data: Any) -> None:
    changed_by = data.current_user["userName"]
    runtimes = [make_runtime(g, i, data.account_id, changed_by) for i in range(cfg.runtime_environments)]
    data.runtime_environments = Collection(runtimes)
    data.runtime_names = [r["metadata"]["name"] for r in runtimes if not r["metadata"]["name"].startswith("system/")]


def generate(g: Gen, cfg: Any, data: Any) -> None:
    data.step_types = Collection([make_step_type(g, i) for i in range(cfg.step_types)])
    agent_runtimes = [r["metadata"]["name"] for r in data.runtime_environments.records if r["metadata"]["agent"]]
    data.agents = Collection(
        [make_agent(g, i, data.account_id, agent_runtimes[i :: max(1, cfg.agents)][:5]) for i in range(cfg.agents)]
    )
    data.contexts = Collection([make_context(g, i) for i in range(cfg.contexts)])
    data.execution_contexts = Collection(
        [make_execution_context(g, i, data.account_id) for i in range(cfg.execution_contexts)]
    )
    data.helm_repos = Collection([make_helm_repo(g, i) for i in range(cfg.helm_repos)])
    with_id = cfg.environments_id == "present"
    data.environments = Collection([make_environment(g, i, data.account_id, with_id) for i in range(cfg.environments)])
    user_ids = [u["_id"] for u in data.users.records]
    data.views = Collection([make_view(g, i, data.account_id, user_ids) for i in range(cfg.views)])


# ---------------------------------------------------------------------------------------------------------------
# handlers
# ---------------------------------------------------------------------------------------------------------------
def _all(items: Collection) -> bytes:
    return items.array(range(len(items)))


def get_step_types(req: Request) -> Response:
    items = req.data.step_types
    return raw_json(items.wrap(b'{"docs":[', offset_window(req, len(items)), b"]}"))


def get_runtime_environments(req: Request) -> Response:
    items = req.data.runtime_environments
    return raw_json(items.array(offset_window(req, len(items))))


def get_contexts(req: Request) -> Response:
    items = req.data.contexts
    types = req.args("type")
    if types:
        return raw_json(items.array(i for i, c in enumerate(items.records) if c["spec"]["type"] in types))
    return raw_json(_all(items))


def get_execution_contexts(req: Request) -> Response:
    items = req.data.execution_contexts
    return raw_json(items.wrap(b'{"docs":[', range(len(items)), b"]}"))


def get_agents(req: Request) -> Response:
    return raw_json(_all(req.data.agents))


def get_helm_repos(req: Request) -> Response:
    return raw_json(_all(req.data.helm_repos))


def get_environments(req: Request) -> Response:
    items = req.data.environments
    return raw_json(items.wrap(b'{"docs":[', range(len(items)), b'],"count":%d}' % len(items)))


def get_views(req: Request) -> Response:
    items = req.data.views
    page = req.int_arg("page", 1, minimum=1)
    limit = capped_limit(req, default=10)
    total = len(items)
    offset = (page - 1) * limit
    window = range(min(offset, total), min(offset + limit, total))
    pages = (total + limit - 1) // limit
    return raw_json(
        items.wrap(
            b'{"docs":[',
            window,
            (f'],"total":{total},"limit":{limit},"page":{page},"pages":{pages},"offset":{offset}}}').encode(),
        )
    )


def get_registries(req: Request) -> Response:
    return raw_json(_all(req.data.registries))


def get_clusters(req: Request) -> Response:
    return raw_json(_all(req.data.clusters))


ROUTES = [
    route("GET", "/step-types", get_step_types),
    route("GET", "/runtime-environments", get_runtime_environments),
    route("GET", "/contexts", get_contexts),
    route("GET", "/execution-contexts", get_execution_contexts),
    route("GET", "/agents", get_agents),
    route("GET", "/helm/repos", get_helm_repos),
    route("GET", "/environments-v2", get_environments),
    route("GET", "/views/", get_views),
    route("GET", "/registries", get_registries),
    route("GET", "/clusters", get_clusters),
]
