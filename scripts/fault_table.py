"""The fault-injection table: a full read of every stream under each fault, and what came out.

    .venv/bin/python scripts/fault_table.py                      # every scenario, three at a time (~12 min)
    .venv/bin/python scripts/fault_table.py --jobs 1             # one after the other (times without contention)
    .venv/bin/python scripts/fault_table.py baseline status_502  # some scenarios
    .venv/bin/python scripts/fault_table.py --list
    .venv/bin/python scripts/fault_table.py --timeout 130     # kill reads as the tests do

Each scenario (codefresh_sandbox/scenarios.py) starts a fresh sandbox of 300 builds, installs its fault rules, runs
the installed `source-codefresh read` with every stream in full_refresh, and compares the records with what the
sandbox holds: exact id sets for builds, build_details and analytics rows, counts and primary-key duplicates for
the rest. A scenario's "expected" leaves out what a correct connector does not deliver under that fault (a stream
skipped on 403, a stream failed on an HTML page or a wrong key). The verdict column says whether the connector did
what it should; the lines under the table say what differed. Exit status 1 when any verdict is not OK.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codefresh_sandbox import HARNESS_ENV
from codefresh_sandbox.scenarios import SCENARIOS, SCENARIOS_BY_NAME, results_table, run_scenario


def main() -> int:
    os.environ.update(HARNESS_ENV)  # the sandbox is plain http on this machine (source_codefresh/transport.py)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all)")
    parser.add_argument(
        "--jobs", type=int, default=3, help="scenarios run at once (default 3: a faulted read mostly waits in backoff)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds before a read is killed (default 600; the tests kill at 130 s, as a read "
        "slower than 120 s is a defect in itself, but the table shows how long it really takes)",
    )
    parser.add_argument("--out", help="directory to keep each scenario's config, catalog, stdout and stderr in")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    opts = parser.parse_args()

    if opts.list:
        for s in SCENARIOS:
            print(f"{s.name:<36} {s.fault}")
        return 0
    unknown = [n for n in opts.scenarios if n not in SCENARIOS_BY_NAME]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; see --list")
    scenarios = [SCENARIOS_BY_NAME[n] for n in opts.scenarios] if opts.scenarios else list(SCENARIOS)

    out = Path(opts.out) if opts.out else Path(tempfile.mkdtemp(prefix="source-codefresh-faults-"))
    started = time.monotonic()
    print(f"{len(scenarios)} scenarios, {opts.jobs} at a time; files in {out}", flush=True)

    def run(scenario):
        result = run_scenario(dataclasses.replace(scenario, timeout=opts.timeout), out / scenario.name)
        print(f"  {scenario.name}: {result.outcome} in {result.seconds:.1f} s", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        results = list(pool.map(run, scenarios))
    print()
    print("\n".join(results_table(results, [r.scenario.fault for r in results])))
    print(f"\n{len(results)} scenarios in {time.monotonic() - started:.0f} s")
    return 0 if all(not r.problems() for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
