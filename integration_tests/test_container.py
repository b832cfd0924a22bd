"""The connector image, built from this repository's Dockerfile and run as Airbyte runs it.

    .venv/bin/python -m pytest integration_tests/test_container.py -v -s

A module fixture starts a local container engine with the tool $CONTAINER_ENGINE_TOOL names, by default
`shared/tools/container-engine` in the nearest folder above the repository (`../shared/...`), or `container-engine`
on PATH (it starts dockerd and builds a stand-in for the Airbyte
Python connector base image, whose name it prints on its last line), builds the image on that stand-in and then runs
`spec`, `check`, `discover` and a `read` of every stream inside the container against the Codefresh sandbox
(codefresh_sandbox), with the config and the catalog mounted as files under /secrets, exactly as the
platform does. The sandbox listens on 127.0.0.1 and the container reaches it through host networking (the engine
has no bridge network).

Without the tool, a working engine or the `docker` CLI the tests are SKIPPED with a banner on stderr saying what
failed, never passed. A failing `docker build` is a failure: the Dockerfile is part of the connector.
The first run can take ten minutes or more (engine start, stand-in base image, dependency layer).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional

import pytest
import yaml

from codefresh_sandbox import HARNESS_ENV, SANDBOX_API_KEY, SMALL_ACCOUNT, SandboxConfig, SandboxServer
from codefresh_sandbox.expected import connector_command, expected_records, sandbox_config

REPO_ROOT = Path(__file__).resolve().parents[1]


def _engine_tool() -> Path:
    """CONTAINER_ENGINE_TOOL if set; else `shared/tools/container-engine` in the nearest folder above the repository
    that has one (`../shared/...` for the usual layout, found wherever the clone sits below it); else
    `container-engine` on PATH; else the usual place, which the fixture then reports missing."""
    configured = os.environ.get("CONTAINER_ENGINE_TOOL")
    if configured:
        return Path(configured)
    for folder in REPO_ROOT.parents:
        candidate = folder / "shared/tools/container-engine"
        if candidate.is_file():
            return candidate
    on_path = shutil.which("container-engine")
    return Path(on_path) if on_path else REPO_ROOT.parent / "shared/tools/container-engine"


ENGINE_TOOL = _engine_tool()
# One tag per checkout: clones that share the engine do not build over (or remove) each other's image.
IMAGE = f"source-codefresh:test-{hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]}"
ENGINE_TIMEOUT_S = 30 * 60  # installs the engine, starts dockerd, builds the stand-in base image
BUILD_TIMEOUT_S = 40 * 60  # the dependency layer downloads and installs the whole CDK (slow on the vfs driver)
RUN_TIMEOUT_S = 15 * 60

# One xdist worker runs the whole module: one engine start and one image build serve every test.
pytestmark = [
    pytest.mark.container,
    pytest.mark.xdist_group("container"),
    pytest.mark.timeout(ENGINE_TIMEOUT_S + BUILD_TIMEOUT_S + RUN_TIMEOUT_S),
]


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------
def _loud_skip(request: pytest.FixtureRequest, what: str, detail: str = "") -> None:
    """Skip every test of this module with a banner on the real stderr (outside pytest's capture)."""
    reason = f"CONTAINER TESTS NOT RUN: {what}"
    banner = "\n".join(
        [
            "",
            "!" * 100,
            f"!!! {reason}",
            *[f"!!!   {line}" for line in detail.strip().splitlines()[-15:]],
            "!!! The connector image was NOT built or tested; these tests are reported as SKIPPED.",
            "!" * 100,
            "",
        ]
    )
    capman = request.config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        with capman.global_and_fixture_disabled():
            sys.stderr.write(banner + "\n")
            sys.stderr.flush()
    else:
        sys.stderr.write(banner + "\n")
    pytest.skip(reason)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join((text or "").strip().splitlines()[-lines:])


def _messages(stdout: str) -> List[Dict[str, Any]]:
    parsed = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return parsed


def _of_type(messages: List[Dict[str, Any]], kind: str) -> List[Dict[str, Any]]:
    return [m for m in messages if m.get("type") == kind]


def _errors(messages: List[Dict[str, Any]]) -> List[str]:
    return [
        m["trace"]["error"].get("message", "") for m in _of_type(messages, "TRACE") if m["trace"].get("type") == "ERROR"
    ]


class Container:
    """Runs the image like the platform: host network, the secrets directory mounted read-only at /secrets.

    `spec`, `check`, `discover` and `read` (`run` without `entrypoint`, `protocol`) each start a fresh container
    through the image's entrypoint, as the platform does. Everything else (`run` with an `entrypoint`: a look inside
    the image, and `protocol(..., fresh=False)`: the wrong-key check, the pipeline run) runs in one container of the
    image kept running for the module, with the same user, environment, network and mounts: on the engine's vfs
    storage every container start copies the whole image (10 s on a quiet machine, a minute or more under load)."""

    def __init__(self, image: str, secrets_dir: Path):
        self.image = image
        self.secrets_dir = secrets_dir
        self._running: Optional[str] = None  # the id of the container that `run(entrypoint=...)` uses

    def run(
        self, *args: str, entrypoint: Optional[str] = None, timeout: int = RUN_TIMEOUT_S, name: Optional[str] = None
    ) -> subprocess.CompletedProcess:
        if entrypoint is None:
            cmd = ["docker", "run", *self._options(), self.image, *args]
        else:
            cmd = ["docker", "exec", self._running_container(), entrypoint, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if name:  # keep the output next to the config for a look after a failure
            (self.secrets_dir.parent / f"{name}.stdout.jsonl").write_text(proc.stdout)
            (self.secrets_dir.parent / f"{name}.stderr.txt").write_text(proc.stderr)
        return proc

    def _options(self) -> List[str]:
        options = ["--rm", "--network", "host", "-v", f"{self.secrets_dir}:/secrets:ro"]
        for name, value in HARNESS_ENV.items():  # the sandbox is plain http on this machine
            options += ["-e", f"{name}={value}"]
        return options

    def _running_container(self) -> str:
        if self._running is None:
            cmd = ["docker", "run", "--detach", *self._options(), "--entrypoint", "sleep", self.image, "infinity"]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
            assert proc.returncode == 0, f"the image did not start (exit {proc.returncode}):\n{_tail(proc.stderr)}"
            self._running = proc.stdout.strip()
        return self._running

    def stop(self) -> None:
        """Kill the kept-running container; the engine removes it (`--rm`) without the tests waiting."""
        if self._running is not None:
            subprocess.run(["docker", "kill", self._running], capture_output=True, text=True, timeout=300)
            self._running = None

    def protocol(self, name: str, *args: str, fresh: bool = True) -> List[Dict[str, Any]]:
        proc = self.run(*args, name=name, entrypoint=None if fresh else "source-codefresh")
        messages = _messages(proc.stdout)
        assert messages, (
            f"`{' '.join(args)}` in the container printed no Airbyte message "
            f"(exit {proc.returncode}):\n{_tail(proc.stderr)}\n{_tail(proc.stdout)}"
        )
        return messages


# ---------------------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base_image(request: pytest.FixtureRequest) -> str:
    """Start the engine and the stand-in base image; skip (loudly) when that is impossible here.

    The tool is idempotent: when the engine is up and the stand-in exists it only prints the stand-in's name."""
    if not ENGINE_TOOL.is_file():
        _loud_skip(request, f"the container engine tool is missing: {ENGINE_TOOL}")
    if not os.access(ENGINE_TOOL, os.X_OK):
        _loud_skip(request, f"the container engine tool is not executable: {ENGINE_TOOL}")
    try:
        proc = subprocess.run(
            [str(ENGINE_TOOL)], capture_output=True, text=True, timeout=ENGINE_TIMEOUT_S, cwd=REPO_ROOT
        )
    except subprocess.TimeoutExpired as exc:
        _loud_skip(
            request,
            f"{ENGINE_TOOL} did not finish within {ENGINE_TIMEOUT_S} s",
            (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or ""),
        )
    except OSError as exc:
        _loud_skip(request, f"{ENGINE_TOOL} could not be started: {exc}")
    if proc.returncode != 0:
        _loud_skip(
            request,
            f"{ENGINE_TOOL} failed with exit code {proc.returncode} (its output follows; it names its log)",
            proc.stderr + proc.stdout,
        )
    # Checked after the tool ran: on a fresh machine the tool installs the engine and its CLI.
    if shutil.which("docker") is None:
        _loud_skip(request, "the `docker` CLI is not on PATH (after running the container engine tool)")
    lines = proc.stdout.strip().splitlines()
    if not lines:
        _loud_skip(request, f"{ENGINE_TOOL} printed no stand-in image name", proc.stderr)
    standin = lines[-1].strip()
    info = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, timeout=120
    )
    if info.returncode != 0:
        _loud_skip(request, "the container engine is not answering `docker info`", info.stderr)
    inspect = subprocess.run(["docker", "image", "inspect", standin], capture_output=True, text=True, timeout=120)
    if inspect.returncode != 0:
        _loud_skip(
            request, f"the stand-in base image {standin!r} printed by {ENGINE_TOOL.name} does not exist", inspect.stderr
        )
    return standin


@pytest.fixture(scope="module")
def image(base_image: str) -> str:
    """`docker build` of this repository on the stand-in base image. A failing build fails the tests."""
    previous = _image_id(IMAGE)
    proc = subprocess.run(
        ["docker", "build", "--network", "host", "--build-arg", f"BASE_IMAGE={base_image}", "-t", IMAGE, "."],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"docker build failed (exit {proc.returncode}):\n{_tail(proc.stdout + proc.stderr, 60)}"
    )
    if previous and previous != _image_id(IMAGE):
        # The image this build replaced: with the engine's vfs storage every stale image costs its full size on disk.
        subprocess.run(["docker", "image", "rm", previous], capture_output=True, text=True, timeout=300)
    return IMAGE


def _image_id(name: str) -> Optional[str]:
    proc = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True, timeout=120
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


@pytest.fixture(scope="module")
def sandbox():
    server = SandboxServer(SandboxConfig(**SMALL_ACCOUNT)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("container")
    secrets = root / "secrets"
    secrets.mkdir()
    # The container runs as uid 1000: it must be able to enter the directories and read the files.
    for directory in (root, secrets):
        directory.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def container(image: str, sandbox: SandboxServer, workdir: Path) -> Iterator[Container]:
    secrets = workdir / "secrets"
    config_file = secrets / "config.json"
    config_file.write_text(json.dumps(sandbox_config(sandbox.base_url, SANDBOX_API_KEY), indent=2))
    (secrets / "bad_config.json").write_text(json.dumps(sandbox_config(sandbox.base_url, "not-a-valid-key"), indent=2))
    for f in secrets.iterdir():
        f.chmod(0o644)
    container = Container(image, secrets)
    yield container
    container.stop()


@pytest.fixture(scope="module")
def discovered(container: Container) -> Dict[str, Any]:
    messages = container.protocol("discover", "discover", "--config", "/secrets/config.json")
    catalogs = _of_type(messages, "CATALOG")
    assert len(catalogs) == 1, f"expected one CATALOG message, got {len(catalogs)}; errors: {_errors(messages)}"
    return catalogs[0]["catalog"]


def _metadata() -> Mapping[str, Any]:
    return yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text())["data"]


# ---------------------------------------------------------------------------------------------------------------
# the image
# ---------------------------------------------------------------------------------------------------------------
def test_image_size_labels_and_entrypoint(image: str):
    size = int(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    print(f"\nimage {image}: {size} bytes ({size / 1e6:.0f} MB)", file=sys.stderr)
    config = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config}}", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    metadata = _metadata()
    labels = config.get("Labels") or {}
    assert labels.get("io.airbyte.name") == metadata["dockerRepository"]
    assert labels.get("io.airbyte.version") == metadata["dockerImageTag"]
    assert config["Entrypoint"] == ["source-codefresh"]
    assert "AIRBYTE_ENTRYPOINT=source-codefresh" in config["Env"]
    assert config["WorkingDir"] == "/airbyte/integration_code"
    assert config["User"] not in ("", "0", "root", "0:0")


