"""Fault scenarios: a full read through the installed `source-codefresh` executable while the sandbox misbehaves.

Each `Scenario` names sandbox fault rules (codefresh_sandbox/README.md, "Faults") and what a correct
connector does under them. `run_scenario(scenario, workdir)` starts a fresh, small sandbox, installs the rules,
runs `source-codefresh read` as a subprocess with config and configured catalog files (every stream,
full_refresh), and compares what came out with what the sandbox holds:

- builds and build_details: the exact id sets (`server.data.build_ids()`, minus the builds a `deleted_builds`
  rule hides for build_details);
- analytics_reports: the exact (reportName, time, key) set the sandbox's analytics module produces for the
  connector's date range (one year back, reports that support day granularity);
- every other stream: the sandbox's expected count (`codefresh_sandbox.expected.expected_records`), and
  duplicates by the stream's primary key.

Used by integration_tests/test_faults.py (assertions) and scripts/fault_table.py (the table).

    from codefresh_sandbox.scenarios import SCENARIOS, run_scenario
    result = run_scenario(SCENARIOS[0], Path(".tmp/faults"))
    result.missing, result.duplicated, result.outcome, result.message, result.seconds
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Mapping, Optional, Sequence, Set, Tuple

from codefresh_sandbox import SANDBOX_API_KEY, SandboxConfig, SandboxServer
from codefresh_sandbox import analytics as sandbox_analytics
from codefresh_sandbox.expected import connector_command, expected_records, sandbox_config

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "manifest.yaml"

# A key the sandbox rejects (401), distinctive enough to grep for in every output; `+`, `/` and `=` give it a
# URL-encoded form that differs from the key.
WRONG_API_KEY = "cfWrong+Key/5d1e.9a8b7c6d5e4f3a2b1c0dfeedfacecafe=="

# Streams whose expected records are exact id sets; the rest are compared by count.
EXACT_STREAMS = ("builds", "build_details", "analytics_reports")

# Seconds the test-only manifest copy uses as read timeout (the real manifest: 60 s; see `short_read_timeout`).
TEST_READ_TIMEOUT = 2.0


# ---------------------------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One fault and what a correct connector does under it.

    - `faults`: sandbox fault rules, installed before the read.
    - `outcome`: "success", or the failure type of the first error TRACE ("config_error", ...).
    - `message_contains`: substrings (case-insensitive) the first error message must contain.
    - `not_delivered`: streams a correct connector does not deliver under this fault (skipped on a 403, or failed
      on purpose): their expected count is 0, and they must emit nothing.
    - `skip_lines`: (regex, regex, count): how many log lines must match both (e.g. one line naming the skipped
      stream or its endpoint and 403). For `deleted_builds` the per-build lines are checked from the
      deleted ids instead (`per_deleted_build_line`).
    - `short_read_timeout`: run a test-only copy of manifest.yaml whose only change is `read_timeout_in_seconds`
      (the manifest's 60 s is a literal the config cannot override).
    - `max_seconds`: the wall time a correct connector needs at most; a longer read is reported as a defect. 180 s:
      "a minute or two" plus room for CI load and three reads at a time. With no fault a read takes ~16-30 s; the
      fault rates here cost 400+ retries, which a correct connector spreads over its 16 workers.
      `timeout`: when the read is killed (outcome "timeout").
    """

    name: str
    fault: str
    faults: Tuple[Mapping[str, Any], ...] = ()
    outcome: str = "success"
    message_contains: Tuple[str, ...] = ()
    message_excludes: Tuple[str, ...] = ()
    not_delivered: FrozenSet[str] = frozenset()
    skip_lines: Tuple[Tuple[str, str, int], ...] = ()
    per_deleted_build_line: bool = False
    api_key: str = SANDBOX_API_KEY
    config_overrides: Mapping[str, Any] = field(default_factory=dict)
    short_read_timeout: Optional[float] = None
    builds: int = 300
    timeout: float = 900.0
    max_seconds: float = 180.0
    min_faults_fired: int = 1

    def rules(self) -> List[Dict[str, Any]]:
        return [dict(rule) for rule in self.faults]


