"""The DORA metrics from the synced gitops_releases: scripts/dora.py's printed figures and the SQL of docs/codefresh.md
are the sandbox's own truth (codefresh_sandbox/dora.py), week by week; the script draws its chart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from codefresh_sandbox import HARNESS_ENV, SMALL_ACCOUNT, SandboxConfig, SandboxServer
from integration_tests.syncs import read_streams, records

REPO_ROOT = Path(__file__).resolve().parents[1]


def shown(value: object) -> str:
    """A figure as the script prints it (3 decimals, `-` for none)."""
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def test_the_printed_weekly_figures_are_the_sandboxs_truth_and_the_chart_is_drawn(tmp_path):
    chart = tmp_path / "dora.png"
    with SandboxServer(SandboxConfig(**dict(SMALL_ACCOUNT, gitops_releases=160))) as server:
        truth = server.data.gitops.dora()
        production = ",".join(server.data.gitops.production_clusters)
        run = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "scripts" / "dora.py"),
                "--base-url",
                server.base_url,
                "--chart",
                str(chart),
                "--production-clusters",
                production,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO_ROOT,
            env={**os.environ, **HARNESS_ENV},
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert server.stats()["graphql"]["mutation"] == 0
    lines = run.stdout.splitlines()
    rows = [line.split() for line in lines if line.strip()[:4].isdigit()]
    assert len(truth) > 3 and sum(row["failed_deployments"] for row in truth) > 0
    keys = ("week", "deployments", "failed_deployments", "change_failure_rate", "lead_time_hours",
            "time_to_restore_hours", "restored", "unrestored")  # fmt: skip
    assert rows == [[shown(row[key]) for key in keys] for row in truth]
    deployments = sum(row["deployments"] for row in truth)
    assert f"{len(truth)} weeks: {deployments} deployments" in run.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"chart: {chart}" in run.stdout


def test_the_sql_of_the_docs_computes_the_sandboxs_truth_from_the_synced_table():
    """The DORA query of docs/codefresh.md, run by DuckDB on gitops_releases as PyAirbyte's DuckDB cache holds it
    (top-level fields as lower-case columns, objects as JSON)."""
    docs = (REPO_ROOT / "docs" / "codefresh.md").read_text()
    section = docs.split("### DORA metrics from the synced tables", 1)[1]
    query = section.split("```sql\n", 1)[1].split("```", 1)[0]
    with SandboxServer(SandboxConfig(**dict(SMALL_ACCOUNT, gitops_releases=160))) as server:
        output = read_streams(server, ["gitops_releases"])
        truth = [row for row in server.data.gitops.dora() if row["deployments"]]
    db = duckdb.connect()
    db.execute(
        "CREATE TABLE gitops_releases (runtime VARCHAR, namespace VARCHAR, application_name VARCHAR, "
        "historyid BIGINT, application JSON)"
    )
    db.executemany(
        "INSERT INTO gitops_releases VALUES (?, ?, ?, ?, ?)",
        [
            [r["runtime"], r["namespace"], r["application_name"], r["historyId"], json.dumps(r["application"])]
            for r in records(output, "gitops_releases")
        ],
    )
    rows = db.execute(query).fetchall()
    assert len(truth) > 3
    assert [(str(row[0])[:10], row[1], row[2]) for row in rows] == [
        (t["week"], t["deployments"], t["failed_deployments"]) for t in truth
    ]
    for row, t in zip(rows, truth, strict=True):
        wanted = (t["change_failure_rate"], t["lead_time_hours"], t["time_to_restore_hours"])
        for got, want in zip(row[3:], wanted, strict=True):
            assert (got is None and want is None) or abs(got - want) < 1e-6, (t["week"], got, want)