def test_image_runs_as_non_root(container: Container):
    proc = container.run("-u", entrypoint="id")
    assert proc.returncode == 0, proc.stderr
    uid = proc.stdout.strip()
    print(f"\ncontainer uid: {uid}", file=sys.stderr)
    assert uid.isdigit() and uid != "0", f"the image runs as uid {uid!r}"


def test_image_holds_no_build_tools_tests_or_caches(container: Container):
    script = r"""
import importlib.util, os, shutil, site, sys
found = []
for mod in ("integration_tests", "unit_tests", "hatchling", "pip", "pytest", "requests_mock"):
    if importlib.util.find_spec(mod) is not None:
        found.append("module " + mod)
for path in ("/build", "/airbyte/integration_code/integration_tests", "/airbyte/integration_code/unit_tests",
             "/airbyte/integration_code/.venv", "/root/.cache/pip", os.path.expanduser("~/.cache/pip"), "/tmp/pip"):
    if os.path.exists(path):
        found.append("path " + path)
for tool in ("gcc", "cc", "make"):
    if shutil.which(tool):
        found.append("tool " + tool)
import source_codefresh
pkg = os.path.dirname(source_codefresh.__file__)
if not os.path.isfile(os.path.join(pkg, "manifest.yaml")):
    found.append("manifest.yaml missing from the installed package " + pkg)
print("\n".join(found))
"""
    proc = container.run("-c", script, entrypoint="python")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"the image holds what it should not:\n{proc.stdout}"