ALL_STREAMS_FAIL = frozenset({"*"})

SCENARIOS: List[Scenario] = [
    Scenario("baseline", "no faults", min_faults_fired=0),
    Scenario(
        # The named acceptance ("completes with every record exactly once"): read to the end, however long it takes.
        "rate_limit_retry_after_seconds",
        "429 every 3rd request, Retry-After: 1",
        faults=({"kind": "rate_limit", "every": 3, "retry_after": "1"},),
    ),
    Scenario(
        "rate_limit_retry_after_http_date",
        "429 every 3rd request, Retry-After: <HTTP date +2 s>",
        faults=({"kind": "rate_limit", "every": 3, "retry_after": "http-date"},),
    ),
    Scenario(
        "rate_limit_no_retry_after",
        "429 every 3rd request, no Retry-After",
        faults=({"kind": "rate_limit", "every": 3, "retry_after": None},),
    ),
    Scenario("status_502", "502 every 5th request", faults=({"kind": "status", "status": 502, "every": 5},)),
    Scenario("status_503", "503 every 7th request", faults=({"kind": "status", "status": 503, "every": 7},)),
    Scenario("dropped_connection", "connection dropped every 6th request", faults=({"kind": "drop", "every": 6},)),
    Scenario(
        "slow_beyond_read_timeout",
        f"5 answers delayed 6 s (read timeout {TEST_READ_TIMEOUT:g} s in a test copy of the manifest)",
        faults=({"kind": "slow", "seconds": 6, "every": 40, "times": 5},),
        short_read_timeout=TEST_READ_TIMEOUT,
    ),
    Scenario(
        "deleted_builds",
        "every 10th build deleted after listing (404 on details and steps)",
        faults=({"kind": "deleted_builds", "every": 10},),
        per_deleted_build_line=True,
    ),
    Scenario(
        "malformed_workflow",
        "cut-off JSON on /workflow, 3 times",
        faults=({"match": {"method": "GET", "path": "^/api/workflow$"}, "kind": "malformed", "every": 2, "times": 3},),
    ),
    Scenario(
        "html_pipelines",
        "HTML login page (200) on /pipelines",
        faults=({"match": {"method": "GET", "path": "^/api/pipelines$"}, "kind": "html"},),
        outcome="config_error",
        message_contains=("not json", "base_url"),
        not_delivered=frozenset({"pipelines", "pipeline_triggers"}),
    ),
    Scenario(
        "forbidden_audit",
        "403 on /audit (key without the audit scope)",
        faults=({"match": {"method": "GET", "path": "^/api/audit$"}, "kind": "forbidden"},),
        not_delivered=frozenset({"audit"}),
        # The stream's own skip line, or the CDK's "Ignoring response ... /api/audit ... 403": one in all.
        skip_lines=((r"'audit'", r"'audit' scope", 1),),
    ),
    Scenario(
        "analytics_not_ready",
        "analytics 432 (report still computing) on each report and range",
        faults=({"match": {"method": "GET", "path": "^/api/analytics/reports/"}, "kind": "analytics_not_ready"},),
    ),
    Scenario(
        "unauthorized",
        "401: wrong API key in the config",
        api_key=WRONG_API_KEY,
        outcome="config_error",
        message_contains=("rejected",),
        not_delivered=ALL_STREAMS_FAIL,
        min_faults_fired=0,
    ),
]

SCENARIOS_BY_NAME: Dict[str, Scenario] = {s.name: s for s in SCENARIOS}


# ---------------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class StreamResult:
    expected: int
    emitted: int
    unique: int
    missing: int
    duplicated: int
    unexpected: int = 0
    exact: bool = False  # compared as an exact key set (else by count)
    missing_keys: List[Any] = field(default_factory=list)  # a few examples


