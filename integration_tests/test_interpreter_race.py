"""CPython bug gh-106905 in a real read: every stream (build_details and build_steps through the per-build path) at
64 workers against the sandbox, with the interpreter stressed so that the race shows within one read.

The read runs `source_codefresh.run` in a subprocess whose launcher (`_LAUNCHER`), before importing the connector:
- collects garbage every 5 allocations (`gc.set_threshold(5, 1, 1)`), so collections often start inside the AST
  constructor that `ast.literal_eval` runs for the CDK's interpolation;
- asks for a thread switch every microsecond (`sys.setswitchinterval(1e-6)`);
- registers a gc callback that runs a few lines of Python at each collection. It stands in for the finalizers
  (unfinished generators, unclosed HTTP responses) that a collection in a real sync runs now and then: Python code
  is where the interpreter switches threads. Without it, five trial reads like this one did not fail.

With the guard (source_codefresh/ast_guard.py), the read must complete with every record exactly once. To watch it
fail, run it without the guard:

    CODEFRESH_TEST_WITHOUT_AST_GUARD=1 .venv/bin/python -m pytest -q integration_tests/test_interpreter_race.py

On Python 3.11.7 (this machine) that failed in 4 runs of 4 at this size (600 builds), each with
`SystemError('AST constructor recursion depth mismatch (before=51, after=67)')` or the like in two to four streams
(analytics_reports, audit, builds, build_details, build_steps, runtime_environments, ...); at 300 builds it
had failed in 10 runs of 11. With the guard it passed in every run (12 of 12, 18-55 s each on a shared 2-core
machine). On an interpreter without the bug (3.11.8+, 3.12.2+, 3.13+) the guard is not installed and the read must
complete all the same (it did on 3.13.0); the test prints which case it ran.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from codefresh_sandbox.scenarios import Scenario, describe, run_scenario
from source_codefresh import ast_guard

WITHOUT_GUARD = os.environ.get("CODEFRESH_TEST_WITHOUT_AST_GUARD") == "1"

_LAUNCHER = """
import gc, json, os, sys

gc.set_threshold(5, 1, 1)
sys.setswitchinterval(1e-6)


def finalizer_stand_in(phase, info):
    total = 0
    for i in range(50):
        total += i


gc.callbacks.append(finalizer_stand_in)

from source_codefresh import ast_guard  # installs the guard where the interpreter needs it

if os.environ.get("CODEFRESH_TEST_WITHOUT_AST_GUARD") == "1":
    ast_guard.uninstall()
sys.stderr.write("interpreter: " + json.dumps({
    "describe": ast_guard.describe(), "installed": ast_guard.installed(), "affected": ast_guard.is_affected(),
    "gc_threshold": gc.get_threshold(), "switch_interval": sys.getswitchinterval(),
}) + "\\n")
sys.stderr.flush()

from source_codefresh.run import run

run()
"""

RACE = Scenario(
    "interpreter_race",
    "no faults; gc every 5 allocations, thread switch every 1 us, 64 workers",
    config_overrides={"num_workers": 64},
    builds=600,
    min_faults_fired=0,
    timeout=600.0,
)


def _interpreter_line(stderr: str) -> dict:
    for line in stderr.splitlines():
        if line.startswith("interpreter: "):
            return json.loads(line[len("interpreter: ") :])
    raise AssertionError(f"the launcher did not report the interpreter; stderr:\n{stderr[-2000:]}")


@pytest.mark.timeout(660)
def test_full_read_at_64_workers_completes_under_gc_and_thread_switch_stress(tmp_path: Path) -> None:
    command = [sys.executable, "-c", _LAUNCHER]
    result = run_scenario(RACE, tmp_path, command=command)
    report = describe(result)
    interpreter = _interpreter_line((tmp_path / "read.stderr").read_text(errors="replace"))
    print(f"\n{interpreter['describe']}; read in {result.seconds:.1f} s, {result.emitted} records")

    # the stress was in force, and the guard is where the interpreter needs it (unless switched off on purpose)
    assert interpreter["gc_threshold"] == [5, 1, 1] and interpreter["switch_interval"] < 1e-5, interpreter
    assert interpreter["affected"] == ast_guard.is_affected(), interpreter
    assert interpreter["installed"] == (interpreter["affected"] and not WITHOUT_GUARD), interpreter

    # the read completed, every record exactly once (builds and build_details: exact id sets)
    assert result.outcome == "success" and result.exit_code == 0, report
    assert result.stream("build_details").exact and result.stream("build_details").unique == RACE.builds, report
    assert result.stream("build_steps").emitted > RACE.builds, report
    assert result.problems() == [], report
