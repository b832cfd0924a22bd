"""Hostile and broken answers: the connector, run as Airbyte runs it (the installed `source-codefresh`, config and
catalog as files), against a sandbox behind a hostile proxy (codefresh_sandbox/hostile.py) that answers some requests
itself, badly, or with a config a user could paste. Each case must end in one sentence that names the stream, in
bounded time and memory, with no secret in the output. The next hostile answer is one more entry of CASES.

Wall time and memory are not asserted (machines differ): `scripts/hostile_table.py` prints them for every case. The
connector runs under a 4 GB address-space limit, so a case that would balloon fails here instead of taking the
machine down, and under a timeout, so one that would loop ends.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from codefresh_sandbox import SANDBOX_API_KEY, SandboxServer
from codefresh_sandbox.hostile import (
    BUILD_LOGS,
    CASES,
    RUNS,
    TEAMS,
    ZERO_WIDTH_KEY,
    Case,
    Run,
    many_steps,
    serving_log,
)
from codefresh_sandbox.scenarios import ConnectorRun, manifest_copy_command, run_connector

BOUNDED = [
    sys.executable,
    "-c",
    "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
    "from source_codefresh.run import run; run()",
]


@dataclass(frozen=True)
class Expected:
    """What must come out of a case of codefresh_sandbox.hostile.RUNS: in the first error of a read (or the FAILED
    status of a check) `says`, or a read that `succeeds`, with a line `logged` and `records` records."""

    says: Tuple[str, ...] = ()
    failure_type: str = ""
    succeeds: bool = False
    logged: str = ""
    records: Optional[int] = None
    manifest_changes: Tuple[Tuple[str, str], ...] = ()


# The API answers' deadline and the log storage's cap, lowered in a copy of the manifest: the defaults (5 minutes, 1 GB)
# are reached the same way, only later.
API_DEADLINE_3S = ((r"^(      answer_seconds: )300$", r"\g<1>3"),)
STORAGE_CAP_16MB = ((r"^(      max_answer_mb: )1024$", r"\g<1>16"),)
# 20,000 steps instead of the proxy's 600,000: the same reading, a smaller output (scripts/hostile_table.py measures
# the big one).
FEW_STEPS = Case(
    "log_many_steps", "20,000 small steps", r"^/api/progress/|^/logs/", serving_log(lambda: many_steps(20_000))
)
LOG_READ = "Skipping the rest of the log of build"

EXPECTED: Dict[str, Expected] = {
    # a size cap and a deadline on every answer
    "api_gzip_bomb": Expected(("Stream 'pipelines'", "passed 64 MB once decompressed"), "system_error"),
    "api_endless_body": Expected(("passed 64 MB once decompressed",)),
    "api_drip": Expected(
        ("Stream 'pipelines'", "was not complete after 3 seconds"), "transient_error", manifest_changes=API_DEADLINE_3S
    ),
    "log_endless": Expected(succeeds=True, logged=LOG_READ, manifest_changes=STORAGE_CAP_16MB),
    "log_many_steps": Expected(succeeds=True, records=20_000),
    "log_fat_step": Expected(succeeds=True, records=1, logged="are left out of its record"),
    "log_deep_nesting": Expected(succeeds=True, logged="nested more than 64 levels deep"),
    # no page repeats a page of its listing
    "builds_alternating_pages": Expected(("page 3 of", "as page 1", "'builds'")),
    "offset_ignored": Expected(("page 2 of", "as page 1", "ignores the paging parameters")),
    # one sentence for what nothing else explained
    "non_object_items": Expected(("records that are not objects", "'agents'")),
    "progress_is_list": Expected(("with a list, not the progress",)),
    "environment_without_metadata": Expected(
        ("Stream 'environments' stopped on an answer it could not read (UndefinedError",)
    ),
    "base_url_broken_ipv6": Expected(("base_url is not a URL",)),
    "base_url_two_ports": Expected(("base_url is not a URL",)),
    "num_workers_negative": Expected(("-3",)),
    "num_workers_fraction": Expected(("2.5",)),
    # one URL policy: https from an acceptable address, redirects too
    "log_url_private": Expected(("never sent the request to https://10.255.255.1", "private network"), "config_error"),
    "log_url_link_local": Expected(("169.254.169.254", "link-local"), "config_error"),
    "log_url_plain_http": Expected(("does not use https",)),
    "log_redirect_private": Expected(("never followed the redirect", "to http://10.255.255.1/logs/archive.json")),
    # silent wrongs
    "custom_primary_key_absent": Expected(("Custom stream 'regs' read a record without 'nope'",), "config_error"),
    "custom_decrypt_brackets": Expected(("may not set 'decrypt[]'",)),
    "custom_decrypt_variables_index": Expected(("may not set 'decryptVariables[0]'",)),
    "custom_limit_brackets": Expected(("may not set 'limit[]'",)),
    "custom_params_414": Expected(("HTTP 414", "params of custom stream 'regs'"), "config_error"),
}
# The cases asserted by a test of their own below.
OWN_TESTS = {"debug_secrets", "zero_width_key_read", "zero_width_key_check"}


def _run(
    case: Run, workdir: Path, manifest_changes: Tuple[Tuple[str, str], ...] = (), env: Optional[Dict[str, str]] = None
) -> Tuple[ConnectorRun, SandboxServer]:
    with case.serving() as (sandbox, base_url):
        command, manifest_env = BOUNDED, {}
        if manifest_changes:
            command, manifest_env = manifest_copy_command(workdir, manifest_changes)
        args = case.arguments(workdir, base_url)
        return run_connector(args, workdir, case.name, 120, command, {**manifest_env, **(env or {})}), sandbox


def _one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text.replace("e.g. ", "").replace("i.e. ", "") and "\n" not in text


@pytest.mark.parametrize("name", list(EXPECTED))
def test_a_hostile_answer_ends_in_one_sentence(name: str, tmp_path):
    case, expected = RUNS[name], EXPECTED[name]
    if name == "log_many_steps":
        case = replace(case, answer=FEW_STEPS)
    run, _ = _run(case, tmp_path, expected.manifest_changes)

    assert run.exit_code is not None, f"still running after {run.seconds:.0f} s: {run.stderr[-1500:]!r}"
    if expected.records is not None:
        assert len(run.of_type("RECORD")) == expected.records
    logs = [m["log"]["message"] for m in run.of_type("LOG")]
    if expected.logged:
        assert [line for line in logs if expected.logged in line], logs[-5:]
    if not case.streams:  # check: a FAILED status saying what is wrong, always
        status = run.connection_status()
        assert status is not None and status["status"] == "FAILED", run.stdout[-1500:]
        assert all(part in status["message"] for part in expected.says), status["message"]
        # (a value the spec's JSON schema refuses gets the CDK's own words, which end without a full stop)
        assert "\n" not in status["message"] and ". " not in status["message"], status["message"]
        return
    errors = run.error_traces()
    if expected.succeeds:
        assert run.exit_code == 0 and not errors, errors[:2]
        return
    assert run.exit_code != 0 and errors, run.stderr[-1500:]
    first = errors[0]["message"]
    assert all(part in first for part in expected.says), first
    assert _one_sentence(first), first
    if expected.failure_type:
        assert errors[0]["failure_type"] == expected.failure_type
    assert errors[-1]["message"].startswith("These streams did not sync: ")
    for stream in case.streams:  # every stream read was stopped by a sentence of its own
        assert any(f"'{stream}'" in error["message"] for error in errors[:-1]), (stream, [e["message"] for e in errors])


def test_nothing_secret_is_in_the_output_of_a_debug_read(tmp_path):
    """`--debug` of the streams whose answers hold what the records leave out: context credentials, registry
    passwords, webhook secrets, and signed build-log URLs."""
    run, sandbox = _run(RUNS["debug_secrets"], tmp_path)
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


@pytest.mark.parametrize("name", ["zero_width_key_check", "zero_width_key_read"])
def test_a_key_with_an_invisible_character_is_refused_and_never_printed(name, tmp_path):
    assert ZERO_WIDTH_KEY in RUNS[name].config.values() and RUNS[name].streams in ((), (TEAMS,))
    run, _ = _run(RUNS[name], tmp_path)

    message = (run.connection_status() or {}).get("message") or run.error_traces()[0]["message"]
    assert message.startswith("api_key has an invisible or non-ASCII character (character 31)")
    output = run.stdout + run.stderr
    for form in (SANDBOX_API_KEY[30:], SANDBOX_API_KEY.split(".", 1)[1][-12:]):
        assert form.encode() not in output


def test_outside_the_test_harness_the_sandbox_on_plain_http_is_refused(tmp_path):
    run, _ = _run(
        Run("production", "a check without the harness switch"), tmp_path, env={"SOURCE_CODEFRESH_TEST_LOOPBACK": "0"}
    )

    status = run.connection_status()
    assert status is not None and status["status"] == "FAILED"
    assert (
        "does not use https" in status["message"] and "connector does not send the API key there" in status["message"]
    )


def test_every_case_has_a_test_here():
    assert set(RUNS) == set(EXPECTED) | OWN_TESTS
    assert {run.answer for run in RUNS.values() if run.answer} == set(CASES)
    assert BUILD_LOGS in RUNS["log_many_steps"].streams