@dataclass
class ScenarioResult:
    scenario: Scenario
    streams: Dict[str, StreamResult]
    outcome: str  # "success", a failure type, or "timeout"
    message: Optional[str]  # the first error TRACE message
    errors: List[Dict[str, Any]]  # every error TRACE: {failure_type, message, stream}
    logs: List[Tuple[str, str]]  # every LOG message: (level, message)
    exit_code: Optional[int]
    seconds: float
    requests: int
    faults_fired: int
    by_status: Dict[int, int]
    pagination_errors: int
    deleted_build_ids: List[str]
    workdir: Path

    @property
    def expected(self) -> int:
        return sum(s.expected for s in self.streams.values())

    @property
    def emitted(self) -> int:
        return sum(s.emitted for s in self.streams.values())

    @property
    def missing(self) -> int:
        return sum(s.missing for s in self.streams.values())

    @property
    def duplicated(self) -> int:
        return sum(s.duplicated for s in self.streams.values())

    @property
    def unexpected(self) -> int:
        return sum(s.unexpected for s in self.streams.values())

    def stream(self, name: str) -> StreamResult:
        return self.streams[name]

    def streams_with(self, attribute: str) -> Dict[str, int]:
        return {name: getattr(s, attribute) for name, s in self.streams.items() if getattr(s, attribute)}

    def log_lines(self, *patterns: str) -> List[str]:
        """LOG messages matching every regex (case-insensitive)."""
        return [m for _, m in self.logs if all(re.search(p, m, re.IGNORECASE) for p in patterns)]

    def problems(self) -> List[str]:
        """Everything that differs from what a correct connector does under this scenario (empty = correct)."""
        return evaluate(self)

    def outcome_text(self) -> str:
        if self.outcome == "success":
            return "success"
        return f"{self.outcome}: {self.message or ''}".strip()


# ---------------------------------------------------------------------------------------------------------------------
# Running the connector
# ---------------------------------------------------------------------------------------------------------------------


_LAUNCHER = '''\
"""Test-only: runs source_codefresh.run with a different manifest file (env SOURCE_CODEFRESH_TEST_MANIFEST)."""
import os
from pathlib import Path

import source_codefresh.source as source

source.manifest_path = lambda: Path(os.environ["SOURCE_CODEFRESH_TEST_MANIFEST"])

from source_codefresh.run import run

run()
'''


def manifest_copy_command(
    workdir: Path, changes: Sequence[Tuple[str, str]], every_match: bool = False
) -> Tuple[List[str], Dict[str, str]]:
    """A command running the connector's own entry point (`source_codefresh.run`) with a test-only copy of
    manifest.yaml. `changes` are (regex, replacement) pairs applied line-wise; each must match exactly once (or, with
    `every_match`, at least once: every match is changed), so a change to the manifest makes the test fail loudly
    instead of testing something else."""
    text = MANIFEST.read_text()
    for pattern, replacement in changes:
        text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if count != 1 and not (every_match and count > 1):
            raise RuntimeError(f"expected one match of {pattern!r} in {MANIFEST}, found {count}")
    manifest = workdir / "manifest.test-copy.yaml"
    manifest.write_text(text)
    launcher = workdir / "launch_with_manifest.py"
    launcher.write_text(_LAUNCHER)
    return [sys.executable, str(launcher)], {"SOURCE_CODEFRESH_TEST_MANIFEST": str(manifest)}


def short_timeout_command(workdir: Path, read_timeout: float) -> Tuple[List[str], Dict[str, str]]:
    """The connector with every requester's `read_timeout_in_seconds` lowered (the API's, and the log storage's,
    which a read without build logs does not use). The manifest's timeout is a literal number (the CDK does not
    interpolate it), so no config field can lower it for a test; the copy changes nothing else."""
    return manifest_copy_command(
        workdir,
        [(r"^(\s*read_timeout_in_seconds:\s*)\d+(\.\d+)?\s*$", rf"\g<1>{read_timeout:g}")],
        every_match=True,
    )


