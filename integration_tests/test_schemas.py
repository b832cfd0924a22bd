"""Every stream's records, in every sandbox mode that changes what records look like, match the stream's
discovered schema; and the discovered schemas are fit for destinations.

For each mode in `MODES`: start a small sandbox with the mode's switches, run `source-codefresh discover` and one
`read` of every discovered stream (full refresh) as subprocesses, and validate each record against its stream's
schema from that discover (integration_tests/schema_check.py). A failure names the mode, the stream, the record,
the field (JSON path), the value and the rule. Every stream must emit records in every mode (except the streams the
mode skips on purpose, which must emit none), so no schema passes for want of records, and a mode's `shows` names
records that prove the mode produced the shape it exists for.

The CDK standard suite (test_standard_suite.py, `test_strictness_level: high`) also validates records against the
schemas, but only for its `basic_read` configs: the default sandbox with the full and the limited key. It never
reads pipeline_runs (a config option), nor the sandbox's other switches (mostly unfinished builds, month analytics
rows, deleted builds), nor the real shapes the sandbox will gain; this test does, one read per mode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Tuple

import pytest

from codefresh_sandbox import (
    SANDBOX_API_KEY,
    SANDBOX_LIMITED_API_KEY,
    SMALL_ACCOUNT,
    SandboxConfig,
    SandboxServer,
    gitops_data,
)
from codefresh_sandbox.scenarios import configured_catalog, discover, run_connector
from integration_tests.schema_check import RecordChecker, schema_problems

Records = Dict[str, List[Dict[str, Any]]]


@dataclass(frozen=True)
class Mode:
    """One sandbox set-up whose records are validated: a sandbox (SMALL_ACCOUNT plus `sandbox`), fault rules, the
    API key and connector config options. `skipped`: streams the mode makes emit nothing (they must emit nothing).
    `shows`: (what, check) pairs; each check gets every stream's records and must find the shape the mode is for."""

    name: str
    sandbox: Mapping[str, Any] = field(default_factory=dict)
    faults: Tuple[Mapping[str, Any], ...] = ()
    api_key: str = SANDBOX_API_KEY
    config: Mapping[str, Any] = field(default_factory=dict)
    skipped: FrozenSet[str] = frozenset()
    shows: Tuple[Tuple[str, Callable[[Records], bool]], ...] = ()


def _any(stream: str, check: Callable[[Dict[str, Any]], bool]) -> Callable[[Records], bool]:
    return lambda records: any(check(record) for record in records.get(stream, []))


