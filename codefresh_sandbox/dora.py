"""The four DORA metrics per week, computed from Argo CD deployment history (the nodes `gitopsReleases` answers): the
sandbox's ground truth, against which figures computed from a sync's records (scripts/dora.py) are checked.

Definitions (Codefresh's own, from its DORA dashboard docs, and Google's Four Keys, as quoted in
shared/codefresh-api/GITOPS.md B.2; which API fields feed each, B.3):

- **Production**: a release whose application's destination cluster (`application.destination.name`) is one of
  `production_clusters` (Codefresh counts "a new deployment of the application to production"; the sandbox's
  production clusters are its `prod-*` clusters). An application is (`applicationMetadata.runtime`, `.namespace`,
  `.name`); its releases are taken in `historyId` order.
- A release counts once its sync has finished (`application.status.syncFinishedAt` set); a running sync counts
  nowhere yet.
- **Deployment**: a finished release whose revision (`application.status.revision`) the application had not deployed
  before (Codefresh: "an Argo CD sync where there was a change in the application source code that resulted in a new
  deployment"). A sync back to an earlier revision is a rollback and a sync of the same revision again a re-sync:
  neither is a deployment. Its time is `syncFinishedAt`, its week the ISO week (from Monday 00:00 UTC) of that time.
- **Deployment frequency**: the number of deployments of the week.
- **Lead time for changes**: per deployment, `syncFinishedAt` minus `application.status.commitDate`, the time of the
  deployed commit (Codefresh measures from a PR's first commit, but the API gives its commits no date:
  `CommitsOutput` has none); the median over the week's deployments, in hours (Four Keys: "the median amount of time
  for a commit to be deployed into production").
- **Change failure rate**: the week's deployments whose health after the sync (`application.status.healthStatus`) is
  DEGRADED (Codefresh: "applications whose health status changed to Degraded on deployment"), divided by the week's
  deployments.
- **Time to restore service**: per failed deployment, from its `syncFinishedAt` to the `syncFinishedAt` of the
  application's next finished release that is HEALTHY, whatever restored it (a fix, a rollback, a re-sync) (Codefresh:
  "the time taken for the status of Degraded deployments to return to Healthy"); the median over the week's failed
  deployments, in hours (Four Keys' median; Codefresh's dashboard shows the average). A failure not restored yet has
  no time; it is counted in `unrestored`.
- **Weeks**: every week from the first to the last with a deployment, empty weeks included (0 deployments, the
  metrics None).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from statistics import median
from typing import Any, Collection, Dict, Iterable, List, Mapping, Optional, Tuple

from .common import HOUR_MS, parse_iso_ms


def week_of(ms: int) -> str:
    """The Monday (UTC) of the ISO week holding `ms`, as YYYY-MM-DD."""
    day = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).date()
    return (day - timedelta(days=day.weekday())).isoformat()


def weekly(releases: Iterable[Mapping[str, Any]], production_clusters: Collection[str]) -> List[Dict[str, Any]]:
    """One row per week: {week, deployments, failed_deployments, change_failure_rate, lead_time_hours,
    time_to_restore_hours, restored, unrestored} (the definitions are the module's)."""
    by_app: Dict[Tuple[str, str, str], List[Mapping[str, Any]]] = defaultdict(list)
    for r in releases:
        if (r["application"].get("destination") or {}).get("name") in production_clusters:
            m = r["applicationMetadata"]
            by_app[(m["runtime"], m.get("namespace") or "", m["name"])].append(r)
    weeks: Dict[str, Dict[str, List[float]]] = defaultdict(lambda: {"lead": [], "restore": [], "n": [], "failed": []})
    unrestored: Dict[str, int] = defaultdict(int)
    for history in by_app.values():
        done = [
            r for r in sorted(history, key=lambda r: r["historyId"]) if r["application"]["status"]["syncFinishedAt"]
        ]
        seen: set = set()
        for i, r in enumerate(done):
            status = r["application"]["status"]
            revision = status["revision"]
            if revision in seen:
                continue
            seen.add(revision)
            finished = parse_iso_ms(status["syncFinishedAt"])
            week = weeks[week_of(finished)]
            week["n"].append(1)
            week["lead"].append((finished - parse_iso_ms(status["commitDate"])) / HOUR_MS)
            if status["healthStatus"] != "DEGRADED":
                continue
            week["failed"].append(1)
            healthy = next((n for n in done[i + 1 :] if n["application"]["status"]["healthStatus"] == "HEALTHY"), None)
            if healthy is None:
                unrestored[week_of(finished)] += 1
            else:
                restored_at = parse_iso_ms(healthy["application"]["status"]["syncFinishedAt"])
                week["restore"].append((restored_at - finished) / HOUR_MS)
    if not weeks:
        return []
    first, last = min(weeks), max(weeks)
    rows: List[Dict[str, Any]] = []
    day = datetime.fromisoformat(first).date()
    while day.isoformat() <= last:
        key = day.isoformat()
        w = weeks.get(key, {"lead": [], "restore": [], "n": [], "failed": []})
        n, failed = len(w["n"]), len(w["failed"])
        rows.append(
            {
                "week": key,
                "deployments": n,
                "failed_deployments": failed,
                "change_failure_rate": failed / n if n else None,
                "lead_time_hours": _median(w["lead"]),
                "time_to_restore_hours": _median(w["restore"]),
                "restored": len(w["restore"]),
                "unrestored": unrestored.get(key, 0),
            }
        )
        day += timedelta(days=7)
    return rows


def _median(values: List[float]) -> Optional[float]:
    return median(values) if values else None