@dataclass
class ConnectorRun:
    args: List[str]
    exit_code: Optional[int]  # None when it timed out
    stdout: bytes
    stderr: bytes
    seconds: float
    messages: List[Dict[str, Any]]

    def of_type(self, kind: str) -> List[Dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    def error_traces(self) -> List[Dict[str, Any]]:
        return [m["trace"]["error"] for m in self.of_type("TRACE") if m["trace"].get("type") == "ERROR"]

    def connection_status(self) -> Optional[Dict[str, Any]]:
        found = self.of_type("CONNECTION_STATUS")
        return found[0]["connectionStatus"] if found else None


def run_connector(
    args: Sequence[str],
    workdir: Path,
    name: str,
    timeout: Optional[float] = 300.0,
    command: Optional[List[str]] = None,
    extra_env: Optional[Mapping[str, str]] = None,
) -> ConnectorRun:
    """Run `source-codefresh <args>` in `workdir`; keep stdout and stderr as `<name>.stdout` / `<name>.stderr`
    (`timeout` None: as long as it takes).

    TMPDIR and HOME point into the work directory, so every file the connector writes lands where a test can
    inspect it."""
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("tmp", "home"):
        (workdir / sub).mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({"TMPDIR": str(workdir / "tmp"), "HOME": str(workdir / "home"), "PYTHONUNBUFFERED": "1"})
    env.update(extra_env or {})
    cmd = (command or connector_command()) + list(args)
    stdout_path, stderr_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    started = time.monotonic()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=workdir, env=env)
        try:
            exit_code: Optional[int] = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            exit_code = None
    seconds = time.monotonic() - started
    stdout, stderr = stdout_path.read_bytes(), stderr_path.read_bytes()
    messages = []
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            messages.append(message)
    return ConnectorRun(list(args), exit_code, stdout, stderr, seconds, messages)


_CATALOG: Optional[Dict[str, Any]] = None
_CATALOG_LOCK = threading.Lock()


def discovered_catalog(base_url: str, workdir: Path) -> Dict[str, Any]:
    """The connector's catalog (from `discover`, run once per process: it depends on the manifest only)."""
    global _CATALOG
    with _CATALOG_LOCK:
        return _discover_once(base_url, workdir)


def _discover_once(base_url: str, workdir: Path) -> Dict[str, Any]:
    global _CATALOG
    if _CATALOG is None:
        _CATALOG = fresh_catalog(base_url, workdir)
    return _CATALOG


def fresh_catalog(base_url: str, workdir: Path, **config: Any) -> Dict[str, Any]:
    """The connector's catalog from a `discover` run now (as a platform does before each sync), with the sandbox's
    key and `config` (the opt-in streams need theirs)."""
    config_file = workdir / "discover-config.json"
    config_file.write_text(json.dumps(sandbox_config(base_url, SANDBOX_API_KEY, **config)))
    try:
        return discover(config_file, workdir)
    finally:
        config_file.unlink()


def discover(config_file: Path, workdir: Path) -> Dict[str, Any]:
    """The catalog `discover` prints with this config file (kept as `discover.stdout`); RuntimeError with its error
    messages when it prints none."""
    run = run_connector(["discover", "--config", str(config_file)], workdir, "discover", timeout=120)
    catalogs = run.of_type("CATALOG")
    if not catalogs:
        said = "; ".join(str(error.get("message")) for error in run.error_traces())
        raise RuntimeError(f"discover printed no catalog: {said or run.stderr.decode(errors='replace')[-2000:]}")
    catalog: Dict[str, Any] = catalogs[0]["catalog"]
    return catalog


