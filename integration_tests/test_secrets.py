"""The API key never leaves the config: not on stdout, not on stderr, not in any file the connector writes.

`spec`, `check`, `discover` and `read` run as subprocesses of the installed `source-codefresh` (stdout and stderr
captured, TMPDIR and HOME inside the work directory) against a small sandbox, under faults that put requests,
responses and errors into messages: 401 (a wrong key), 403, 404 (a wrong base_url path), 5xx (retried, and retries
exhausted), an HTML page, cut-off JSON, a dropped connection and 429. The key is looked for as is, by its part
after the dot, and URL-encoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple
from urllib.parse import quote, quote_plus

import pytest

from codefresh_sandbox import SANDBOX_API_KEY, SMALL_ACCOUNT, SandboxConfig, SandboxServer
from codefresh_sandbox.expected import EXAMPLE_CUSTOM_STREAMS, sandbox_config
from codefresh_sandbox.scenarios import (
    WRONG_API_KEY,
    ConnectorRun,
    configured_catalog,
    discovered_catalog,
    manifest_copy_command,
    run_connector,
)

SMALL = dict(SMALL_ACCOUNT, builds=20)
# Keeps the time-sliced streams (builds, audit) to a few requests; every stream is still read.
START_DATE = "2026-10-01T00:00:00Z"


def key_forms(key: str) -> List[str]:
    """The key, its part after the dot (the secret half of a Codefresh key), and their URL-encoded forms."""
    suffix = key.split(".", 1)[1]
    forms = {key, suffix, quote(key, safe=""), quote_plus(key), quote(suffix, safe=""), quote_plus(suffix)}
    return sorted(forms, key=len, reverse=True)


def test_key_forms_are_distinct():
    assert len(SANDBOX_API_KEY.split(".", 1)[1]) >= 24
    assert quote(WRONG_API_KEY, safe="") != WRONG_API_KEY  # the encoded form is really looked for
    assert len(key_forms(WRONG_API_KEY)) >= 4


def leaks(key: str, run: ConnectorRun, workdir: Path, written_by_test: Tuple[Path, ...]) -> List[str]:
    """Where any form of the key appears: stdout, stderr, or any file in the work directory (TMPDIR and HOME
    included) that the test did not write itself."""
    forms = [f.encode() for f in key_forms(key)]
    found = []
    for where, content in (("stdout", run.stdout), ("stderr", run.stderr)):
        for form in forms:
            if form in content:
                at = content.index(form)
                found.append(f"{where}: {form.decode()!r} in ...{content[max(0, at - 160) : at + 40]!r}")
    skip = {p.resolve() for p in written_by_test}
    for path in sorted(workdir.rglob("*")):
        if not path.is_file() or path.resolve() in skip or path.suffix in (".stdout", ".stderr"):
            continue
        content = path.read_bytes()
        for form in forms:
            if form in content:
                found.append(f"file {path.relative_to(workdir)}: {form.decode()!r}")
    return found


@dataclass(frozen=True)
class Variant:
    name: str
    faults: Tuple[Mapping[str, Any], ...] = ()
    api_key: str = SANDBOX_API_KEY
    base_path: str = "/api"  # appended to the sandbox root
    check_status: str = "SUCCEEDED"
    manifest_changes: Tuple[Tuple[str, str], ...] = ()  # test-only manifest copy (see faults.manifest_copy_command)
    check_message: Tuple[str, ...] = ()


ALL = {"method": "GET"}
# Transient faults hit the second request of each command: `check` first probes GET /user with a plain request
# (source.py `_unreachable`, no retries), then reads it through the manifest's requester, whose retries and
# messages are what this test is about; in `read` the second request is one of the streams'.
SECOND = {"every": 2, "times": 1}
VARIANTS = [
    Variant("401_wrong_key", api_key=WRONG_API_KEY, check_status="FAILED", check_message=("401",)),
    Variant(
        "403_forbidden", faults=({"match": ALL, "kind": "forbidden"},), check_status="FAILED", check_message=("403",)
    ),
    Variant("404_wrong_base_url_path", base_path="/api/v9", check_status="FAILED", check_message=("404", "base_url")),
    Variant("5xx_retried", faults=({"match": ALL, "kind": "status", "status": 502, **SECOND},)),
    Variant(
        "5xx_retries_exhausted",
        faults=({"match": ALL, "kind": "status", "status": 503},),
        check_status="FAILED",
        manifest_changes=((r"^    max_retries: 20$", "    max_retries: 1"),),
    ),
    Variant(
        "html_login_page",
        faults=({"match": ALL, "kind": "html"},),
        check_status="FAILED",
        check_message=("not json", "base_url"),
    ),
    Variant("malformed_json", faults=({"match": ALL, "kind": "malformed", **SECOND},)),
    Variant("dropped_connection", faults=({"match": ALL, "kind": "drop", **SECOND},)),
    Variant("429_rate_limit", faults=({"match": ALL, "kind": "rate_limit", "retry_after": "1", **SECOND},)),
]


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        yield server


@pytest.fixture(scope="module")
def catalog(sandbox, tmp_path_factory) -> Dict[str, Any]:
    return configured_catalog(discovered_catalog(sandbox.base_url, tmp_path_factory.mktemp("discover")))


def test_spec_does_not_contain_a_key(tmp_path):
    run = run_connector(["spec"], tmp_path, "spec", timeout=120)
    spec = [m["spec"] for m in run.of_type("SPEC")]
    assert run.exit_code == 0 and spec, run.stderr.decode(errors="replace")[-2000:]
    assert spec[0]["connectionSpecification"]["properties"]["api_key"]["airbyte_secret"] is True
    for key in (SANDBOX_API_KEY, WRONG_API_KEY):
        assert leaks(key, run, tmp_path, ()) == []


@pytest.mark.timeout(600)
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_key_never_leaks(variant: Variant, sandbox: SandboxServer, catalog, tmp_path: Path) -> None:
    config = sandbox_config(sandbox.url + variant.base_path, variant.api_key, start_date=START_DATE)
    config_file, catalog_file = tmp_path / "config.json", tmp_path / "catalog.json"
    config_file.write_text(json.dumps(config))
    catalog_file.write_text(json.dumps(catalog))
    command, env = (None, None)
    if variant.manifest_changes:
        command, env = manifest_copy_command(tmp_path, variant.manifest_changes)
    written = (config_file,)

    found: Dict[str, List[str]] = {}
    runs: Dict[str, ConnectorRun] = {}
    commands = {
        "check": ["check", "--config", str(config_file)],
        "discover": ["discover", "--config", str(config_file)],
        "read": ["read", "--config", str(config_file), "--catalog", str(catalog_file)],
    }
    try:
        for name, args in commands.items():
            sandbox.set_faults([dict(rule) for rule in variant.faults])  # fresh counters for every command
            sandbox.reset_stats()
            run = run_connector(args, tmp_path, name, timeout=400, command=command, extra_env=env)
            runs[name] = run
            requests = sandbox.stats()["requests"]
            assert run.exit_code is not None, f"{name} did not finish"
            if name != "discover":
                assert requests > 0, f"{name} sent no request: nothing was tested"
            fired = sum(sandbox.stats()["faults_fired"].values())
            assert fired > 0 or not variant.faults or name == "discover", f"{name}: no fault fired"
            found[name] = leaks(variant.api_key, run, tmp_path, written)
    finally:
        sandbox.clear_faults()

    assert {name: lines for name, lines in found.items() if lines} == {}

    status = runs["check"].connection_status()
    assert status is not None, runs["check"].stderr.decode(errors="replace")[-2000:]
    assert status["status"] == variant.check_status, status
    for part in variant.check_message:
        assert part.lower() in (status.get("message") or "").lower(), status
    assert runs["discover"].of_type("CATALOG"), runs["discover"].stderr.decode(errors="replace")[-2000:]
    if variant.check_status == "SUCCEEDED":
        assert runs["read"].exit_code == 0 and not runs["read"].error_traces(), runs["read"].error_traces()[:3]
    else:
        assert runs["read"].error_traces(), "the read did not report the failure"


def test_check_with_wrong_key_fails_with_one_readable_message(sandbox: SandboxServer, tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(sandbox_config(sandbox.base_url, WRONG_API_KEY)))
    run = run_connector(["check", "--config", str(config_file)], tmp_path, "check", timeout=120)
    statuses = [m["connectionStatus"] for m in run.of_type("CONNECTION_STATUS")]
    assert len(statuses) == 1, run.stdout.decode(errors="replace")[-3000:]
    status = statuses[0]
    message = status.get("message") or ""
    assert status["status"] == "FAILED"
    assert "rejected the api key" in message.lower() and "401" in message, message
    assert "Traceback" not in message and "\n" not in message.strip() and len(message) < 600, message
    assert not run.error_traces(), run.error_traces()
    assert leaks(WRONG_API_KEY, run, tmp_path, (config_file,)) == []


# --- custom streams (the `custom_streams` setting) --------------------------------------------------------------------
REGISTRIES, PIPELINE_NAMES = EXAMPLE_CUSTOM_STREAMS
CUSTOM_STREAMS = [
    REGISTRIES,
    {k: v for k, v in PIPELINE_NAMES.items() if k != "cursor_field"},  # as written here first: without a cursor
    {
        "name": "failed_builds",
        "path": "workflow",
        "records_key": "workflows.docs",
        "primary_key": "id",
        "pagination": "cursor",
        "params": [{"name": "status", "value": "success"}, {"name": "status", "value": "error"}],
        "cursor_field": "created",
    },
]
# Entries whose reads fail, so that the request URL and the answer end up in error messages.
FAILING_CUSTOM_STREAMS = [
    {"name": "no_such_path", "path": "registry", "primary_key": "_id", "pagination": "none"},
    {
        "name": "wrong_records_key",
        "path": "clusters",
        "records_key": "items",
        "primary_key": "_id",
        "pagination": "none",
    },
]


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "entries,read_fails", [(CUSTOM_STREAMS, False), (FAILING_CUSTOM_STREAMS, True)], ids=["reading", "failing"]
)
def test_custom_streams_never_show_the_key_or_registry_credentials(
    sandbox: SandboxServer, tmp_path: Path, entries, read_fails
) -> None:
    config_file, catalog_file = tmp_path / "config.json", tmp_path / "catalog.json"
    config_file.write_text(
        json.dumps(sandbox_config(sandbox.base_url, SANDBOX_API_KEY, start_date=START_DATE, custom_streams=entries))
    )
    sandbox.clear_faults()
    runs: Dict[str, ConnectorRun] = {}
    runs["check"] = run_connector(["check", "--config", str(config_file)], tmp_path, "check", timeout=120)
    runs["discover"] = run_connector(["discover", "--config", str(config_file)], tmp_path, "discover", timeout=120)
    catalogs = runs["discover"].of_type("CATALOG")
    assert catalogs, runs["discover"].stderr.decode(errors="replace")[-2000:]
    custom = [s for s in catalogs[0]["catalog"]["streams"] if s["name"] in {e["name"] for e in entries}]
    assert len(custom) == len(entries)
    catalog_file.write_text(json.dumps(configured_catalog({"streams": custom})))
    sandbox.reset_stats()
    runs["read"] = run_connector(
        ["read", "--config", str(config_file), "--catalog", str(catalog_file)], tmp_path, "read", timeout=400
    )
    assert sandbox.stats()["requests"] > 0

    assert runs["check"].connection_status()["status"] == "SUCCEEDED"
    records = runs["read"].of_type("RECORD")
    if read_fails:
        messages = " ".join(error["message"] for error in runs["read"].error_traces())
        assert "check the path of custom stream 'no_such_path'" in messages, messages
        assert "custom stream 'wrong_records_key' reads nothing" in messages, messages
    else:
        assert runs["read"].exit_code == 0 and not runs["read"].error_traces(), runs["read"].error_traces()[:3]
        assert {r["record"]["stream"] for r in records} == {e["name"] for e in entries}
    for name, run in runs.items():
        assert leaks(SANDBOX_API_KEY, run, tmp_path, (config_file, catalog_file)) == [], name
    credentials = [
        value
        for registry in sandbox.data.registries.records
        for name, value in registry.items()
        if name in ("password", "token", "secretAccessKey", "clientSecret", "keyfile")
    ]
    assert len(credentials) == 7
    for value in credentials:
        assert value.encode() not in runs["read"].stdout
