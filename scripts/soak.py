"""The soak run: N consecutive full syncs of every stream at the highest `num_workers` (the spec's maximum), each under
the next fault scenario of a rotation, checking that no sync fails and that every record arrives exactly once.

    .venv/bin/python scripts/soak.py                      # one sync per scenario of the rotation (12 syncs)
    .venv/bin/python scripts/soak.py --syncs 30           # the rotation, repeated
    .venv/bin/python scripts/soak.py --syncs 4 baseline rate_limit_retry_after_seconds   # a rotation of your own
    .venv/bin/python scripts/soak.py --list

Each sync is what a platform does: a fresh sandbox (codefresh_sandbox, 300 builds by default) with the
scenario's fault rules switched on (codefresh_sandbox/scenarios.py; the sandbox's switches are in
codefresh_sandbox/faults.py), then `discover`, then `read` of the full discovered catalog (every stream,
full_refresh) through the installed `source-codefresh` executable with that `num_workers`. Records are compared with
what the sandbox holds (codefresh_sandbox/scenarios.py: exact id sets for builds, build_details and analytics rows; for
the rest the sandbox's counts and primary-key duplicates), minus what a correct connector does not deliver under
the fault (a stream skipped on a 403).

The rotation is every scenario whose correct outcome is a successful sync (`--list`); the scenarios that must fail
(a wrong key, an HTML page instead of JSON) are not syncs that should complete, and scripts/fault_table.py covers
them. One table line per sync; the exit status is 1 when any sync failed or lost, duplicated or invented a record.
Seconds are reported, not judged: a 429 storm costs what the API asks the connector to wait.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List

from codefresh_sandbox import HARNESS_ENV
from codefresh_sandbox.scenarios import (
    SCENARIOS,
    SCENARIOS_BY_NAME,
    Scenario,
    ScenarioResult,
    results_table,
    run_scenario,
)
from source_codefresh.spec import connection_specification

MAX_WORKERS = connection_specification()["properties"]["num_workers"]["maximum"]
ROTATION = [s for s in SCENARIOS if s.outcome == "success"]


def soak_scenario(scenario: Scenario, builds: int, timeout: float) -> Scenario:
    overrides = {**dict(scenario.config_overrides), "num_workers": MAX_WORKERS}
    return dataclasses.replace(scenario, config_overrides=overrides, builds=builds, timeout=timeout)


def main() -> int:
    os.environ.update(HARNESS_ENV)  # the sandbox is plain http on this machine (source_codefresh/transport.py)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help="the rotation's scenarios, in order (default: --list)")
    parser.add_argument("--syncs", type=int, default=len(ROTATION), help=f"syncs to run (default {len(ROTATION)})")
    parser.add_argument("--builds", type=int, default=300, help="builds in each sync's sandbox (default 300)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a read is killed (default 900)")
    parser.add_argument("--out", help="directory to keep each sync's config, catalog, stdout and stderr in")
    parser.add_argument("--list", action="store_true", help="list the default rotation and exit")
    opts = parser.parse_args()

    if opts.list:
        for s in ROTATION:
            print(f"{s.name:<36} {s.fault}")
        return 0
    unknown = [n for n in opts.scenarios if n not in SCENARIOS_BY_NAME]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; see scripts/fault_table.py --list")
    rotation = [SCENARIOS_BY_NAME[n] for n in opts.scenarios] if opts.scenarios else ROTATION
    if opts.syncs < 1:
        parser.error("--syncs must be at least 1")

    out = Path(opts.out) if opts.out else Path(tempfile.mkdtemp(prefix="source-codefresh-soak-"))
    print(
        f"{opts.syncs} consecutive full syncs at num_workers {MAX_WORKERS}, rotating {len(rotation)} fault "
        f"scenarios, {opts.builds} builds each; files in {out}",
        flush=True,
    )
    started = time.monotonic()
    results: List[ScenarioResult] = []
    for number in range(1, opts.syncs + 1):
        scenario = soak_scenario(rotation[(number - 1) % len(rotation)], opts.builds, opts.timeout)
        result = run_scenario(scenario, out / f"{number:03d}-{scenario.name}", rediscover=True)
        results.append(result)
        verdict = "OK" if not result.problems() else "DEFECT: " + "; ".join(result.problems())
        print(
            f"  sync {number}/{opts.syncs} {scenario.name}: {result.outcome} in {result.seconds:.1f} s, "
            f"{result.emitted} records - {verdict}",
            flush=True,
        )

    print()
    print("\n".join(results_table(results, [f"{n:>3} {r.scenario.name}" for n, r in enumerate(results, 1)])))
    failed = [r for r in results if r.outcome != "success"]
    defects = [r for r in results if r.problems()]
    print(
        f"{len(results)} syncs in {time.monotonic() - started:.0f} s: {len(failed)} failed, "
        f"{sum(r.emitted for r in results)} records emitted of {sum(r.expected for r in results)} expected, "
        f"{sum(r.missing for r in results)} missing, {sum(r.duplicated for r in results)} duplicated, "
        f"{sum(r.unexpected for r in results)} unexpected; {len(defects)} syncs with a defect"
    )
    return 1 if failed or defects else 0


if __name__ == "__main__":
    sys.exit(main())