def configured_catalog(
    catalog: Mapping[str, Any], names: Optional[Sequence[str]] = None, incremental: bool = False
) -> Dict[str, Any]:
    """The configured catalog of the streams `names` (default: every one), in the catalog's order: full refresh, or
    with `incremental` incremental where a stream supports it (append_dedup on its default cursor and key)."""
    configured = []
    for stream in catalog["streams"]:
        if names is not None and stream["name"] not in names:
            continue
        entry: Dict[str, Any] = {"stream": stream, "sync_mode": "full_refresh", "destination_sync_mode": "overwrite"}
        if incremental and "incremental" in stream["supported_sync_modes"]:
            entry.update(
                sync_mode="incremental",
                destination_sync_mode="append_dedup",
                cursor_field=stream.get("default_cursor_field") or [],
            )
        entry["primary_key"] = stream.get("source_defined_primary_key") or []
        configured.append(entry)
    return {"streams": configured}


# ---------------------------------------------------------------------------------------------------------------------
# What the sandbox holds
# ---------------------------------------------------------------------------------------------------------------------


def expected_analytics_keys(server: SandboxServer, read_day: date) -> Set[Tuple[str, str, str]]:
    """(reportName, time, key) of every row the connector's analytics read should return: reports that support
    day granularity, from one year before the read (the manifest's min_datetime) to today, rows up to the anchor."""
    data = server.data
    first, last = read_day - timedelta(days=365), read_day
    keys: Set[Tuple[str, str, str]] = set()
    for name, report in sandbox_analytics.REPORTS.items():
        if not any(dim["granularity"] == "day" for dim in report["dims"]):
            continue  # the connector skips it with a log line, without a request (granularity not supported)
        for row in sandbox_analytics.report_rows(data, name, first, last, "day"):
            keys.add((name, row["time"], row.get("key", "-")))  # build reports have no key: the connector says "-"
    return keys


def deleted_build_ids(server: SandboxServer) -> List[str]:
    data = server.data
    with data.lock:
        return [st.doc["id"] for st in data.builds if data.is_deleted(st)]