# ---------------------------------------------------------------------------------------------------------------------
# THE MODES. To validate a new shape, append a Mode: the SandboxConfig fields of your switch in `sandbox` (or fault
# rules in `faults`, or connector options in `config`), and in `shows` a check that the records have that shape (so
# the mode cannot pass vacuously if the switch stops working). One sandbox and one read per mode: keep sizes small.
# ---------------------------------------------------------------------------------------------------------------------
MODES: List[Mode] = [
    Mode(
        # The real shapes are the sandbox's default (docs/api-notes.md 8.3, 8.11).
        "default",
        shows=(
            (
                "builds carrying both YAML texts and step names",
                _any(
                    "builds",
                    lambda r: (
                        len(r.get("finalWorkflowYaml") or "") > 2000
                        and all(isinstance(s, str) for s in r.get("steps") or [])
                        and isinstance(r.get("delayed"), int)
                    ),
                ),
            ),
            (
                "a system event of kind error",
                _any("build_details", lambda r: any(e.get("kind") == "error" for e in r.get("systemEvents") or [])),
            ),
            ("an argo environment", _any("environments", lambda r: (r.get("spec") or {}).get("type") == "argo")),
            (
                "account users as real answers show them",
                _any(
                    "accounts",
                    lambda r: (
                        r.get("status") == "new"
                        and all(isinstance(e, str) for e in (r.get("user_data") or {}).get("emails") or [])
                    ),
                ),
            ),
            # Build-report rows without key, counts as strings; steps that end `failure`; the pseudo-step without
            # type; Hermes links with empty event-data (docs/api-notes.md).
            (
                "a build-report row with its counts as strings",
                _any("analytics_reports", lambda r: r.get("key") == "-" and isinstance(r.get("totalBuilds"), str)),
            ),
            ("a step that failed", _any("build_steps", lambda r: r.get("status") == "failure")),
            (
                "Initializing Process without type",
                _any("build_steps", lambda r: r.get("name") == "Initializing Process" and "type" not in r),
            ),
            (
                "a trigger with empty event-data",
                _any("triggers", lambda r: (r.get("event-data") or {}).get("uri") == ""),
            ),
            # GitOps: a deployment linked to a classic build, a sync still running, both kinds of promotions, a
            # workflow step that failed, a runtime's health error.
            (
                "a release linked to a classic build",
                _any("gitops_releases", lambda r: bool((r.get("application") or {}).get("builds"))),
            ),
            (
                "a release still syncing",
                _any("gitops_releases", lambda r: r["application"]["status"]["syncFinishedAt"] is None),
            ),
            ("a promotion", _any("gitops_promotions", lambda r: r.get("__typename") == "Promotion")),
            ("a product release", _any("gitops_promotions", lambda r: r.get("__typename") == "ProductRelease")),
            ("a workflow node that failed", _any("gitops_workflow_nodes", lambda r: r.get("phase") == "Failed")),
        ),
    ),
    Mode(
        # A GitOps server before v1.3808.0: promotions come from productReleases, one product at a time.
        "gitops_older_server",
        sandbox={"gitops_schema": "before_promotions"},
        config={"gitops_products": list(gitops_data.PRODUCTS)},
        shows=(
            (
                "only product releases, with their steps",
                lambda rs: (
                    bool(rs["gitops_promotions"])
                    and all(r.get("__typename") == "ProductRelease" and r.get("steps") for r in rs["gitops_promotions"])
                ),
            ),
        ),
    ),
    Mode(
        # Builds in every unfinished status: started/finished null, pendingApprovals, running steps.
        "unfinished_builds",
        sandbox={"unfinished_fraction": 0.5},
        shows=(
            ("a build waiting for approval", _any("builds", lambda r: bool(r.get("pendingApprovals")))),
            (
                "a pending build not started",
                _any("builds", lambda r: r["status"] == "pending" and r.get("started") is None),
            ),
            ("a step still running", _any("build_steps", lambda r: r.get("finishTimestamp") is None)),
        ),
    ),
    Mode(
        # Builds listed whose details and steps answer 404: the per-build streams skip them.
        "deleted_builds",
        faults=({"kind": "deleted_builds", "every": 3},),
        shows=(("fewer build_details than builds", lambda rs: 0 < len(rs["build_details"]) < len(rs["builds"])),),
    ),
    Mode(
        # A key without the audit and account-admin scopes: those streams are skipped on 403.
        "limited_key",
        api_key=SANDBOX_LIMITED_API_KEY,
        skipped=frozenset({"audit", "accounts"}),
    ),
    Mode(
        # The one write: the pipeline_runs stream exists only with this option; runs end in each terminal status.
        "pipeline_runs",
        config={
            "pipeline_runs_poll_seconds": 1,
            "pipeline_runs": [
                {
                    "pipeline": "demo/hello-world",
                    "branch": "main",
                    "variables": {"REPORT_DAYS": "7"},
                    "options": {"noCache": True},
                },
                {"pipeline": "demo/failing-build"},
                {"pipeline": "demo/terminated-build"},
                {"pipeline": "demo/denied-approval"},
            ],
        },
        shows=(
            (
                "a run per terminal status",
                lambda rs: (
                    {r.get("status") for r in rs.get("pipeline_runs", [])}
                    == {"success", "error", "terminated", "denied"}
                ),
            ),
            (
                "requested variable names",
                _any("pipeline_runs", lambda r: r.get("requested_variable_names") == ["REPORT_DAYS"]),
            ),
        ),
    ),
    Mode(
        # Build logs on: archives whose `steps` and `logs` are lists or objects (mixed across builds), a step log
        # over the limit (cut), logs skipped for an expired URL and a missing archive.
        "build_logs",
        sandbox={
            "build_log_shape": "mixed",
            "build_log_huge_every": 8,
            "build_log_huge_mb": 0.2,
            "build_log_expired_every": 9,
            "build_log_missing_every": 11,
        },
        config={"sync_build_logs": True, "build_logs_max_kb_per_step": 16},
        shows=(
            ("a step log cut at the limit", _any("build_logs", lambda r: r.get("truncated") is True)),
            ("a step log with colour codes", _any("build_logs", lambda r: "\x1b[" in (r.get("log") or ""))),
        ),
    ),
    Mode(
        # Month buckets: adds activeCommitters (month only), whose rows count committers.
        "analytics_by_month",
        config={"analytics_granularity": "month"},
        shows=(
            (
                "activeCommitters rows",
                _any("analytics_reports", lambda r: r.get("reportName") == "activeCommitters"),
            ),
        ),
    ),
]


@dataclass
class ModeRead:
    schemas: Dict[str, Dict[str, Any]]  # stream -> discovered json_schema
    primary_keys: Dict[str, List[List[str]]]
    records: Records
    errors: List[str]  # error TRACE messages and a non-zero exit, if any


def read_mode(mode: Mode, workdir: Path) -> ModeRead:
    """Discover and read every stream once against a fresh sandbox set up as `mode` says."""
    server = SandboxServer(SandboxConfig(**{**SMALL_ACCOUNT, **mode.sandbox})).start()
    try:
        if mode.faults:
            server.set_faults([dict(rule) for rule in mode.faults])
        config = {"api_key": mode.api_key, "base_url": server.base_url, **mode.config}
        config_file = workdir / "config.json"
        config_file.write_text(json.dumps(config))
        catalog = discover(config_file, workdir)
        streams = catalog["streams"]
        catalog_file = workdir / "catalog.json"
        catalog_file.write_text(json.dumps(configured_catalog(catalog)))
        run = run_connector(
            ["read", "--config", str(config_file), "--catalog", str(catalog_file)], workdir, "read", timeout=600
        )
    finally:
        server.stop()
    records: Records = {stream["name"]: [] for stream in streams}
    for message in run.of_type("RECORD"):
        records.setdefault(message["record"]["stream"], []).append(message["record"]["data"])
    errors = [str(error.get("message")) for error in run.error_traces()]
    if run.exit_code != 0:
        errors.append(f"the read exited with {run.exit_code} (stderr in {workdir / 'read.stderr'})")
    return ModeRead(
        schemas={stream["name"]: stream["json_schema"] for stream in streams},
        primary_keys={stream["name"]: stream.get("source_defined_primary_key") or [] for stream in streams},
        records=records,
        errors=errors,
    )


