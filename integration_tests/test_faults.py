"""Fault injection: a full read of every stream through the installed `source-codefresh` executable while the
sandbox answers with rate limits, server errors, dropped connections, slow answers, deleted builds, cut-off JSON,
an HTML login page, 403, 432 and 401 (scenarios in codefresh_sandbox/scenarios.py; the table:
`python scripts/fault_table.py`).

Each scenario runs once per session (a fresh sandbox of 300 builds); the tests assert on its result:
- no record missing and none duplicated (builds and build_details: exact id sets; analytics rows: exact key sets;
  other streams: the sandbox's counts and primary-key uniqueness), no unexpected record;
- the outcome (success, or the failure type) and what the error message says;
- the log lines a skip must leave (one per skipped stream, one per deleted build and child stream).
Wall time is not asserted (a 429 storm costs what the API asks the connector to wait, and machines differ): the
table of `scripts/fault_table.py` reports it next to each scenario's budget (Scenario.max_seconds).

Where the connector behaves wrongly the case is a strict xfail naming the evidence: it turns into a failure (XPASS)
as soon as the connector is fixed, so the mark must then be removed.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, Iterator, List

import pytest

from codefresh_sandbox.scenarios import SCENARIOS, SCENARIOS_BY_NAME, ScenarioResult, describe, run_scenario

# ---------------------------------------------------------------------------------------------------------------------
# Known connector defects (evidence in each reason). Do not weaken the assertions: fix the connector, drop the mark.
# ---------------------------------------------------------------------------------------------------------------------

# None at the moment. Wall time is reported by scripts/fault_table.py, not asserted here: a 429 storm costs what
# Codefresh asks the connector to wait, and CI machines differ.
XFAIL: Dict[str, str] = {}

# ---------------------------------------------------------------------------------------------------------------------
# One read per scenario per session, all at once (FAULTS_JOBS at a time if set)
# ---------------------------------------------------------------------------------------------------------------------

# A faulted read is nearly all waiting in backoff (502 every 5th request: ~80 s, of which ~5 s CPU), so the
# selected scenarios start together when the first test needs one (slowest first) and each test waits for its own:
# the module takes about as long as its slowest read. The seconds each read takes include that contention.
# Every test of this module runs in one xdist worker (the group below): the fixture starts the module's scenarios
# from `session.items`, which under xdist is the whole selection in every worker.
JOBS = int(os.environ.get("FAULTS_JOBS", str(len(SCENARIOS))))
pytestmark = pytest.mark.xdist_group("faults")
# The dedicated tests below and the scenario each one reads.
SCENARIO_OF_TEST = {
    "test_rate_limit_storm_every_record_exactly_once": "rate_limit_retry_after_seconds",
    "test_deleted_builds_are_skipped_with_one_line_each": "deleted_builds",
    "test_html_login_page_names_base_url": "html_pipelines",
    "test_unauthorized_read_says_rejected_and_emits_nothing": "unauthorized",
}


@pytest.fixture(scope="session")
def scenario_results(request, tmp_path_factory) -> Iterator[Dict[str, "Future[ScenarioResult]"]]:
    wanted: List[str] = []
    for item in request.session.items:
        if item.module is None or item.module.__name__ != __name__:
            continue
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("name") if callspec else SCENARIO_OF_TEST.get(item.originalname)
        if name and name not in wanted:
            wanted.append(name)
    wanted.sort(key=_slow_first)  # the session ends sooner
    workdir = tmp_path_factory.mktemp("faults")
    pool = ThreadPoolExecutor(max_workers=max(1, JOBS), thread_name_prefix="fault-scenario")
    futures = {name: pool.submit(run_scenario, SCENARIOS_BY_NAME[name], workdir / name) for name in wanted}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def _slow_first(name: str):
    retried = any(rule.get("kind") in ("rate_limit", "status", "drop") for rule in SCENARIOS_BY_NAME[name].faults)
    return (name not in XFAIL, not retried)


def result_of(name: str, futures: Dict[str, "Future[ScenarioResult]"]) -> ScenarioResult:
    return futures[name].result()


def _param(scenario):
    marks = [pytest.mark.timeout(WAIT)]
    if scenario.name in XFAIL:
        marks.append(pytest.mark.xfail(strict=True, reason=XFAIL[scenario.name]))
    return pytest.param(scenario.name, marks=marks, id=scenario.name)


# A test may wait for the reads queued before its own: every selected scenario, JOBS at a time.
WAIT = int(sum(s.timeout for s in SCENARIOS) / max(1, JOBS)) + 600


# ---------------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [_param(s) for s in SCENARIOS])
def test_fault_scenario(name: str, scenario_results) -> None:
    result = result_of(name, scenario_results)
    scenario = result.scenario
    report = describe(result)

    # the read ran to its end, with the outcome a correct connector has
    assert result.outcome != "timeout", report
    assert result.outcome == scenario.outcome, report
    if scenario.outcome == "success":
        assert result.exit_code == 0, report
    else:
        assert result.exit_code != 0, report
        message = (result.message or "").lower()
        for part in scenario.message_contains:
            assert part.lower() in message, f"the error message does not say {part!r}\n{report}"

    # every record exactly once
    assert result.missing == 0, report
    assert result.duplicated == 0, report
    assert result.unexpected == 0, report
    assert result.pagination_errors == 0, report
    for name_ in ("builds", "build_details"):
        assert result.stream(name_).exact and result.stream(name_).missing == 0, report

    # the fault happened, and the connector said what it skipped
    assert result.faults_fired >= scenario.min_faults_fired, report
    assert result.problems() == [], report


@pytest.mark.timeout(WAIT)
def test_rate_limit_storm_every_record_exactly_once(scenario_results) -> None:
    """Acceptance: a read through a 429 storm (every 3rd request) completes with every record exactly once.

    This scenario's read is not killed at 190 s (its timeout is 420 s), so this checks the records whatever the
    time; test_fault_scenario[rate_limit_retry_after_seconds] checks the time."""
    result = result_of("rate_limit_retry_after_seconds", scenario_results)
    report = describe(result)
    assert result.faults_fired > 0, report
    assert result.outcome == "success" and result.exit_code == 0, report
    assert result.stream("builds").exact and result.stream("build_details").exact
    assert result.missing == 0 and result.duplicated == 0 and result.unexpected == 0, report


@pytest.mark.timeout(WAIT)
def test_deleted_builds_are_skipped_with_one_line_each(scenario_results) -> None:
    """build_details and build_steps skip a build deleted after it was listed, with one log line naming it, and
    every other build is present."""
    result = result_of("deleted_builds", scenario_results)
    report = describe(result)
    assert result.outcome == "success", report
    assert len(result.deleted_build_ids) == 30, report
    details = result.stream("build_details")
    assert details.exact and details.missing == 0 and details.unexpected == 0, report
    assert details.unique == result.stream("builds").unique - len(result.deleted_build_ids), report
    for build_id in result.deleted_build_ids:
        for stream in ("build_details", "build_steps"):
            lines = result.log_lines(re.escape(build_id), re.escape(f"'{stream}'"))
            assert len(lines) == 1, f"{stream} / {build_id}: {lines}\n{report}"


@pytest.mark.timeout(WAIT)
def test_html_login_page_names_base_url(scenario_results) -> None:
    """A 200 answer that is an HTML page fails as a config error saying it is not JSON and naming base_url; the
    streams that do not read /pipelines still complete."""
    result = result_of("html_pipelines", scenario_results)
    report = describe(result)
    assert result.outcome == "config_error", report
    assert "not json" in result.message.lower() and "base_url" in result.message, report
    failed = {e["stream"] for e in result.errors if e["stream"]}
    assert failed <= {"pipelines", "pipeline_triggers"}, report
    complete = {n for n, s in result.streams.items() if s.expected and s.missing == 0}
    assert complete >= {"builds", "build_details", "audit", "images", "projects"}, report


@pytest.mark.timeout(WAIT)
def test_unauthorized_read_says_rejected_and_emits_nothing(scenario_results) -> None:
    result = result_of("unauthorized", scenario_results)
    report = describe(result)
    assert result.outcome == "config_error", report
    assert "rejected" in result.message.lower() and "401" in result.message, report
    assert result.emitted == 0, report