def test_image_holds_exactly_the_locked_releases(container: Container):
    """Every distribution in the image is the release requirements.lock pins for the image's Python and platform
    (plus the connector itself), and nothing else: a rebuild installs the same dependencies."""
    lock = container.secrets_dir / "requirements.lock"
    lock.write_text((REPO_ROOT / "requirements.lock").read_text())
    lock.chmod(0o644)
    script = r"""
import importlib.metadata as md, json, re
from packaging.markers import Marker
from packaging.utils import canonicalize_name
locked = {}
for line in open("/secrets/requirements.lock"):
    match = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)\s*(?:;([^\\]+))?", line)
    if match and (not match.group(3) or Marker(match.group(3).strip()).evaluate()):
        locked[canonicalize_name(match.group(1))] = match.group(2)
installed = {canonicalize_name(d.metadata["Name"]): d.version for d in md.distributions()}
installed.pop("source-codefresh")
print(json.dumps({"locked": locked, "installed": installed}))
"""
    proc = container.run("-c", script, entrypoint="python")
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    locked, installed = found["locked"], found["installed"]
    assert len(locked) > 50, locked
    differ = {
        name: (locked.get(name), installed.get(name))
        for name in set(locked) | set(installed)
        if locked.get(name) != installed.get(name)
    }
    assert differ == {}, f"(locked, installed) releases that differ: {differ}"