def mode_failures(mode: Mode, result: ModeRead) -> List[str]:
    failures = [f"the read failed: {error}" for error in result.errors]
    for stream, schema in result.schemas.items():
        records = result.records.get(stream, [])
        if stream in mode.skipped:
            if records:
                failures.append(f"stream '{stream}': {len(records)} records, but this mode skips it")
            continue
        if not records:
            failures.append(f"stream '{stream}': no records, so its schema is not checked in this mode")
            continue
        checker = RecordChecker(stream, schema, result.primary_keys[stream])
        for record in records:
            checker.check(record)
        problem = checker.failures()
        if problem:
            failures.append(problem)
    failures += [f"stream '{s}': records but no discovered schema" for s in result.records if s not in result.schemas]
    failures += [f"the mode does not show {what}" for what, check in mode.shows if not check(result.records)]
    return failures


@pytest.mark.parametrize("mode", MODES, ids=[mode.name for mode in MODES])
def test_every_record_matches_its_discovered_schema(mode: Mode, tmp_path: Path) -> None:
    failures = mode_failures(mode, read_mode(mode, tmp_path))
    if failures:
        pytest.fail(f"mode '{mode.name}':\n" + "\n".join(failures), pytrace=False)


def test_discovered_schemas_are_resolved_nullable_open_and_described(tmp_path: Path) -> None:
    # pipeline_runs and build logs on: the conditional streams are discovered too. discover sends no request.
    config = {
        "api_key": SANDBOX_API_KEY,
        "base_url": "http://127.0.0.1:9/api",
        "pipeline_runs": [{"pipeline": "a/b"}],
        "sync_build_logs": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    run = run_connector(["discover", "--config", str(tmp_path / "config.json")], tmp_path, "discover", timeout=120)
    streams = run.of_type("CATALOG")[0]["catalog"]["streams"]
    assert {"pipeline_runs", "build_logs"} <= {stream["name"] for stream in streams}
    problems = [problem for stream in streams for problem in schema_problems(stream["name"], stream["json_schema"])]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_a_record_off_its_schema_is_reported_with_stream_field_and_value() -> None:
    schema = {
        "type": "object",
        "additionalProperties": True,
        "properties": {
            "id": {"type": ["string", "null"]},
            "created": {"type": ["string", "null"], "format": "date-time"},
            "steps": {
                "type": ["array", "null"],
                "items": {
                    "type": ["object", "null"],
                    "properties": {"creationTimeStamp": {"type": ["integer", "null"]}},
                },
            },
        },
    }
    checker = RecordChecker("builds", schema, [["id"]])
    checker.check({"id": "b1", "created": "2026-10-05T12:34:56.789Z", "steps": [{"creationTimeStamp": 1790000000}]})
    assert checker.failures() is None
    checker.check({"id": "b2", "created": "2026-10-05 noon", "steps": [{"creationTimeStamp": 1.5}]})
    checker.check({"id": "b3", "created": "2026-10-05T12:34:56", "steps": [{"creationTimeStamp": True}]})
    assert checker.failures() == (
        "stream 'builds': 2 of 3 records do not match the discovered schema\n"
        '    record #1 (id="b2"): $.created = "2026-10-05 noon": not a date-time (ISO 8601 with a UTC offset)\n'
        '    record #1 (id="b2"): $.steps[0].creationTimeStamp = 1.5: expected integer or null, got number'
    ), "b3 breaks the same two rules: each rule is shown once, with its first record"


def test_a_schema_unfit_for_destinations_is_reported_field_by_field() -> None:
    schema = {
        "type": "object",
        "additionalProperties": True,
        "properties": {
            "id": {"type": "string", "description": "Id."},
            "spec": {
                "type": ["object", "null"],
                "description": "Spec.",
                "properties": {"name": {"type": ["string", "null"]}},
            },
            "owner": {
                "$ref": "#/schemas/parts/user",
                "type": ["object", "null"],
                "additionalProperties": True,
                "description": "Owner.",
            },
            "tags": {
                "type": ["array", "null"],
                "description": "Tags.",
                "items": {"allOf": [], "type": ["string", "null"]},
            },
        },
    }
    assert schema_problems("pipelines", schema) == [
        "stream 'pipelines' $.id: type ['string'] does not allow null",
        "stream 'pipelines' $.spec: an object without additionalProperties: true",
        "stream 'pipelines' $.spec.name: no description",
        "stream 'pipelines' $.owner: uses `$ref`",
        "stream 'pipelines' $.tags[]: uses `allOf`",
    ]