def _value_at(record: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = record
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _primary_key(record: Mapping[str, Any], pk: Sequence[Sequence[str]]) -> Any:
    if not pk:
        return json.dumps(record, sort_keys=True)
    values = tuple(_value_at(record, path) for path in pk)
    return values[0] if len(values) == 1 else values


def compare_stream(expected: Any, keys: List[Any]) -> StreamResult:
    """`expected` is a set of keys (exact comparison) or a count."""
    counts = Counter(keys)
    unique = len(counts)
    duplicated = len(keys) - unique
    if isinstance(expected, set):
        missing = expected - set(counts)
        unexpected = set(counts) - expected
        return StreamResult(
            len(expected),
            len(keys),
            unique,
            len(missing),
            duplicated,
            len(unexpected),
            True,
            sorted(missing, key=str)[:5],
        )
    want = int(expected or 0)
    return StreamResult(want, len(keys), unique, max(0, want - unique), duplicated, max(0, unique - want))


# ---------------------------------------------------------------------------------------------------------------------
# One scenario
# ---------------------------------------------------------------------------------------------------------------------


def run_scenario(
    scenario: Scenario,
    workdir: Path,
    command: Optional[List[str]] = None,
    rediscover: bool = False,
) -> ScenarioResult:
    """Start a fresh sandbox, install the scenario's faults, run a full read, compare with the sandbox.

    `command` runs the read with another launcher of the connector (default: the installed
    executable); `rediscover` runs `discover` against this sandbox first instead of reusing the process's catalog."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    server = SandboxServer(SandboxConfig(builds=scenario.builds)).start()
    try:
        discover = fresh_catalog if rediscover else discovered_catalog
        catalog = discover(server.base_url, workdir)
        configured = configured_catalog(catalog)
        config_file, catalog_file = workdir / "config.json", workdir / "catalog.json"
        config_file.write_text(
            json.dumps(sandbox_config(server.base_url, scenario.api_key, **dict(scenario.config_overrides)), indent=2)
        )
        catalog_file.write_text(json.dumps(configured, indent=2))

        extra_env: Optional[Dict[str, str]] = None
        if scenario.short_read_timeout is not None and command is None:
            command, extra_env = short_timeout_command(workdir, scenario.short_read_timeout)

        server.set_faults(scenario.rules())
        server.reset_stats()
        read_day = datetime.now(timezone.utc).date()
        run = run_connector(
            ["read", "--config", str(config_file), "--catalog", str(catalog_file)],
            workdir,
            "read",
            timeout=scenario.timeout,
            command=command,
            extra_env=extra_env,
        )
        stats = server.stats()
        counts = server.expected()
        deleted = deleted_build_ids(server)

        # records by stream
        pks = {s["stream"]["name"]: s["primary_key"] for s in configured["streams"]}
        keys: Dict[str, List[Any]] = {name: [] for name in pks}
        for message in run.of_type("RECORD"):
            record = message["record"]
            keys.setdefault(record["stream"], []).append(_primary_key(record["data"], pks.get(record["stream"], [])))

        build_ids = set(server.data.build_ids())
        exact: Dict[str, Set[Any]] = {
            "builds": build_ids,
            "build_details": build_ids - set(deleted),
            "analytics_reports": expected_analytics_keys(server, read_day),
        }
        streams: Dict[str, StreamResult] = {}
        for name in pks:
            if scenario.not_delivered >= ALL_STREAMS_FAIL or name in scenario.not_delivered:
                want: Any = set() if name in exact else 0
            elif name in exact:
                want = exact[name]
            else:
                want = expected_records(counts, name) or 0
            streams[name] = compare_stream(want, keys.get(name, []))

        errors = [
            {
                "failure_type": e.get("failure_type"),
                "message": e.get("message"),
                "stream": (e.get("stream_descriptor") or {}).get("name"),
            }
            for e in run.error_traces()
        ]
        if run.exit_code is None:
            outcome, message = "timeout", f"killed after {scenario.timeout:g} s"
        elif errors:
            outcome, message = str(errors[0]["failure_type"] or "failure"), errors[0]["message"]
        elif run.exit_code != 0:
            outcome, message = "crash", run.stderr.decode(errors="replace").strip()[-500:]
        else:
            outcome, message = "success", None
        logs = [(m["log"]["level"], m["log"]["message"]) for m in run.of_type("LOG")]
        return ScenarioResult(
            scenario=scenario,
            streams=streams,
            outcome=outcome,
            message=message,
            errors=errors,
            logs=logs,
            exit_code=run.exit_code,
            seconds=run.seconds,
            requests=stats["requests"],
            faults_fired=sum(stats["faults_fired"].values()),
            by_status=stats["by_status"],
            pagination_errors=stats["pagination_errors"],
            deleted_build_ids=deleted,
            workdir=workdir,
        )
    finally:
        server.clear_faults()
        server.stop()


# ---------------------------------------------------------------------------------------------------------------------
# What a correct connector does
# ---------------------------------------------------------------------------------------------------------------------


def evaluate(result: ScenarioResult) -> List[str]:
    """The differences between this read and what a correct connector does under the scenario."""
    s = result.scenario
    problems: List[str] = []
    if result.outcome != s.outcome:
        problems.append(f"outcome {result.outcome_text()!r}, expected {s.outcome}")
    elif s.outcome != "success":
        text = (result.message or "").lower()
        for part in s.message_contains:
            if part.lower() not in text:
                problems.append(f"the error message does not say {part!r}: {result.message!r}")
        for part in s.message_excludes:
            if part.lower() in text:
                problems.append(f"the error message says {part!r}: {result.message!r}")
    if result.missing:
        problems.append(f"{result.missing} records missing {result.streams_with('missing')}")
    if result.duplicated:
        problems.append(f"{result.duplicated} records duplicated {result.streams_with('duplicated')}")
    if result.unexpected:
        problems.append(f"{result.unexpected} unexpected records {result.streams_with('unexpected')}")
    if result.pagination_errors:
        problems.append(f"{result.pagination_errors} pagination errors")
    if result.faults_fired < s.min_faults_fired:
        problems.append(f"only {result.faults_fired} faults fired (the scenario did not test anything)")
    for where, pattern, count in s.skip_lines:
        lines = result.log_lines(where, pattern)
        if len(lines) != count:
            problems.append(
                f"{len(lines)} log lines match {where!r} and {pattern!r}, expected {count}"
                + (f" (first: {lines[0]!r})" if lines else "")
            )
    if s.per_deleted_build_line:
        if not result.deleted_build_ids:
            problems.append("no build was deleted")
        for stream in ("build_details", "build_steps"):
            wrong = {}
            for build_id in result.deleted_build_ids:
                n = len(result.log_lines(re.escape(build_id), re.escape(f"'{stream}'")))
                if n != 1:
                    wrong[build_id] = n
            if wrong:
                problems.append(
                    f"{len(wrong)} of {len(result.deleted_build_ids)} deleted builds do not have "
                    f"exactly one log line in {stream}: {dict(list(wrong.items())[:3])}"
                )
    return problems


def slow(result: ScenarioResult) -> Optional[str]:
    """Whether the read took longer than the scenario's budget: reported in the table, not a failure of the data."""
    s = result.scenario
    if result.seconds > s.max_seconds:
        return f"took {result.seconds:.0f} s (budget {s.max_seconds:.0f} s)"
    return None


def results_table(results: Sequence[ScenarioResult], labels: Sequence[str]) -> List[str]:
    """One line per read (`labels`: what each line is, e.g. its fault or its sync), then one per problem or slow read:
    what scripts/fault_table.py and scripts/soak.py print."""
    width = max([len(label) for label in labels] + [8])
    header = (
        f"{'read':<{width}} {'expected':>8} {'emitted':>8} {'missing':>7} {'dupl.':>5} {'unexp.':>6} {'seconds':>7} "
        f"{'requests':>8} {'faults':>6}  {'verdict':<7} outcome"
    )
    lines = [header, "-" * len(header)]
    for label, r in zip(labels, results, strict=True):
        outcome = r.outcome_text()
        lines.append(
            f"{label:<{width}} {r.expected:>8} {r.emitted:>8} {r.missing:>7} {r.duplicated:>5} {r.unexpected:>6} "
            f"{r.seconds:>7.1f} {r.requests:>8} {r.faults_fired:>6}  {'DEFECT' if r.problems() else 'OK':<7} "
            f"{outcome if len(outcome) <= 70 else outcome[:67] + '...'}"
        )
    lines.append("-" * len(header))
    for label, r in zip(labels, results, strict=True):
        lines += [f"{label.strip()}: {problem}" for problem in r.problems()]
        if slow(r):
            lines.append(f"{label.strip()}: {slow(r)} (records complete; the waits are what the faults ask for)")
    return lines


def describe(result: ScenarioResult) -> str:
    """A multi-line account of one read, for assertion messages."""
    lines = [
        f"scenario {result.scenario.name}: {result.scenario.fault}",
        f"  outcome: {result.outcome_text()}  (exit {result.exit_code}, {result.seconds:.1f} s)",
        f"  records: expected {result.expected}, emitted {result.emitted}, missing {result.missing}, "
        f"duplicated {result.duplicated}, unexpected {result.unexpected}",
        f"  requests {result.requests}, faults fired {result.faults_fired}, by status {result.by_status}",
        f"  work dir: {result.workdir}",
    ]
    for name, st in result.streams.items():
        if st.missing or st.duplicated or st.unexpected:
            lines.append(
                f"  {name}: expected {st.expected}, emitted {st.emitted}, unique {st.unique}, missing "
                f"{st.missing}, duplicated {st.duplicated}, unexpected {st.unexpected}"
                + (f", e.g. missing {st.missing_keys}" if st.missing_keys else "")
            )
    for error in result.errors[:5]:
        lines.append(f"  error [{error['failure_type']}] ({error['stream']}): {error['message']}")
    return "\n".join(lines)
