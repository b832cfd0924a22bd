"""The sandbox's GitOps records (what `POST /2.0/api/graphql` serves, see gitops.py): runtimes, clusters, git sources,
components, Argo Events pipelines, Argo Workflows with their nodes, Argo CD deployment history (releases) and
promotions. Generated once from the seed and the anchor with draws of their own (so no REST record changed), moved on
by `advance()`. Standard library only: the GraphQL engine lives in gitops.py.

Records are dicts in the API's shape, what a query selecting every declared field answers; keys that start with `_`
are the sandbox's (sort keys, planned outcomes) and are never served, since the schema has no such field.

The account: `gitops_runtimes` runtimes (the first clusters of each are its own, `in-cluster`), managed clusters named
`prod-N` and `staging-N` (alternating; `prod-*` are the production clusters of the DORA truth), two git sources and
six components per runtime, `gitops_apps` Argo CD applications (one per product and environment: `checkout-staging`,
`checkout-production`, ...), their `gitops_releases` syncs over the `build_days` before the anchor (each linked to the
newest successful classic build before it, when there is one: its revision is the deployed commit), `gitops_promotions`
promotions of the products from staging to production, `gitops_workflows` Argo Workflows (CI workflows started by the
Argo Events pipelines, and promotion workflows that wait on an approval) and `gitops_pipelines` pipelines.
"""

from __future__ import annotations

import bisect
from typing import Any, Dict, List, Optional, Tuple

from . import dora
from .common import DAY_MS, HOUR_MS, MINUTE_MS, Gen, iso

RUNTIME_NAMES = ("eu-west", "us-east", "codefresh-hosted", "ap-south", "eu-central")
PRODUCTS = ("checkout", "billing", "search", "catalog", "payments")
ENVIRONMENTS = (("staging", "NON_PROD"), ("production", "PROD"))  # a promotion flow's order
COMPONENTS = (
    ("argo-cd", "2.14.4"),
    ("argo-events", "1.9.5"),
    ("argo-rollouts", "1.8.0"),
    ("argo-workflows", "3.6.4"),
    ("app-proxy", "1.3215.0"),
    ("sealed-secrets", "0.29.0"),
)
CI_STEPS = ("clone", "test", "build", "push", "report-image")
PROMOTION_STEPS = ("approve", "update-version", "commit-and-push")  # `approve` is a suspend node
# The readings of the GraphQL API the evidence leaves open (README "Readings": the default first, and why), and the
# account's GitOps states; each is a SandboxConfig field and a command-line flag.
READINGS = {
    "gitops_schema": ("current", "before_promotions"),
    "gitops_page_cap": ("50", "none"),
    "gitops_invalid_query_status": ("400", "200"),
    "gitops_list_pagination": ("evidenced_only", "every_list"),
    "gitops_releases_filter": ("optional", "required"),
    "gitops_introspection": ("disabled", "enabled"),
}
STATES = {
    "gitops_account": ("enabled", "empty"),
    "gitops_access": ("granted", "forbidden"),
    # A reading the probe does not ask (it would need records at known times): whether the date filters of
    # gitopsReleases, promotions, productReleases and workflows are applied (`honoured`) or ignored (the whole list).
    "gitops_date_filters": ("honoured", "ignored"),
}
LEGACY_DAYS = 45  # promotions created before this many days before the anchor are served as ProductRelease nodes
DEGRADED_SHARE = 0.15  # of new deployments
FINISHED = {"SUCCEEDED", "FAILED", "TERMINATED"}


def uid(g: Gen) -> str:
    return f"{g.hex(8)}-{g.hex(4)}-{g.hex(4)}-{g.hex(4)}-{g.hex(12)}"


def meta(name: str, runtime: str, kind: str, created: int, g: Gen, account: str, **extra: Any) -> Dict[str, Any]:
    """An ObjectMeta; `extra` sets namespace, cluster, group, version, labels or lastUpdated."""
    out: Dict[str, Any] = {
        "group": "argoproj.io",
        "version": "v1alpha1",
        "kind": kind,
        "name": name,
        "description": None,
        "namespace": None,
        "runtime": runtime,
        "cluster": None,
        "account": account,
        "labels": [],
        "annotations": [],
        "lastUpdated": iso(created),
        "created": iso(created),
        "uid": uid(g),
        "revision": None,
    }
    out.update(extra)
    return out


def application(name: str, runtime: str, ns: str, repo: str, path: str, created: int, g: Gen, account: str) -> Dict:
    """The Argo CD application behind a git source or a component (their `self`)."""
    healthy = g.chance(0.9)
    health, sync = ("HEALTHY", "SYNCED") if healthy else ("DEGRADED", "OUT_OF_SYNC")
    errors = (
        []
        if healthy
        else [
            {
                "__typename": "SyncError",
                "level": "WARNING",
                "title": "Sync failed",
                "message": f"{name}: one or more objects failed to apply",
                "suggestion": "Check the application's manifests in git",
                "code": "UNKNOWN",
                "lastSeen": iso(g.past_ms(2)),
            }
        ]
    )
    return {
        "metadata": meta(name, runtime, "Application", created, g, account, namespace=ns),
        "errors": errors,
        "syncStatus": sync,
        "healthStatus": health,
        "healthMessage": None if healthy else "one or more objects failed to apply",
        "projects": ["default"],
        "updatedAt": iso(g.past_ms(10)),
        "path": path,
        "repoURL": repo,
        "revision": "HEAD",
        "status": {"syncStatus": sync, "healthStatus": health, "revision": g.hex(40), "version": "v1"},
        "destination": {"name": "in-cluster", "server": "https://kubernetes.default.svc", "namespace": ns},
        "syncPolicy": "Automated",
    }