def test_image_guards_against_the_interpreter_race(container: Container):
    """The base image's Python decides whether the gh-106905 guard is needed; importing the connector installs it
    exactly then (the stand-in's Debian 3.11.2 needs it)."""
    script = (
        "from source_codefresh import ast_guard; print(ast_guard.describe()); "
        "assert ast_guard.installed() == ast_guard.is_affected()"
    )
    proc = container.run("-c", script, entrypoint="python")
    assert proc.returncode == 0, proc.stderr
    print(f"\n{proc.stdout.strip()}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------------------
# the Airbyte protocol inside the container
# ---------------------------------------------------------------------------------------------------------------
def test_spec(container: Container):
    messages = container.protocol("spec", "spec")
    specs = _of_type(messages, "SPEC")
    assert len(specs) == 1, f"expected exactly one SPEC message, got {len(specs)}"
    connection = specs[0]["spec"]["connectionSpecification"]
    assert "api_key" in connection["required"]
    assert connection["properties"]["api_key"].get("airbyte_secret") is True
    assert specs[0]["spec"].get("documentationUrl") == _metadata()["documentationUrl"]


def test_check_succeeds_against_the_sandbox(container: Container):
    messages = container.protocol("check", "check", "--config", "/secrets/config.json")
    statuses = _of_type(messages, "CONNECTION_STATUS")
    assert len(statuses) == 1, f"expected one CONNECTION_STATUS, got {len(statuses)}; errors: {_errors(messages)}"
    status = statuses[0]["connectionStatus"]
    assert status["status"] == "SUCCEEDED", status.get("message")


def test_check_fails_with_a_wrong_key(container: Container):
    messages = container.protocol("check_bad_key", "check", "--config", "/secrets/bad_config.json", fresh=False)
    statuses = _of_type(messages, "CONNECTION_STATUS")
    assert len(statuses) == 1, f"expected one CONNECTION_STATUS, got {len(statuses)}; errors: {_errors(messages)}"
    status = statuses[0]["connectionStatus"]
    assert status["status"] == "FAILED"
    assert "401" in (status.get("message") or "") or "API key" in (status.get("message") or "")
    assert "not-a-valid-key" not in json.dumps(messages), "the API key leaked into the output"


def test_discover_lists_every_stream(discovered: Dict[str, Any], container: Container):
    names = sorted(s["name"] for s in discovered["streams"])
    # The same manifest, discovered by the package installed on this machine: the image must ship all of it.
    host = subprocess.run(
        connector_command() + ["discover", "--config", str(container.secrets_dir / "config.json")],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=container.secrets_dir.parent,
    )
    host_catalogs = _of_type(_messages(host.stdout), "CATALOG")
    assert host_catalogs, f"discover on the host failed:\n{_tail(host.stderr)}"
    assert names == sorted(s["name"] for s in host_catalogs[0]["catalog"]["streams"])
    for stream in discovered["streams"]:
        assert stream["json_schema"].get("type") == "object", stream["name"]
        assert stream.get("source_defined_primary_key"), f"{stream['name']} has no primary key"
    print(f"\ndiscovered {len(names)} streams: {', '.join(names)}", file=sys.stderr)


def test_read_every_stream(container: Container, discovered: Dict[str, Any], sandbox: SandboxServer):
    configured = []
    for stream in discovered["streams"]:
        incremental = "incremental" in stream["supported_sync_modes"]
        configured.append(
            {
                "stream": stream,
                "sync_mode": "incremental" if incremental else "full_refresh",
                "destination_sync_mode": "append_dedup" if incremental else "overwrite",
                **({"cursor_field": stream.get("default_cursor_field", [])} if incremental else {}),
                "primary_key": stream.get("source_defined_primary_key", []),
            }
        )
    catalog_file = container.secrets_dir / "catalog.json"
    catalog_file.write_text(json.dumps({"streams": configured}, indent=2))
    catalog_file.chmod(0o644)
    sandbox.reset_stats()

    messages = container.protocol(
        "read", "read", "--config", "/secrets/config.json", "--catalog", "/secrets/catalog.json"
    )

    errors = _errors(messages)
    assert not errors, "the read reported errors:\n" + "\n".join(errors)
    records = Counter(m["record"]["stream"] for m in _of_type(messages, "RECORD"))
    expected = sandbox.expected()
    lines, mismatches = [], []
    for entry in configured:
        name = entry["stream"]["name"]
        want = expected_records(expected, name)
        lines.append(f"  {name:<24} {entry['sync_mode']:<12} {records[name]:>7} {'' if want is None else want:>7}")
        if records[name] == 0:
            mismatches.append(f"{name}: no records")
        elif want is not None and records[name] != want:
            mismatches.append(f"{name}: {records[name]} records, the sandbox holds {want}")
    print("\n  stream                   mode         records sandbox\n" + "\n".join(lines), file=sys.stderr)
    assert not mismatches, "records read in the container differ from the sandbox:\n" + "\n".join(mismatches)

    states = {
        m["state"]["stream"]["stream_descriptor"]["name"]
        for m in _of_type(messages, "STATE")
        if m["state"].get("type") == "STREAM"
    }
    missing_state = [
        e["stream"]["name"] for e in configured if e["sync_mode"] == "incremental" and e["stream"]["name"] not in states
    ]
    assert not missing_state, f"incremental streams without a STATE message: {missing_state}"
    assert sandbox.stats()["pagination_errors"] == 0
    assert SANDBOX_API_KEY not in json.dumps(messages), "the API key leaked into the output"


def test_pipeline_run_starts_one_build(container: Container, sandbox: SandboxServer):
    """The one write, inside the container: one configured run posts once, polls the build and emits it."""
    pipeline = "demo/hello-world"
    secrets = container.secrets_dir
    (secrets / "runs_config.json").write_text(
        json.dumps(
            sandbox_config(
                sandbox.base_url,
                SANDBOX_API_KEY,
                pipeline_runs_poll_seconds=1,
                pipeline_runs=[
                    {
                        "pipeline": pipeline,
                        "branch": "main",
                        "variables": [{"name": "SECRET_VALUE", "value": "s3cr3t-value"}],
                        "wait_timeout_minutes": 5,
                    }
                ],
            ),
            indent=2,
        )
    )
    discover = container.protocol("discover_runs", "discover", "--config", "/secrets/runs_config.json", fresh=False)
    catalogs = _of_type(discover, "CATALOG")
    assert catalogs, f"discover with pipeline_runs failed: {_errors(discover)}"
    stream = next((s for s in catalogs[0]["catalog"]["streams"] if s["name"] == "pipeline_runs"), None)
    assert stream is not None, "the pipeline_runs stream is missing although pipeline_runs is configured"
    (secrets / "runs_catalog.json").write_text(
        json.dumps(
            {
                "streams": [
                    {
                        "stream": stream,
                        "sync_mode": "full_refresh",
                        "destination_sync_mode": "append",
                        "primary_key": stream.get("source_defined_primary_key", []),
                    }
                ]
            }
        )
    )
    for f in ("runs_config.json", "runs_catalog.json"):
        (secrets / f).chmod(0o644)
    posts_before = sandbox.stats().get("posts", {}).get(pipeline, 0)

    messages = container.protocol(
        "read_runs",
        "read",
        "--config",
        "/secrets/runs_config.json",
        "--catalog",
        "/secrets/runs_catalog.json",
        fresh=False,
    )

    errors = _errors(messages)
    assert not errors, "the pipeline run reported errors:\n" + "\n".join(errors)
    records = [m["record"]["data"] for m in _of_type(messages, "RECORD") if m["record"]["stream"] == "pipeline_runs"]
    assert len(records) == 1, f"expected one pipeline_runs record, got {len(records)}"
    run = records[0]
    print(
        f"\npipeline run: build {run.get('id')} status {run.get('status')} after {run.get('polls')} polls",
        file=sys.stderr,
    )
    assert run.get("status") == "success" and run.get("timed_out") is False
    assert run.get("pipeline") == pipeline and run.get("run_id")
    assert sandbox.stats().get("posts", {}).get(pipeline, 0) == posts_before + 1, "the run was not posted exactly once"
    assert "s3cr3t-value" not in json.dumps(messages), "a pipeline variable value leaked into the output"


def test_a_0_0_x_config_in_a_read_only_mount_is_migrated_in_the_control_message(
    container: Container, sandbox: SandboxServer
):
    """A config saved by Airbyte's Connector Builder connector (0.0.x), mounted read-only as Airbyte mounts secrets:
    the CDK cannot write the migrated config back to the file, and the run goes on with it all the same, handing it
    to Airbyte in a CONTROL message (integration_tests/test_upgrade.py shows the rest of the upgrade)."""
    saved = {
        "api_key": SANDBOX_API_KEY,
        "base_url": sandbox.base_url,
        "account_id": "5f1a2b3c4d5e6f7a8b9c0d1e",
        "report_granularity": "day",
        "report_date_range": ["2026-06-01", "2026-06-30"],
        "start_date": "2025-01-01T00:00:00Z",
    }
    config_file = container.secrets_dir / "config_0_0_x.json"
    config_file.write_text(json.dumps(saved))
    config_file.chmod(0o644)

    messages = container.protocol("check_0_0_x", "check", "--config", "/secrets/config_0_0_x.json")

    assert [m["connectionStatus"]["status"] for m in _of_type(messages, "CONNECTION_STATUS")] == ["SUCCEEDED"], _errors(
        messages
    )
    (control,) = _of_type(messages, "CONTROL")
    migrated = control["control"]["connectorConfig"]["config"]
    assert migrated["analytics_start_date"] == "2026-06-01" and "account_id" not in migrated
    assert json.loads(config_file.read_text()) == saved, "the read-only file is left as it was"
