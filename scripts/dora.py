"""The four DORA metrics per week, computed from what the connector syncs (the gitops_releases stream), and one chart.

    .venv/bin/python scripts/dora.py                                   # start a sandbox, sync it, print, draw
    .venv/bin/python scripts/dora.py --base-url http://127.0.0.1:8765/api   # a sandbox (or Codefresh) already running
    .venv/bin/python scripts/dora.py --messages .tmp/cf/read.jsonl     # the output of a sync (sandbox_sync.py --out)
    .venv/bin/python scripts/dora.py --production-clusters 'prod-*,eu-prod' --chart .tmp/dora.png

It runs the installed `source-codefresh` (discover, then a full-refresh read of gitops_releases) as Airbyte would,
or reads the messages of a sync, then computes, per ISO week (from Monday 00:00 UTC), from the records alone:

- production: releases whose `application.destination.name` (the cluster) matches --production-clusters;
- a deployment: a finished sync (`application.status.syncFinishedAt`) of a revision its application (runtime,
  namespace, name) had not deployed before, in `historyId` order (a rollback or a re-sync is no deployment);
- deployment frequency: deployments per week (by syncFinishedAt);
- lead time for changes: the median of syncFinishedAt - `application.status.commitDate`, in hours;
- change failure rate: deployments whose health after the sync is DEGRADED / deployments;
- time to restore: per failed deployment, the time to the application's next finished release that is HEALTHY,
  median in hours; a failure not restored yet is counted as unrestored.

These are the definitions of docs/codefresh.md ("DORA metrics", with the same computation in SQL) and of the sandbox's
truth (codefresh_sandbox/dora.py), which integration_tests/test_dora.py checks the printed figures against. The chart
(PNG) shows deployments and failed deployments per week.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatch
from pathlib import Path
from statistics import median
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from codefresh_sandbox import HARNESS_ENV, SANDBOX_API_KEY, SandboxConfig, SandboxServer
from codefresh_sandbox.scenarios import run_connector

COLUMNS = ("week", "deployments", "failed", "failure_rate", "lead_time_h", "restore_h", "restored", "unrestored")


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _week(moment: datetime) -> str:
    day = moment.date()
    return (day - timedelta(days=day.weekday())).isoformat()


def _hours(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds() / 3600


def weekly(releases: Iterable[Mapping[str, Any]], production: Sequence[str]) -> List[Dict[str, Any]]:
    """One row per week, from the first to the last week with a deployment (empty weeks included)."""
    history: Dict[Tuple[Any, Any, Any], List[Mapping[str, Any]]] = defaultdict(list)
    for release in releases:
        cluster = ((release.get("application") or {}).get("destination") or {}).get("name") or ""
        if any(fnmatch(cluster, pattern) for pattern in production):
            history[(release.get("runtime"), release.get("namespace"), release.get("application_name"))].append(release)
    weeks: Dict[str, Dict[str, List[float]]] = defaultdict(
        lambda: {"lead": [], "restore": [], "deployed": [], "failed": []}
    )
    unrestored: Dict[str, int] = defaultdict(int)
    for releases_of_app in history.values():
        finished = [
            r
            for r in sorted(releases_of_app, key=lambda r: r["historyId"])
            if r["application"]["status"]["syncFinishedAt"]
        ]
        deployed = set()
        for index, release in enumerate(finished):
            status = release["application"]["status"]
            if status["revision"] in deployed:
                continue  # a rollback or a re-sync
            deployed.add(status["revision"])
            at = _time(status["syncFinishedAt"])
            week = weeks[_week(at)]
            week["deployed"].append(1)
            week["lead"].append(_hours(at, _time(status["commitDate"])))
            if status["healthStatus"] != "DEGRADED":
                continue
            week["failed"].append(1)
            healthy = next(
                (r for r in finished[index + 1 :] if r["application"]["status"]["healthStatus"] == "HEALTHY"), None
            )
            if healthy is None:
                unrestored[_week(at)] += 1
            else:
                week["restore"].append(_hours(_time(healthy["application"]["status"]["syncFinishedAt"]), at))
    rows: List[Dict[str, Any]] = []
    if not weeks:
        return rows
    day, last = datetime.fromisoformat(min(weeks)).date(), max(weeks)
    while day.isoformat() <= last:
        w = weeks.get(day.isoformat(), {"lead": [], "restore": [], "deployed": [], "failed": []})
        count, failed = len(w["deployed"]), len(w["failed"])
        rows.append(
            {
                "week": day.isoformat(),
                "deployments": count,
                "failed": failed,
                "failure_rate": failed / count if count else None,
                "lead_time_h": median(w["lead"]) if w["lead"] else None,
                "restore_h": median(w["restore"]) if w["restore"] else None,
                "restored": len(w["restore"]),
                "unrestored": unrestored.get(day.isoformat(), 0),
            }
        )
        day += timedelta(days=7)
    return rows


def cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table(rows: List[Dict[str, Any]]) -> str:
    lines = ["  ".join(f"{c:>12}" for c in COLUMNS)]
    lines += ["  ".join(f"{cell(row[c]):>12}" for c in COLUMNS) for row in rows]
    return "\n".join(lines)


def totals(rows: List[Dict[str, Any]]) -> str:
    deployments, failed = sum(r["deployments"] for r in rows), sum(r["failed"] for r in rows)
    active = [r for r in rows if r["deployments"]]
    per_week = deployments / len(rows) if rows else 0.0
    return (
        f"{len(rows)} weeks: {deployments} deployments ({per_week:.1f} a week, {len(active)} weeks with one or more), "
        f"{failed} failed (change failure rate {failed / deployments if deployments else 0:.1%}), "
        f"{sum(r['unrestored'] for r in rows)} not restored yet"
    )


def chart(rows: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weeks = [r["week"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.45), 4.5))
    ax.bar(weeks, [r["deployments"] for r in rows], label="deployments", color="#4c78a8")
    ax.bar(weeks, [r["failed"] for r in rows], label="failed (DEGRADED after the sync)", color="#e45756")
    ax.set_title("Deployments to production per week (Codefresh GitOps, gitops_releases)")
    ax.set_xlabel("week (from Monday, UTC)")
    ax.set_ylabel("deployments")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def records_of(messages: Iterable[Mapping[str, Any]], stream: str) -> List[Dict[str, Any]]:
    return [m["record"]["data"] for m in messages if m.get("type") == "RECORD" and m["record"]["stream"] == stream]


def read_messages(path: Path) -> List[Dict[str, Any]]:
    messages = []
    for line in path.read_text().splitlines():
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return messages


def sync_releases(base_url: str, api_key: str, workdir: Path, extra: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """discover, then a full-refresh read of gitops_releases, with the installed connector."""
    config = workdir / "config.json"
    config.write_text(json.dumps({"api_key": api_key, "base_url": base_url, **extra}))
    found = run_connector(["discover", "--config", str(config)], workdir, "discover").of_type("CATALOG")
    if not found:
        raise SystemExit(f"discover printed no catalog (see {workdir / 'discover.stderr'})")
    stream = next(s for s in found[0]["catalog"]["streams"] if s["name"] == "gitops_releases")
    catalog = workdir / "catalog.json"
    configured = {"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
    catalog.write_text(json.dumps({"streams": [configured]}))
    run = run_connector(["read", "--config", str(config), "--catalog", str(catalog)], workdir, "read", timeout=600)
    errors = [str(e.get("message")) for e in run.error_traces()]
    if errors or run.exit_code != 0:
        raise SystemExit(f"the read failed: {'; '.join(errors) or f'exit {run.exit_code}'}")
    return records_of(run.of_type("RECORD"), "gitops_releases")


def main(argv: Optional[Sequence[str]] = None) -> int:
    os.environ.update(HARNESS_ENV)  # a sandbox is plain http on this machine (source_codefresh/transport.py)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running sandbox (or Codefresh) API root; default: start a sandbox")
    parser.add_argument("--api-key", default=os.environ.get("CODEFRESH_API_KEY", SANDBOX_API_KEY))
    parser.add_argument("--messages", type=Path, help="the messages of a sync (JSON lines) instead of a new sync")
    parser.add_argument("--releases", type=int, default=400, help="releases of the started sandbox (default 400)")
    parser.add_argument(
        "--production-clusters",
        default="prod-*",
        help="comma-separated names (globs) of the production clusters (default prod-*, the sandbox's)",
    )
    parser.add_argument("--chart", type=Path, default=Path(".tmp/dora.png"), help="the PNG to draw (.tmp/dora.png)")
    opts = parser.parse_args(argv)
    production = [p.strip() for p in opts.production_clusters.split(",") if p.strip()]

    if opts.messages:
        releases = records_of(read_messages(opts.messages), "gitops_releases")
        source = str(opts.messages)
    else:
        with tempfile.TemporaryDirectory(prefix="source-codefresh-dora-") as workdir:
            if opts.base_url:
                releases = sync_releases(opts.base_url, opts.api_key, Path(workdir), {})
                source = opts.base_url
            else:
                with SandboxServer(SandboxConfig(gitops_releases=opts.releases)) as server:
                    releases = sync_releases(server.base_url, SANDBOX_API_KEY, Path(workdir), {})
                    source = f"a sandbox of {opts.releases} releases"
    rows = weekly(releases, production)
    print(
        f"DORA metrics per week from {len(releases)} gitops_releases records ({source}); production clusters: "
        f"{', '.join(production)}"
    )
    print(table(rows))
    print(totals(rows))
    if rows:
        chart(rows, opts.chart)
        print(f"chart: {opts.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