class GitopsData:
    """Every GitOps record of one sandbox; mutable parts are guarded by the SandboxData's lock."""

    def __init__(self, cfg: Any, data: Any):
        self.data = data
        self.account = data.account_name
        self.runtimes: List[Dict] = []
        self.clusters: List[Dict] = []
        self.git_sources: List[Dict] = []
        self.components: List[Dict] = []
        self.pipelines: List[Dict] = []
        self.apps: List[Dict] = []  # the sandbox's own: the applications releases belong to
        self.releases: List[Dict] = []  # oldest first
        self.promotions: List[Dict] = []  # internal records, both views are built from them (gitops.py)
        self.workflows: List[Dict] = []  # oldest first
        self.production_clusters: List[str] = []  # the DORA truth's production (dora.py): `prod-*` clusters
        if cfg.gitops_account == "empty":  # an account without GitOps: no runtime, nothing else
            return
        g = Gen(cfg.seed * 7411 + 5, data.anchor_ms)
        self.first_ms = data.anchor_ms - cfg.build_days * DAY_MS
        self._runtimes_and_clusters(g, cfg)
        self._apps(g, cfg)
        self._pipelines(g, cfg)
        for i, app in enumerate(self.apps):  # releases per app, oldest first, then merged by time
            n = cfg.gitops_releases // len(self.apps) + (1 if i < cfg.gitops_releases % len(self.apps) else 0)
            times = sorted(g.randint(self.first_ms, data.anchor_ms - 2 * HOUR_MS) for _ in range(n))
            if times and i % 4 == 1:  # a sync still running at the anchor
                times[-1] = data.anchor_ms - g.randint(5, 50) * MINUTE_MS
            for k, t in enumerate(times):
                self._add_release(g, app, t, running=(k == n - 1 and i % 4 == 1))
        self.releases.sort(key=lambda r: (r["_created_ms"], r["_key"]))
        # Oldest first; the newest few (created in the hours before the anchor) have not finished.
        for newest, t in self._times(g, cfg.gitops_promotions, 5, 300, 12):
            self._add_promotion(g, t, "RUNNING" if newest < 3 else "SUSPENDED" if newest < 5 else None)
        for newest, t in self._times(g, cfg.gitops_workflows, 6, 120, 3):
            self._add_workflow(g, t, "running" if newest < 4 else "suspended" if newest < 6 else None)
        self.production_clusters = sorted(c["metadata"]["name"] for c in self.clusters if c["_production"])
        for c in self.clusters:
            c["info"]["applicationsCount"] = sum(1 for a in self.apps if a["cluster"] == c["metadata"]["name"])
        self.live = Gen(cfg.seed * 7417 + 11, data.anchor_ms)  # draws of advance()

    def _times(self, g: Gen, n: int, recent: int, recent_minutes: int, gap_hours: int) -> List[Tuple[int, int]]:
        """`n` creation times, oldest first, each with its rank from the newest (0): the `recent` newest within
        `recent_minutes` before the anchor, the others spread over the build days up to `gap_hours` before it."""
        anchor = self.data.anchor_ms
        times = sorted(
            anchor - g.randint(1, recent_minutes) * MINUTE_MS
            if k < recent
            else g.randint(self.first_ms, anchor - gap_hours * HOUR_MS)
            for k in range(max(0, n))
        )
        return [(n - 1 - k, t) for k, t in enumerate(times)]

    # -----------------------------------------------------------------------------------------------------------
    # runtimes, clusters, git sources, components, pipelines, applications
    # -----------------------------------------------------------------------------------------------------------
    def _runtimes_and_clusters(self, g: Gen, cfg: Any) -> None:
        n = max(1, cfg.gitops_runtimes)
        names = [RUNTIME_NAMES[i] if i < len(RUNTIME_NAMES) else f"runtime-{i + 1}" for i in range(n)]
        managed = max(0, cfg.gitops_clusters - n)
        for i, name in enumerate(names):
            hosted = name == "codefresh-hosted"
            created = g.past_ms(400, 200)
            healthy = g.chance(0.85)
            own = [j for j in range(managed) if j % n == i]
            runtime = {
                "metadata": meta(name, name, "Runtime", created, g, self.account, namespace=name, group="codefresh.io"),
                "errors": []
                if healthy
                else [
                    {
                        "__typename": "HealthError",
                        "level": "WARNING",
                        "title": "Runtime heartbeat is late",
                        "message": f"The runtime {name} last reported more than 5 minutes ago",
                        "suggestion": "Check the app-proxy pod of the runtime",
                        "code": "INACTIVE_RUNTIME",
                        "lastSeen": iso(g.past_ms(1)),
                    }
                ],
                "self": {
                    "metadata": meta(name, name, "Runtime", created, g, self.account, namespace=name),
                    "syncStatus": "SYNCED",
                    "healthStatus": "HEALTHY" if healthy else "DEGRADED",
                    "healthMessage": None,
                    "version": g.randint(1, 40),
                },
                "syncStatus": "SYNCED" if healthy else "OUT_OF_SYNC",
                "healthStatus": "HEALTHY" if healthy else "DEGRADED",
                "healthMessage": None if healthy else "The runtime's heartbeat is late",
                "projects": ["default"],
                "cluster": "https://kubernetes.default.svc",
                "installationType": "HELM_HOSTED" if hosted else "HELM",
                "installationStatus": "COMPLETED",
                "managed": hosted,
                "isRemoteClusterConnected": bool(own) or not hosted,
                "ingressHost": f"https://{name}.runtimes.acme.example",
                "internalIngressHost": None,
                "ingressClass": None if hosted else "nginx",
                "ingressController": None if hosted else "k8s.io/ingress-nginx",
                "runtimeVersion": f"0.1.{g.randint(40, 70)}",
                "chartVersion": f"0.{g.randint(14, 18)}.{g.randint(0, 9)}",
                "lastUpdated": iso(g.past_ms(3)),
                "repo": f"https://github.com/acme/{name}-isc.git",
                "managedClustersNum": len(own),
                "gitProvider": "GITHUB",
                "accessMode": "TUNNEL" if hosted or g.chance(0.5) else "INGRESS",
                "available": healthy,
                "isExternalArgoCd": False,
                "isNamespacedRuntime": False,
            }
            self.runtimes.append(runtime)
            self.clusters.append(self._cluster(g, "in-cluster", name, "https://kubernetes.default.svc", False))
            for j in own:
                kind = "prod" if j % 2 == 0 else "staging"
                cname = f"{kind}-{j // 2 + 1}"
                self.clusters.append(self._cluster(g, cname, name, f"https://{cname}.k8s.acme.example", kind == "prod"))
            repo = f"https://github.com/acme/{name}-gitops.git"
            for source in ("apps", "platform"):
                app = application(f"{name}-{source}", name, name, repo, source, created, g, self.account)
                self.git_sources.append(
                    {
                        "metadata": meta(
                            f"{name}-{source}", name, "Application", created, g, self.account, namespace=name
                        ),
                        "self": app,
                        "syncStatus": app["syncStatus"],
                        "healthStatus": app["healthStatus"],
                        "healthMessage": app["healthMessage"],
                        "isRestricted": False,
                        "projects": ["default"],
                    }
                )
            for comp, version in COMPONENTS:
                app = application(comp, name, name, runtime["repo"], f"resources/{comp}", created, g, self.account)
                self.components.append(
                    {
                        "metadata": meta(comp, name, "Application", created, g, self.account, namespace=name),
                        "self": app,
                        "syncStatus": app["syncStatus"],
                        "healthStatus": app["healthStatus"],
                        "healthMessage": app["healthMessage"],
                        "projects": ["default"],
                        "version": version,
                    }
                )

    def _cluster(self, g: Gen, name: str, runtime: str, server: str, production: bool) -> Dict:
        connected = g.chance(0.92)
        return {
            "metadata": meta(name, runtime, "Cluster", g.past_ms(300, 100), g, self.account, group="", version="v1"),
            "server": server,
            "namespaces": [],
            "info": {
                "connectionState": {
                    "status": "Successful" if connected else "Failed",
                    "message": None if connected else "dial tcp: i/o timeout",
                    "attemptedAt": iso(g.past_ms(0.01)),
                },
                "serverVersion": f"1.{g.randint(28, 32)}",
                "cacheInfo": {
                    "resourcesCount": g.randint(200, 4000),
                    "apisCount": g.randint(60, 140),
                    "lastCacheSyncTime": iso(g.past_ms(0.2)),
                },
                "applicationsCount": 0,
            },
            "inactive": False,
            "updatedAt": iso(g.past_ms(5)),
            "_production": production,
        }

    def _apps(self, g: Gen, cfg: Any) -> None:
        managed = [c for c in self.clusters if c["metadata"]["name"] != "in-cluster"] or self.clusters
        by_kind = {
            k: [c for c in managed if c["_production"] == (k == "production")] or managed for k, _ in ENVIRONMENTS
        }
        runtimes = {r["metadata"]["name"]: r for r in self.runtimes}
        for i in range(max(0, cfg.gitops_apps)):
            product = PRODUCTS[(i // 2) % len(PRODUCTS)]
            env, kind = ENVIRONMENTS[i % 2]
            cycle = i // (2 * len(PRODUCTS))
            cluster = by_kind[env][(i // 2) % len(by_kind[env])]
            runtime = cluster["metadata"]["runtime"]
            self.apps.append(
                {
                    "index": i,
                    "name": f"{product}-{env}" + (f"-{cycle + 1}" if cycle else ""),
                    "product": product,
                    "environment": env,
                    "kind": kind,
                    "runtime": runtime,
                    "namespace": runtimes[runtime]["metadata"]["namespace"],
                    "cluster": cluster["metadata"]["name"],
                    "server": cluster["server"],
                    "uid": uid(g),
                    "created_ms": self.first_ms - g.randint(1, 200) * DAY_MS,
                    "rollout": (i // 2) % 2 == 0,
                    "repo": f"https://github.com/acme/{product}",
                    "history": 0,
                    "deployed": {},  # revision -> commit of every revision this app deployed
                    "last": None,
                    "last_healthy": None,
                }
            )

    def _pipelines(self, g: Gen, cfg: Any) -> None:
        runtime = self.runtimes[min(1, len(self.runtimes) - 1)]["metadata"]["name"]
        for k in range(max(0, cfg.gitops_pipelines)):
            product = PRODUCTS[k % len(PRODUCTS)]
            name = f"ci-{product}" + (f"-{k // len(PRODUCTS) + 1}" if k >= len(PRODUCTS) else "")
            created = g.past_ms(300, 100)
            healthy = g.chance(0.9)
            health = "HEALTHY" if healthy else "DEGRADED"
            message = None if healthy else "Sensor has no event dependencies ready"
            sensor = {
                "metadata": meta(name, runtime, "Sensor", created, g, self.account, namespace=runtime),
                "version": g.randint(1, 9),
                "syncStatus": "SYNCED",
                "healthStatus": health,
                "healthMessage": message,
                "projects": [product],
            }
            self.pipelines.append(
                {
                    "metadata": meta(name, runtime, "Sensor", created, g, self.account, namespace=runtime),
                    "self": sensor,
                    "syncStatus": "SYNCED",
                    "healthStatus": health,
                    "healthMessage": message,
                    "projects": [product],
                    "spec": {"trigger": "github-push"},
                }
            )

    # -----------------------------------------------------------------------------------------------------------
    # releases (Argo CD deployment history)
    # -----------------------------------------------------------------------------------------------------------
    def _ci_build(self, before_ms: int, deployed: Dict[str, Any]) -> Any:
        """The newest successful classic build created before `before_ms` whose commit the app did not deploy yet."""
        builds = self.data.builds
        i = bisect.bisect_left(self.data.created_ms, before_ms) - 1
        for st in (builds[j] for j in range(i, max(-1, i - 40), -1)):
            if st.doc["status"] == "success" and not st.is_run and st.doc["revision"] not in deployed:
                return st
        return None

    def _commit(self, g: Gen, app: Dict, start_ms: int) -> Tuple[Dict, Any]:
        """The commit a new deployment brings, and the classic build that built it (None: no CI build linked)."""
        st = self._ci_build(start_ms - 2 * MINUTE_MS, app["deployed"]) if g.chance(0.8) else None
        if st is not None:
            d = st.doc
            return {
                "sha": d["revision"],
                "message": d["commitMessage"],
                "author": d["committer"],
                "avatar": d["committerAvatar"],
                "url": d["commitURL"],
                "repo": d["repoURL"],
                "date_ms": st.created_ms - g.randint(2, 90) * MINUTE_MS,
            }, st
        person = g.pick(self.data.people)
        sha = g.hex(40)
        return {
            "sha": sha,
            "message": g.commit_message(),
            "author": person["userName"],
            "avatar": person["avatar"],
            "url": f"{app['repo']}/commit/{sha}",
            "repo": app["repo"],
            "date_ms": start_ms - g.randint(30, 36 * 60) * MINUTE_MS,
        }, None

    def _add_release(self, g: Gen, app: Dict, start_ms: int, running: bool) -> Dict:
        prev = app["last"]
        prev_health = prev["_health"] if prev else None
        if prev is not None and prev_health == "DEGRADED" and app["last_healthy"] and g.chance(0.5):
            kind = "rollback"
        elif prev is not None and g.chance(0.05):
            kind = "resync"
        else:
            kind = "deploy"
        build = None
        if kind == "deploy":
            commit, build = self._commit(g, app, start_ms)
            health = "DEGRADED" if g.chance(DEGRADED_SHARE) else "HEALTHY"
        elif kind == "rollback":
            commit, health = app["deployed"][app["last_healthy"]], "HEALTHY"
        else:
            commit, health = app["deployed"][prev["_revision"]], prev_health
        app["deployed"][commit["sha"]] = commit
        app["history"] += 1
        h = app["history"]
        duration = g.randint(30, 600) * 1000
        person = g.pick(self.data.people)
        pr = g.randint(10, 999) if kind == "deploy" and g.chance(0.7) else None
        issue = g.randint(100, 9999) if pr and g.chance(0.6) else None

        def annotation(kind_: str, key: str, value: str) -> Dict:
            return {
                "id": g.oid(start_ms),
                "type": kind_,
                "value": value,
                "accountId": self.data.account_id,
                "entityId": app["uid"],
                "entityType": "application",
                "key": key,
            }

        image = {
            "name": app["product"],
            "image": f"ghcr.io/acme/{app['product']}:{commit['sha'][:7]}",
            "repositoryName": f"acme/{app['product']}",
            "binaryId": None,
            "tag": commit["sha"][:7],
            "workflowName": None,
            "workflowUrl": None,
            "ciProvider": "codefresh" if build is not None else None,
        }
        release = {
            "applicationMetadata": meta(
                app["name"],
                app["runtime"],
                "Application",
                app["created_ms"],
                g,
                self.account,
                namespace=app["namespace"],
                cluster=app["server"],
                uid=app["uid"],
                lastUpdated=iso(start_ms),
            ),
            "historyId": h,
            "syncOperationRevision": commit["sha"],
            "argoHistoryId": h,
            "application": {
                "destination": {"name": app["cluster"], "namespace": app["product"], "server": app["server"]},
                "status": {
                    "syncStatus": "SYNCING",
                    "syncStartedAt": iso(start_ms),
                    "syncFinishedAt": None,
                    "healthStatus": "PROGRESSING",
                    "healthMessage": None,
                    "revision": commit["sha"],
                    "version": f"1.{h}.0",
                    "commitAuthor": commit["author"],
                    "commitAvatar": commit["avatar"],
                    "commitUrl": commit["url"],
                    "commitMessage": commit["message"],
                    "commitDate": iso(commit["date_ms"]),
                    "syncRevisions": [
                        {
                            "author": commit["author"],
                            "message": commit["message"],
                            "date": iso(commit["date_ms"]),
                            "avatar": commit["avatar"],
                            "url": commit["url"],
                            "revision": commit["sha"],
                        }
                    ],
                    "changeRevisions": [],
                    "historyId": h,
                },
                "issues": [annotation("issue", f"ACME-{issue}", f"https://acme.atlassian.net/browse/ACME-{issue}")]
                if issue
                else [],
                "prs": [annotation("pr", f"#{pr}", f"{commit['repo']}/pull/{pr}")] if pr else [],
                "committers": [
                    {
                        "userName": commit["author"],
                        "avatar": commit["avatar"],
                        "commits": [
                            {
                                "url": commit["url"],
                                "userName": commit["author"],
                                "sha": commit["sha"],
                                "message": commit["message"],
                            }
                        ],
                    }
                ]
                if kind == "deploy"
                else [],
                "revision": "main",
                "builds": []
                if build is None
                else [
                    {
                        "id": build.doc["id"],
                        "pipeline": {
                            "id": build.doc["serviceId"],
                            "name": build.doc["serviceName"],
                            "project": build.doc["project"],
                            "projectId": build.doc["projectId"],
                        },
                    }
                ],
            },
            "operationState": {
                "finishedAt": None,
                "startedAt": iso(start_ms),
                "message": "waiting for healthy state of apps/Deployment",
                "phase": "Running",
                "type": "Sync",
                "retryCount": 0,
                "syncResult": None,
            },
            "childApps": [],
            "fromState": None,
            "toState": {"services": [], "rollouts": []},
            "transition": {"services": [], "rollouts": []},
            "current": True,
            "_key": f"{app['uid']}:{h}",
            "_app": app["index"],
            "_created_ms": start_ms,
            "_revision": commit["sha"],
            "_kind": kind,
            "_image": image,
            "_initiator": person["userName"],
            "_health": health,  # after the sync: the planned one while it runs
            "_duration_ms": duration,
            "_finished": False,
        }
        if prev is not None:
            prev["current"] = False
        app["last"] = release
        self.releases.append(release)
        self._transition(release, prev)
        if not running:
            self._finish_release(release, start_ms + duration)
        return release

    def _rollout_state(self, app: Dict, release: Dict, phase: str) -> Dict:
        complete = phase == "Healthy"
        analysis = {"Healthy": "Successful", "Degraded": "Failed"}.get(phase, "Running")
        return {
            "name": app["product"],
            "uid": app["uid"][:24] + f"{release['historyId']:012d}",
            "currentRevision": release["historyId"],
            "phase": phase,
            "message": {"Degraded": "RolloutAborted: metric error-rate assessed Failed"}.get(phase),
            "currentStrategyName": "canary",
            "disabled": None,
            "steps": 4,
            "currentStepIndex": 4 if complete else 1,
            "currentStepSpec": None if complete else '{"setWeight": 20}',
            "services": [app["product"], f"{app['product']}-canary"],
            "prePromotionAnalysisRunStatus": None,
            "postPromotionAnalysisRunStatus": None,
            "stepsAnalysisRunStatuses": [],
            "backgroundAnalysisRunStatus": {
                "name": f"{app['product']}-{release['historyId']}-error-rate",
                "phase": analysis,
                "successful": 5 if complete else 1,
                "failed": 2 if phase == "Degraded" else 0,
                "inconclusive": 0,
                "error": 0,
            },
            "revisionInfo": {
                "image": release["_image"]["image"],
                "imageDetails": None,
                "weight": 100 if complete else 20,
                "replicas": 3,
                "availableReplicas": 3 if complete else 1,
                "unavailableReplicas": 0 if complete else 2,
                "updatedReplicas": 3 if complete else 1,
            },
            "isComplete": complete,
            "paused": False,
            "pausedInconclusive": False,
        }

    def _transition(self, release: Dict, prev: Optional[Dict]) -> None:
        """fromState, toState and transition of a release, from its current health (PROGRESSING while it runs)."""
        app = self.apps[release["_app"]]
        health = release["application"]["status"]["healthStatus"]
        product = app["product"]
        if app["rollout"]:
            phase = {"HEALTHY": "Healthy", "DEGRADED": "Degraded"}.get(health, "Progressing")
            to = self._rollout_state(app, release, phase)
            before = prev["toState"]["rollouts"][0] if prev is not None else None
            rollbacks = [{"name": product, "from": to, "to": before, "rollbacks": []}] if phase == "Degraded" else []
            release["toState"] = {"services": [{"name": product}], "rollouts": [to]}
            release["fromState"] = None if before is None else {"services": [{"name": product}], "rollouts": [before]}
            release["transition"] = {
                "services": [],
                "rollouts": [{"name": product, "from": before, "to": to, "rollbacks": rollbacks}],
            }
            return
        available = {"HEALTHY": 3, "DEGRADED": 1}.get(health, 2)
        to_state = {
            "images": [release["_image"]],
            "syncStatus": release["application"]["status"]["syncStatus"],
            "replicas": 3,
            "availableReplicas": available,
        }
        from_state = (
            None
            if prev is None
            else {"images": [prev["_image"]], "syncStatus": "SYNCED", "replicas": 3, "availableReplicas": 3}
        )
        release["toState"] = {"services": [{"name": product}], "rollouts": []}
        release["fromState"] = None if prev is None else {"services": [{"name": product}], "rollouts": []}
        release["transition"] = {"services": [{"name": product, "from": from_state, "to": to_state}], "rollouts": []}

    def _finish_release(self, release: Dict, finish_ms: int) -> None:
        app = self.apps[release["_app"]]
        health = release["_health"]
        status = release["application"]["status"]
        status["syncStatus"] = "SYNCED"
        status["syncFinishedAt"] = iso(finish_ms)
        status["healthStatus"] = health
        status["healthMessage"] = (
            f'Deployment "{app["product"]}" exceeded its progress deadline' if health == "DEGRADED" else None
        )
        kind = "Rollout" if app["rollout"] else "Deployment"
        group = "argoproj.io" if app["rollout"] else "apps"
        release["operationState"].update(
            finishedAt=iso(finish_ms),
            phase="Succeeded",
            message="successfully synced (all tasks run)",
            syncResult={
                "revision": release["_revision"],
                "revisions": None,
                "resources": [
                    {
                        "group": group,
                        "version": "v1alpha1" if app["rollout"] else "v1",
                        "kind": kind,
                        "name": app["product"],
                        "namespace": app["product"],
                        "message": f"{kind.lower()}.{group}/{app['product']} configured",
                        "syncActionOnResource": "Configured",
                        "status": "Synced",
                        "syncPhase": "Sync",
                        "hookPhase": None,
                        "hookType": None,
                    },
                    {
                        "group": "",
                        "version": "v1",
                        "kind": "Service",
                        "name": app["product"],
                        "namespace": app["product"],
                        "message": f"service/{app['product']} unchanged",
                        "syncActionOnResource": "Unchanged",
                        "status": "Synced",
                        "syncPhase": "Sync",
                        "hookPhase": None,
                        "hookType": None,
                    },
                ],
            },
        )
        release["applicationMetadata"]["lastUpdated"] = iso(finish_ms)
        release["_finished"] = True
        if health == "HEALTHY":
            app["last_healthy"] = release["_revision"]
        prev = next(
            (
                r
                for r in reversed(self.releases)
                if r["_app"] == app["index"] and r is not release and r["historyId"] == release["historyId"] - 1
            ),
            None,
        )
        self._transition(release, prev)

    # -----------------------------------------------------------------------------------------------------------
    # promotions
    # -----------------------------------------------------------------------------------------------------------
    def _add_promotion(self, g: Gen, created: int, unfinished: Optional[str]) -> Dict:
        products = sorted({a["product"] for a in self.apps}) or [PRODUCTS[0]]
        product = g.pick(products)
        person = g.pick(self.data.people)
        sha = g.hex(40)
        final = g.rng.random()
        outcome = "SUCCEEDED" if final < 0.8 else "FAILED" if final < 0.92 else "TERMINATED"
        seq = sum(1 for p in self.promotions if p["productName"] == product) + 1
        promotion = {
            "id": g.oid(created),
            "productName": product,
            "promotionFlowName": f"{product}-flow",
            "triggerEnvironment": ENVIRONMENTS[0][0],
            "status": "RUNNING",
            "version": f"1.{seq}.0",
            "commit": {
                "sha": sha,
                "message": g.commit_message(),
                "author": person["userName"],
                "avatar": person["avatar"],
                "date_ms": created - g.randint(5, 240) * MINUTE_MS,
                "repo": f"https://github.com/acme/{product}",
                "revision": "main",
            },
            "initiator": person,
            "environments": [
                {"name": env, "kind": kind, "status": "PENDING", "started_ms": None, "updated_ms": None}
                for env, kind in ENVIRONMENTS
            ],
            "failure": None,
            "_created_ms": created,
            "_outcome": outcome,
            "_fails_at": g.randint(0, len(ENVIRONMENTS) - 1),
            "_legacy": created < self.data.anchor_ms - LEGACY_DAYS * DAY_MS,
            "_step_ms": [g.randint(2, 15) * MINUTE_MS for _ in ENVIRONMENTS],
        }
        self.promotions.append(promotion)
        # Each environment runs after the one before it; a running promotion has reached its last environment.
        t = created + 10_000
        last = len(ENVIRONMENTS) - 1
        for k, env in enumerate(promotion["environments"]):
            env["started_ms"] = t
            if unfinished and k == last:
                env["status"] = unfinished  # RUNNING, or SUSPENDED: waiting on an approval
                env["updated_ms"] = t
                promotion["status"] = unfinished
                break
            t += promotion["_step_ms"][k]
            env["updated_ms"] = t
            if outcome != "SUCCEEDED" and k == promotion["_fails_at"] and not unfinished:
                env["status"] = "FAILED" if outcome == "FAILED" else "TERMINATED"
                break
            env["status"] = "SUCCEEDED"
        if not unfinished:
            self._settle_promotion(promotion)
        return promotion

    def _settle_promotion(self, promotion: Dict) -> None:
        """The promotion's final status and failure from its environments (after the last one ran or one failed)."""
        outcome = promotion["_outcome"]
        promotion["status"] = outcome
        ended = [e for e in promotion["environments"] if e["updated_ms"] is not None]
        when = max(e["updated_ms"] for e in ended)
        for env in promotion["environments"]:
            if env["started_ms"] is None:
                env["status"] = "SKIPPED"
        if outcome != "SUCCEEDED":
            where = next(e["name"] for e in ended if e["status"] in ("FAILED", "TERMINATED"))
            promotion["failure"] = {
                "message": f"Promotion to {where} failed: the promotion workflow ended with exit code 1"
                if outcome == "FAILED"
                else f"Promotion to {where} was terminated by a user",
                "code": "UNKNOWN" if outcome == "FAILED" else "PROMOTION_TERMINATION",
                "timestamp": iso(when),
            }

    def finish_promotion(self, promotion: Dict, now_ms: int) -> None:
        """An unfinished promotion's last environment ends (as planned) by `now_ms`."""
        env = next(e for e in promotion["environments"] if e["status"] in ("RUNNING", "SUSPENDED"))
        k = promotion["environments"].index(env)
        env["updated_ms"] = max(env["started_ms"] + 1_000, min(env["started_ms"] + promotion["_step_ms"][k], now_ms))
        failed = promotion["_outcome"] != "SUCCEEDED"
        env["status"] = ("FAILED" if promotion["_outcome"] == "FAILED" else "TERMINATED") if failed else "SUCCEEDED"
        self._settle_promotion(promotion)

    def updated_ms(self, promotion: Dict) -> int:
        return max([promotion["_created_ms"]] + [e["updated_ms"] or 0 for e in promotion["environments"]])

    def promotion_view(self, p: Dict) -> Dict:
        """A promotion as a `Promotion` node [GO-PO Promotion]."""
        c = p["commit"]
        return {
            "__typename": "Promotion",
            "id": p["id"],
            "accountId": self.data.account_id,
            "productName": p["productName"],
            "promotionFlowName": p["promotionFlowName"],
            "triggerEnvironment": p["triggerEnvironment"],
            "environments": [
                {
                    "name": e["name"],
                    "dependsOn": [d["name"] for d in p["environments"][:k]][-1:],
                    "status": e["status"],
                    "startedAt": iso(e["started_ms"]),
                    "updatedAt": iso(e["updated_ms"]),
                }
                for k, e in enumerate(p["environments"])
            ],
            "triggerCommitInfo": {
                "commitSha": c["sha"],
                "commitMessage": c["message"],
                "commitAuthor": c["author"],
                "commitDate": iso(c["date_ms"]),
                "repoURL": c["repo"],
                "revision": c["revision"],
                "avatarURL": c["avatar"],
            },
            "status": p["status"],
            "createdAt": iso(p["_created_ms"]),
            "updatedAt": iso(self.updated_ms(p)),
            "promotionAppVersion": p["version"],
            "failure": p["failure"],
        }

    def product_release_view(self, p: Dict) -> Dict:
        """The same promotion as a `ProductRelease` node (the older shape) [GO-PO ProductRelease, CLI2]."""
        c = p["commit"]
        failure = p["failure"]
        steps = []
        for k, e in enumerate(p["environments"]):
            started = e["started_ms"] is not None
            steps.append(
                {
                    "environmentName": e["name"],
                    "environmentKind": e["kind"],
                    "dependsOn": [d["name"] for d in p["environments"][:k]][-1:],
                    "applications": [
                        {
                            "applicationId": {"runtime": a["runtime"], "namespace": a["namespace"], "name": a["name"]},
                            "commitSha": c["sha"] if started else None,
                            "status": e["status"],
                        }
                        for a in self.apps_of(p["productName"], e["name"])
                    ],
                    "status": e["status"],
                    "updatedAt": iso(e["updated_ms"]),
                    "startedAt": iso(e["started_ms"]),
                }
            )
        return {
            "__typename": "ProductRelease",
            "releaseId": p["id"],
            "releaseName": p["promotionFlowName"],
            "promotionFlowName": p["promotionFlowName"],
            "triggerEnvironment": p["triggerEnvironment"],
            "steps": steps,
            "environmentsStatuses": [{"environmentName": s["environmentName"], "status": s["status"]} for s in steps],
            "triggerCommit": {
                "sha": c["sha"],
                "committer": c["author"],
                "date": iso(c["date_ms"]),
                "message": c["message"],
                "repoURL": c["repo"],
                "revision": c["revision"],
            },
            "status": p["status"],
            "updatedAt": iso(self.updated_ms(p)),
            "createdAt": iso(p["_created_ms"]),
            "error": None
            if failure is None
            else {
                "code": "STEP_FAILED" if p["status"] == "FAILED" else "RELEASE_TERMINATED",
                "message": failure["message"],
            },
            "productName": p["productName"],
            "initiator": {"name": p["initiator"]["userName"], "avatarUrl": p["initiator"]["avatar"]},
            "version": p["version"],
        }

    def apps_of(self, product: str, environment: str) -> List[Dict]:
        return [a for a in self.apps if a["product"] == product and a["environment"] == environment]

    def application_view(self, runtime: str, name: str, namespace: Optional[str]) -> Optional[Dict]:
        """An Argo CD application (`application(runtime, name, namespace)`): its state is its newest release's."""
        app = next(
            (
                a
                for a in self.apps
                if (a["runtime"], a["name"]) == (runtime, name) and namespace in (None, a["namespace"])
            ),
            None,
        )
        if app is None or app["last"] is None:
            return None
        last = app["last"]
        status = last["application"]["status"]
        return {
            "metadata": last["applicationMetadata"],
            "errors": [],
            "syncStatus": status["syncStatus"],
            "healthStatus": status["healthStatus"],
            "healthMessage": status["healthMessage"],
            "projects": [app["product"]],
            "updatedAt": last["applicationMetadata"]["lastUpdated"],
            "path": f"apps/{app['product']}/{app['environment']}",
            "repoURL": f"https://github.com/acme/{app['product']}-deploy.git",
            "revision": "main",
            "status": status,
            "destination": last["application"]["destination"],
            "syncPolicy": "Automated",
        }

    # -----------------------------------------------------------------------------------------------------------
    # workflows
    # -----------------------------------------------------------------------------------------------------------
    def _add_workflow(self, g: Gen, start: int, unfinished: Optional[str]) -> Dict:
        promotion = unfinished == "suspended" or (unfinished is None and g.chance(0.3)) or not self.pipelines
        if promotion:
            product = g.pick(sorted({a["product"] for a in self.apps}) or list(PRODUCTS[:1]))
            template, steps, pipeline = f"promote-{product}", PROMOTION_STEPS, None
            runtime = self.runtimes[0]["metadata"]["name"]
        else:
            pipeline = g.pick(self.pipelines)
            product = pipeline["projects"][0]
            template, steps = pipeline["metadata"]["name"], CI_STEPS
            runtime = pipeline["metadata"]["runtime"]
        person = g.pick(self.data.people)
        name = f"{template}-{g.hex(5)}"
        roll = g.rng.random()
        outcome = "Succeeded" if roll < 0.82 else "Failed" if roll < 0.95 else "Error"
        fails_at = g.randint(1 if promotion else 0, len(steps) - 1)
        durations = [g.randint(10, 180) * 1000 for _ in steps]
        if promotion:
            durations[0] = g.randint(5, 600) * MINUTE_MS  # the approval wait
        # How far a running workflow has got: the index of its running step (the approval for a suspended one).
        reached = 0 if unfinished == "suspended" else g.randint(1, len(steps) - 1) if unfinished else None
        ns = runtime
        workflow = {
            "metadata": meta(
                name,
                runtime,
                "Workflow",
                start,
                g,
                self.account,
                namespace=ns,
                cluster="https://kubernetes.default.svc",
            ),
            "projects": [product],
            "spec": {
                "entrypoint": "main",
                "templates": [{"__typename": "WorkflowStepsTemplate", "name": "main"}]
                + [
                    {"__typename": "WorkflowSuspendedTemplate", "name": s}
                    if s == "approve"
                    else {"__typename": "WorkflowContainerTemplate", "name": s, "daemon": False}
                    for s in steps
                ],
                "workflowTemplateRef": {
                    "name": template,
                    "group": "argoproj.io",
                    "version": "v1alpha1",
                    "kind": "WorkflowTemplate",
                    "namespace": ns,
                },
            },
            "status": {},
            "initiator": {"name": person["userName"], "avatarURL": person["avatar"]},
            "pipeline": pipeline,
            "url": None,
            "runtimeVersion": next(r["runtimeVersion"] for r in self.runtimes if r["metadata"]["name"] == runtime),
            "originatedFrom": None,
            "_created_ms": start,
            "_steps": steps,
            "_durations": durations,
            "_outcome": outcome,
            "_fails_at": fails_at,
            "_node_ids": [f"{name}-{g.randint(10**9, 10**10 - 1)}" for _ in steps],
            "_finished": False,
        }
        workflow["metadata"]["labels"] = [{"key": "workflows.argoproj.io/workflow-template", "value": template}]
        workflow["url"] = f"https://g.codefresh.io/2.0/workflows/{workflow['metadata']['uid']}"
        self.workflows.append(workflow)
        self._workflow_status(workflow, reached=reached)
        return workflow

    def _workflow_status(self, wf: Dict, reached: Optional[int], now_ms: Optional[int] = None) -> None:
        """status and nodes: every step ran (reached None) or steps up to `reached` (that one still running)."""
        name, steps = wf["metadata"]["name"], wf["_steps"]
        start = wf["_created_ms"] + 3_000
        outcome = wf["_outcome"]
        nodes: List[Dict] = []
        t = start
        last = len(steps) - 1 if reached is None else reached
        if reached is None and outcome != "Succeeded":
            last = wf["_fails_at"]
        for k in range(last + 1):
            step = steps[k]
            running = reached is not None and k == reached
            end = None if running else t + wf["_durations"][k]
            if end is not None and now_ms is not None:
                end = max(t + 1_000, min(end, now_ms - 1_000))
            phase = "Running" if running else "Succeeded"
            message = None
            if reached is None and outcome != "Succeeded" and k == last:
                phase = outcome
                message = "Error (exit code 1)" if outcome == "Failed" else "pod deleted"
            nodes.append(
                {
                    "id": wf["_node_ids"][k],
                    "type": "Suspend" if step == "approve" else "Pod",
                    "name": f"{name}[{k}].{step}",
                    "displayName": step,
                    "templateName": step,
                    "children": [],
                    "phase": phase,
                    "progress": "0/1" if phase == "Running" else "1/1",
                    "message": message,
                    "startedAt": iso(t),
                    "finishedAt": iso(end),
                    "statuses": [{"since": iso(t), "phase": "Running", "message": None}]
                    + ([] if end is None else [{"since": iso(end), "phase": phase, "message": message}]),
                    "resourcesDuration": None if step == "approve" or end is None else f"{(end - t) // 1000}s*cpu",
                }
            )
            if end is not None:
                t = end + 2_000
        finished = reached is None
        end_ms = t - 2_000 if finished else None
        phase = outcome if finished else "Running"
        root = {
            "id": name,
            "type": "Steps",
            "name": name,
            "displayName": name,
            "templateName": "main",
            "children": [n["id"] for n in nodes],
            "phase": phase,
            "progress": f"{sum(1 for n in nodes if n['phase'] == 'Succeeded')}/{len(steps)}",
            "message": nodes[-1]["message"] if finished and outcome != "Succeeded" else None,
            "startedAt": iso(start),
            "finishedAt": iso(end_ms),
            "statuses": [{"since": iso(start), "phase": "Running", "message": None}]
            + ([{"since": iso(end_ms), "phase": phase, "message": None}] if finished else []),
            "resourcesDuration": None,
        }
        pods = [n for n in nodes if n["type"] == "Pod" and n["finishedAt"]]
        wf["status"] = {
            "startedAt": iso(start),
            "finishedAt": iso(end_ms),
            "phase": phase,
            "progress": root["progress"],
            "nodes": [root] + nodes,
            "message": root["message"],
            "statuses": [{"since": s["since"], "phase": s["phase"], "message": s["message"]} for s in root["statuses"]],
            "resourcesDuration": {"cpu": 7 * len(pods), "memory": 31 * len(pods)},
            "runningPodsCount": sum(1 for n in nodes if n["phase"] == "Running" and n["type"] == "Pod"),
            "failedNodes": [n for n in nodes if n["phase"] in ("Failed", "Error")],
        }
        wf["metadata"]["lastUpdated"] = iso(end_ms or start)
        wf["_finished"] = finished

    # -----------------------------------------------------------------------------------------------------------
    # the clock moves on
    # -----------------------------------------------------------------------------------------------------------
    def unfinished(self) -> Dict[str, List[str]]:
        """The ids of the records still changing: releases by `<app uid>:<historyId>`, promotions, workflow uids."""
        return {
            "releases": [r["_key"] for r in self.releases if not r["_finished"]],
            "promotions": [p["id"] for p in self.promotions if p["status"] not in FINISHED],
            "workflows": [w["metadata"]["uid"] for w in self.workflows if not w["_finished"]],
        }

    def advance(self, old_ms: int, new_ms: int, finish: bool, new: int, new_unfinished: int, keep: Any) -> Dict:
        """Finish the unfinished records (if `finish`) but those whose id is in `keep`, then add `new` releases,
        promotions and workflows each, created in (old_ms, new_ms], the newest `new_unfinished` of each unfinished."""
        finished: List[str] = []
        if not self.runtimes:
            return {"finished": finished, "added": []}
        end = new_ms - 1_000
        if finish:
            for r in self.releases:
                if not r["_finished"] and r["_key"] not in keep:
                    self._finish_release(
                        r, max(r["_created_ms"] + 1_000, min(r["_created_ms"] + r["_duration_ms"], end))
                    )
                    finished.append(r["_key"])
            for p in self.promotions:
                if p["status"] not in FINISHED and p["id"] not in keep:
                    self.finish_promotion(p, end)
                    finished.append(p["id"])
            for w in self.workflows:
                if not w["_finished"] and w["metadata"]["uid"] not in keep:
                    self._workflow_status(w, reached=None, now_ms=new_ms)
                    finished.append(w["metadata"]["uid"])
        g = self.live
        added: List[str] = []
        n = max(0, new)
        for j in range(n):
            t = old_ms + (j + 1) * (new_ms - old_ms) // (n + 2)
            running = j >= n - max(0, new_unfinished)
            if self.apps:
                added.append(self._add_release(g, g.pick(self.apps), t, running)["_key"])
            added.append(self._add_promotion(g, t, "RUNNING" if running else None)["id"])
            added.append(self._add_workflow(g, t, "running" if running else None)["metadata"]["uid"])
        return {"finished": finished, "added": added}

    def dora(self) -> List[Dict[str, Any]]:
        """The four DORA metrics of this account per week, from its releases (the truth; definitions in dora.py)."""
        return dora.weekly(self.releases, self.production_clusters)

    def counts(self) -> Dict[str, int]:
        """How many records a full listing of each GitOps query returns now (the `gitops_*` expected counts)."""
        open_ = self.unfinished()
        return {
            "gitops_runtimes": len(self.runtimes),
            "gitops_clusters": len(self.clusters),
            "gitops_git_sources": len(self.git_sources),
            "gitops_components": len(self.components),
            "gitops_pipelines": len(self.pipelines),
            "gitops_workflows": len(self.workflows),
            "gitops_workflow_nodes": sum(len(w["status"]["nodes"]) for w in self.workflows),
            "gitops_workflows_unfinished": len(open_["workflows"]),
            "gitops_releases": len(self.releases),
            "gitops_releases_unfinished": len(open_["releases"]),
            "gitops_promotions": len(self.promotions),
            "gitops_promotions_unfinished": len(open_["promotions"]),
        }
