"""Hostile and broken answers: the connector, run as Airbyte runs it (the installed `source-codefresh`, config and
catalog as files), against a sandbox behind a hostile proxy (codefresh_sandbox/hostile.py) that answers some requests
itself, badly, or with a config a user could paste. Each case must end in one sentence that names the stream, in
bounded time and memory, with no secret in the output. The next hostile answer is one more entry of CASES.

Wall time and memory are not asserted (machines differ): `scripts/hostile_table.py` prints them for every case. The
connector runs under a 4 GB address-space limit, so a case that would balloon fails here instead of taking the
machine down, and under a timeout, so one that would loop ends.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pytest

from codefresh_sandbox import SANDBOX_API_KEY, SMALL_ACCOUNT, SandboxConfig, SandboxServer
from codefresh_sandbox.hostile import CASES, LOG_SIGNATURE, Case, HostileProxy, many_steps, serving_log
from codefresh_sandbox.scenarios import ConnectorRun, manifest_copy_command, run_connector

# Stream names, in one place.
PIPELINES, PROJECTS, STEP_TYPES, RUNTIMES = "pipelines", "projects", "step_types", "runtime_environments"
BUILDS, BUILD_LOGS, AGENTS, ENVIRONMENTS = "builds", "build_logs", "agents", "environments"
CONTEXTS, TRIGGERS, TRIGGER_EVENTS, TEAMS = "contexts", "triggers", "trigger_events", "teams"
CUSTOM = "regs"

ONE_BUILD = dict(SMALL_ACCOUNT, builds=1, unfinished_fraction=0.0)
LOGS = {"sync_build_logs": True}
BOUNDED = [
    sys.executable,
    "-c",
    "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
    "from source_codefresh.run import run; run()",
]
ZERO_WIDTH_KEY = SANDBOX_API_KEY[:30] + "\u200b" + SANDBOX_API_KEY[30:]


def custom(params: Optional[Dict[str, Any]] = None, **entry: Any) -> Dict[str, Any]:
    registries = {"name": CUSTOM, "path": "registries", "primary_key": "_id", "pagination": "none"}
    return {"custom_streams": [{**registries, "params": params or {}, **entry}]}


@dataclass(frozen=True)
class Hostile:
    """One case: the proxy's answer (a name of codefresh_sandbox.hostile.CASES, a Case, or none: the config is the
    hostile part), what is read, and what must come out."""

    name: str
    answer: Optional[Any] = None
    streams: Tuple[str, ...] = ()  # none: `check`
    config: Dict[str, Any] = field(default_factory=dict)
    account: Dict[str, Any] = field(default_factory=lambda: dict(SMALL_ACCOUNT))
    says: Tuple[str, ...] = ()  # in the first error (read) or the FAILED status (check)
    failure_type: str = ""
    succeeds: bool = False
    logged: str = ""  # a line the read logs
    records: Optional[int] = None
    manifest_changes: Tuple[Tuple[str, str], ...] = ()


# The API answers' deadline and the log storage's cap, lowered in a copy of the manifest: the defaults (5 minutes, 1 GB)
# are reached the same way, only later.
API_DEADLINE_3S = ((r"^(      answer_seconds: )300$", r"\g<1>3"),)
STORAGE_CAP_16MB = ((r"^(      max_answer_mb: )1024$", r"\g<1>16"),)
FEW_STEPS = Case(
    "log_many_steps",
    "an archive of 20,000 small steps",
    r"^/api/progress/|^/logs/",
    serving_log(lambda: many_steps(20_000)),
)

CASES_HERE: List[Hostile] = [
    # --- a size cap and a deadline on every answer
    Hostile(
        "api_gzip_bomb", "api_gzip_bomb", (PIPELINES,), says=("Stream 'pipelines'", "passed 64 MB once decompressed")
    ),
    Hostile("api_endless_body", "api_endless_body", (PIPELINES,), says=("passed 64 MB once decompressed",)),
    Hostile(
        "api_drip",
        "api_drip",
        (PIPELINES,),
        says=("Stream 'pipelines'", "was not complete after 3 seconds"),
        failure_type="transient_error",
        manifest_changes=API_DEADLINE_3S,
    ),
    Hostile(
        "log_endless",
        "log_endless",
        (BUILD_LOGS,),
        LOGS,
        ONE_BUILD,
        succeeds=True,
        logged="Skipping the rest of the log of build",
        manifest_changes=STORAGE_CAP_16MB,
    ),
    Hostile("log_many_steps", FEW_STEPS, (BUILD_LOGS,), LOGS, ONE_BUILD, succeeds=True, records=20_000),
    Hostile(
        "log_fat_step",
        "log_fat_step",
        (BUILD_LOGS,),
        LOGS,
        ONE_BUILD,
        succeeds=True,
        records=1,
        logged="are left out of its record",
    ),
    Hostile(
        "log_deep_nesting",
        "log_deep_nesting",
        (BUILD_LOGS,),
        LOGS,
        ONE_BUILD,
        succeeds=True,
        logged="nested more than 64 levels deep",
    ),
    # --- no page repeats a page of its listing
    Hostile(
        "builds_alternating_pages", "builds_alternating_pages", (BUILDS,), says=("page 3 of", "as page 1", "'builds'")
    ),
    Hostile(
        "offset_ignored",
        "offset_ignored",
        (PIPELINES, PROJECTS, STEP_TYPES, RUNTIMES),
        account=dict(SMALL_ACCOUNT, pipelines=250, projects=130, step_types=230, runtime_environments=120),
        says=("page 2 of", "as page 1", "ignores the paging parameters"),
    ),
    # --- one sentence for what nothing else explained
    Hostile("non_object_items", "non_object_items", (AGENTS,), says=("records that are not objects", "'agents'")),
    Hostile(
        "progress_is_list", "progress_is_list", (BUILD_LOGS,), LOGS, ONE_BUILD, says=("with a list, not the progress",)
    ),
    Hostile(
        "environment_without_metadata",
        "environment_without_metadata",
        (ENVIRONMENTS,),
        says=("Stream 'environments' stopped on an answer it could not read (UndefinedError",),
    ),
    Hostile("base_url_broken_ipv6", config={"base_url": "http://[::1/api"}, says=("base_url is not a URL",)),
    Hostile("base_url_two_ports", config={"base_url": "http://127.0.0.1:1:2/api"}, says=("base_url is not a URL",)),
    Hostile("num_workers_negative", config={"num_workers": -3}, says=("-3",)),
    Hostile("num_workers_fraction", config={"num_workers": 2.5}, says=("2.5",)),
    # --- one URL policy: https from an acceptable address, redirects too
    Hostile(
        "log_url_private",
        "log_url_private",
        (BUILD_LOGS,),
        LOGS,
        ONE_BUILD,
        says=("never sent the request to https://10.255.255.1", "private network address"),
        failure_type="config_error",
    ),
    Hostile(
        "log_url_link_local",
        "log_url_link_local",
        (BUILD_LOGS,),
        LOGS,
        ONE_BUILD,
        says=("169.254.169.254", "link-local"),
        failure_type="config_error",
    ),
    Hostile("log_url_plain_http", "log_url_plain_http", (BUILD_LOGS,), LOGS, ONE_BUILD, says=("does not use https",)),
    Hostile(
        "log_redirect_private",
        "log_redirect_private",
        (BUILD_LOGS,),
        LOGS,
        ONE_BUILD,
        says=("never followed the redirect", "to http://10.255.255.1/logs/archive.json"),
    ),
    # --- silent wrongs
    Hostile(
        "custom_primary_key_absent",
        streams=(CUSTOM,),
        config=custom(primary_key="nope"),
        says=("Custom stream 'regs' read a record without 'nope'",),
        failure_type="config_error",
    ),
    Hostile("custom_decrypt_brackets", config=custom({"decrypt[]": "true"}), says=("may not set 'decrypt[]'",)),
    Hostile(
        "custom_decrypt_variables_index",
        config=custom({"decryptVariables[0]": "true"}),
        says=("may not set 'decryptVariables[0]'",),
    ),
    Hostile("custom_limit_brackets", config=custom({"limit[]": "5"}), says=("may not set 'limit[]'",)),
    Hostile(
        "custom_params_414",
        streams=(CUSTOM,),
        config=custom({"q": "x" * 70_000}),
        says=("HTTP 414", "params of custom stream 'regs'"),
        failure_type="config_error",
    ),
]


def _catalog(streams: Sequence[str]) -> Dict[str, Any]:
    return {
        "streams": [
            {
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite",
            }
            for name in streams
        ]
    }


def _run(
    case: Hostile, workdir: Path, debug: bool = False, env: Optional[Dict[str, str]] = None
) -> Tuple[ConnectorRun, SandboxServer]:
    with SandboxServer(SandboxConfig(**case.account)) as sandbox:
        proxy = HostileProxy(sandbox, case.answer).start() if case.answer else None
        try:
            config = {"api_key": SANDBOX_API_KEY, "base_url": (proxy or sandbox).base_url, **case.config}
            (workdir / "config.json").write_text(json.dumps(config))
            args = ["check", "--config", "config.json"]
            if case.streams:
                (workdir / "catalog.json").write_text(json.dumps(_catalog(case.streams)))
                args = ["read", "--config", "config.json", "--catalog", "catalog.json"]
            command, manifest_env = BOUNDED, {}
            if case.manifest_changes:
                command, manifest_env = manifest_copy_command(workdir, case.manifest_changes)
            run = run_connector(
                args + (["--debug"] if debug else []),
                workdir,
                case.name,
                timeout=120,
                command=command,
                extra_env={**manifest_env, **(env or {})},
            )
            return run, sandbox
        finally:
            if proxy:
                proxy.stop()


def _one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text.replace("e.g. ", "").replace("i.e. ", "") and "\n" not in text


@pytest.mark.parametrize("case", CASES_HERE, ids=[case.name for case in CASES_HERE])
def test_a_hostile_answer_ends_in_one_sentence(case: Hostile, tmp_path):
    run, _ = _run(case, tmp_path)

    assert run.exit_code is not None, f"still running after {run.seconds:.0f} s: {run.stderr[-1500:]!r}"
    records = run.of_type("RECORD")
    if case.records is not None:
        assert len(records) == case.records
    logs = [m["log"]["message"] for m in run.of_type("LOG")]
    if case.logged:
        assert [line for line in logs if case.logged in line], logs[-5:]
    if not case.streams:  # check: a FAILED status saying what is wrong, always
        status = run.connection_status()
        assert status is not None and status["status"] == "FAILED", run.stdout[-1500:]
        assert all(part in status["message"] for part in case.says), status["message"]
        # (a value the spec's JSON schema refuses gets the CDK's own words, which end without a full stop)
        assert "\n" not in status["message"] and ". " not in status["message"], status["message"]
        return
    errors = run.error_traces()
    if case.succeeds:
        assert run.exit_code == 0 and not errors, errors[:2]
        return
    assert run.exit_code != 0 and errors, run.stderr[-1500:]
    first = errors[0]["message"]
    assert all(part in first for part in case.says), first
    assert _one_sentence(first), first
    if case.failure_type:
        assert errors[0]["failure_type"] == case.failure_type
    assert errors[-1]["message"].startswith("These streams did not sync: ")
    for stream in case.streams:  # every stream read was stopped by a sentence of its own
        assert any(f"'{stream}'" in error["message"] for error in errors[:-1]), (stream, [e["message"] for e in errors])


def test_nothing_secret_is_in_the_output_of_a_debug_read(tmp_path):
    """`--debug` of the streams whose answers hold what the records leave out: context credentials, registry
    passwords, webhook secrets, and signed build-log URLs."""
    case = Hostile(
        "debug_read",
        streams=(CONTEXTS, PIPELINES, TRIGGERS, TRIGGER_EVENTS, BUILD_LOGS, CUSTOM),
        config={**LOGS, **custom()},
        account=dict(SMALL_ACCOUNT, builds=3, unfinished_fraction=0.0),
    )
    run, sandbox = _run(case, tmp_path, debug=True)
    assert run.exit_code == 0 and run.of_type("RECORD"), run.stderr[-1500:]
    assert any(m.get("type") == "DEBUG" for m in run.messages), "the read logs at debug level"
    output = run.stdout + run.stderr
    assert b"Signature=" not in output  # the signed log URLs are logged without their query
    secrets = _credentials(sandbox)
    assert len(secrets) > 20
    for secret in secrets:
        assert secret.encode() not in output, secret


def _credentials(sandbox: SandboxServer) -> List[str]:
    names = {"secret", "password", "token", "secretAccessKey", "clientSecret", "NPM_TOKEN", "HELMREPO_PASSWORD"}
    found: List[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, name)
        elif isinstance(node, list):
            for value in node:
                walk(value, key)
        elif key in names and isinstance(node, str) and len(node) >= 12 and "*" not in node:
            found.append(node)

    for kind in ("contexts", "registries", "pipelines", "hermes_triggers", "hermes_events"):
        collection = getattr(sandbox.data, kind)
        walk(getattr(collection, "records", collection))
    return found


@pytest.mark.parametrize("command", ["check", "read"])
def test_a_key_with_an_invisible_character_is_refused_and_never_printed(command, tmp_path):
    case = Hostile("zero_width_key", streams=(TEAMS,) if command == "read" else (), config={"api_key": ZERO_WIDTH_KEY})
    run, _ = _run(case, tmp_path)

    message = (run.connection_status() or {}).get("message") or run.error_traces()[0]["message"]
    assert message.startswith("api_key has an invisible or non-ASCII character (character 31)")
    output = run.stdout + run.stderr
    for form in (SANDBOX_API_KEY[30:], SANDBOX_API_KEY.split(".", 1)[1][-12:]):
        assert form.encode() not in output


def test_outside_the_test_harness_the_sandbox_on_plain_http_is_refused(tmp_path):
    case = Hostile("production", says=("does not use https",))
    run, _ = _run(case, tmp_path, env={"SOURCE_CODEFRESH_TEST_LOOPBACK": "0"})

    status = run.connection_status()
    assert status is not None and status["status"] == "FAILED"
    assert (
        "does not use https" in status["message"] and "connector does not send the API key there" in status["message"]
    )


def test_every_proxy_case_has_a_test_here():
    assert set(CASES) <= {case.name for case in CASES_HERE}
    assert LOG_SIGNATURE  # the proxy's archive URLs carry it; the debug read above looks for any signature
