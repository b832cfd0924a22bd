"""scripts/dora.py: the DORA figures it prints from a sync of the sandbox are the sandbox's own truth
(codefresh_sandbox/dora.py), week by week, and it draws its chart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from codefresh_sandbox import HARNESS_ENV, SMALL_ACCOUNT, SandboxConfig, SandboxServer

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
