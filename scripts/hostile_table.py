"""Hostile and broken answers: what the connector does with each, its wall time and peak memory.

    .venv/bin/python scripts/hostile_table.py                      # every case (about 3 minutes after the fixes)
    .venv/bin/python scripts/hostile_table.py api_gzip_bomb log_many_steps
    .venv/bin/python scripts/hostile_table.py --before 7bf7791             # side by side with an older connector
    .venv/bin/python scripts/hostile_table.py --timeout 60 --list

Each case runs the installed `source-codefresh` (`read`, or `check` for a config that must be refused) as Airbyte
would, against a fresh sandbox, through a hostile proxy (codefresh_sandbox/hostile.py) when the case is a bad answer.
It is killed after `--timeout` seconds, or at 4 GB of memory ("killed" then means it would have gone on). The
outcome column is the command's result: the records emitted, and the first error's message; "LEAK" marks output that
holds a secret (the API key in any form, a signed URL's signature, a credential of the sandbox's data). Peak memory is
the connector process's high-water mark (VmHWM, sampled every 50 ms). The tests of these cases are
integration_tests/test_hostile.py; this script only measures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from codefresh_sandbox import HARNESS_ENV, SANDBOX_API_KEY, SMALL_ACCOUNT, SandboxConfig, SandboxServer
from codefresh_sandbox.expected import connector_command
from codefresh_sandbox.hostile import CASES, LOG_SIGNATURE, HostileProxy

SIGNATURE = re.compile(r"Signature=[0-9A-Za-z%_-]{12,}")
ROOT = Path(__file__).resolve().parent.parent
MAX_MB = 4096  # a case is killed at this peak memory too, so that a connector that balloons cannot take the machine
ONE_BUILD = dict(SMALL_ACCOUNT, builds=1, unfinished_fraction=0.0)
ZERO_WIDTH_KEY = SANDBOX_API_KEY[:30] + "\u200b" + SANDBOX_API_KEY[30:]
LOGS = {"sync_build_logs": True}


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    streams: Tuple[str, ...] = ()  # empty: `check` only
    config: Dict[str, Any] = field(default_factory=dict)
    account: Dict[str, Any] = field(default_factory=lambda: dict(SMALL_ACCOUNT))
    proxy: bool = False  # through the hostile proxy, case `name`
    debug: bool = False


def proxied(name: str, streams: Tuple[str, ...], account: Optional[Dict[str, Any]] = None, **config: Any) -> Row:
    return Row(name, CASES[name].what, streams, config, account or dict(SMALL_ACCOUNT), proxy=True)


def custom(params: Dict[str, Any], **entry: Any) -> Dict[str, Any]:
    return {
        "custom_streams": [
            {
                "name": "regs",
                "path": "registries",
                "primary_key": "_id",
                "pagination": "none",
                "params": params,
                **entry,
            }
        ]
    }


DEFAULT_SIZES = dict(SMALL_ACCOUNT, pipelines=250, projects=130, step_types=230, runtime_environments=120)
ROWS: List[Row] = [
    Row("zero_width_key_read", "api_key with a zero-width space: read", ("teams",), {"api_key": ZERO_WIDTH_KEY}),
    Row("zero_width_key_check", "api_key with a zero-width space: check", (), {"api_key": ZERO_WIDTH_KEY}),
    Row(
        "debug_secrets",
        "read --debug of contexts, pipelines, triggers, trigger events, registries, build logs",
        ("contexts", "pipelines", "triggers", "trigger_events", "build_logs", "regs"),
        {**LOGS, **custom({})},
        dict(SMALL_ACCOUNT, builds=3, unfinished_fraction=0.0),
        debug=True,
    ),
    proxied("log_url_private", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("log_url_link_local", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("log_url_plain_http", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("log_redirect_private", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("api_gzip_bomb", ("pipelines",)),
    proxied("api_endless_body", ("pipelines",)),
    proxied("api_drip", ("pipelines",)),
    proxied("log_many_steps", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("log_fat_step", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("log_endless", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("log_deep_nesting", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("builds_alternating_pages", ("builds",)),
    proxied("offset_ignored", ("pipelines", "projects", "step_types", "runtime_environments"), DEFAULT_SIZES),
    Row("base_url_broken_ipv6", "base_url http://[::1/api: check", (), {"base_url": "http://[::1/api"}),
    Row("base_url_two_ports", "base_url http://127.0.0.1:1:2/api: check", (), {"base_url": "http://127.0.0.1:1:2/api"}),
    Row("num_workers_negative", "num_workers -3: check", (), {"num_workers": -3}),
    Row("num_workers_fraction", "num_workers 2.5: check", (), {"num_workers": 2.5}),
    proxied("non_object_items", ("agents",)),
    proxied("progress_is_list", ("build_logs",), ONE_BUILD, **LOGS),
    proxied("environment_without_metadata", ("environments",)),
    Row(
        "custom_primary_key_absent",
        "custom stream whose primary_key no record has",
        ("regs",),
        custom({}, primary_key="nope"),
    ),
    Row("custom_decrypt_brackets", "custom stream params decrypt[]: check", (), custom({"decrypt[]": "true"})),
    Row(
        "custom_decrypt_variables_index",
        "custom stream params decryptVariables[0]: check",
        (),
        custom({"decryptVariables[0]": "true"}),
    ),
    Row("custom_limit_brackets", "custom stream params limit[]: check", (), custom({"limit[]": "5"})),
    Row(
        "custom_params_414",
        "custom stream with a 70,000-character param (HTTP 414)",
        ("regs",),
        custom({"q": "x" * 70_000}),
    ),
]
ROWS_BY_NAME = {row.name: row for row in ROWS}


@dataclass
class Outcome:
    seconds: float
    peak_mb: float
    killed: bool
    exit_code: Optional[int]
    records: int
    message: str
    leaks: List[str]

    def text(self) -> str:
        end = "killed" if self.killed else f"exit {self.exit_code}"
        leak = f" LEAK: {', '.join(self.leaks)}" if self.leaks else ""
        return f"{end}, {self.records} records{': ' + self.message if self.message else ''}{leak}"


_CREDENTIAL_KEYS = {"secret", "password", "token", "secretAccessKey", "clientSecret", "NPM_TOKEN", "HELMREPO_PASSWORD"}


def secrets_of(sandbox: SandboxServer) -> Dict[str, str]:
    """What must never appear in the output: the key (also escaped), the log URLs' signature, and the credentials in
    the sandbox's contexts, registries, pipelines' triggers and trigger events."""
    found = {SANDBOX_API_KEY: "api key", SANDBOX_API_KEY[30:]: "api key (any form)", LOG_SIGNATURE: "signature"}
    data = sandbox.data
    for kind in ("contexts", "registries", "pipelines", "hermes_triggers", "hermes_events"):
        collection = getattr(data, kind, None)
        for record in getattr(collection, "records", collection) or []:
            for key, value in _leaves(record):
                if key in _CREDENTIAL_KEYS and isinstance(value, str) and len(value) >= 12 and "*" not in value:
                    found[value] = f"{kind} {key}"
    return {what: value for value, what in found.items()}


def _leaves(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _leaves(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value, key)
    else:
        yield key, node


def run(row: Row, timeout: float, workdir: Path, connector_path: Optional[Path] = None) -> Outcome:
    account = SandboxConfig(**row.account)
    with SandboxServer(account) as sandbox:
        proxy = HostileProxy(sandbox, row.name).start() if row.proxy else None
        try:
            base_url = proxy.base_url if proxy else sandbox.base_url
            config = {"api_key": SANDBOX_API_KEY, "base_url": base_url, **row.config}
            (workdir / "config.json").write_text(json.dumps(config))
            args = ["check", "--config", "config.json"]
            if row.streams:
                catalog = {
                    "streams": [
                        {
                            "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                            "sync_mode": "full_refresh",
                            "destination_sync_mode": "overwrite",
                        }
                        for name in row.streams
                    ]
                }
                (workdir / "catalog.json").write_text(json.dumps(catalog))
                args = ["read", "--config", "config.json", "--catalog", "catalog.json"]
            command = connector_command() + args + (["--debug"] if row.debug else [])
            # The connector of another revision: its package and manifest first on the path (its manifest is found
            # next to its package).
            env = {**os.environ, "PYTHONPATH": str(connector_path)} if connector_path else None
            outcome = measure(command, timeout, workdir, env)
            text = (workdir / "stdout").read_bytes().decode(errors="replace") + (
                workdir / "stderr"
            ).read_bytes().decode(errors="replace")
            outcome.leaks = [what for what, value in secrets_of(sandbox).items() if value and value in text]
            if SIGNATURE.search(text):
                outcome.leaks.append("a signed URL's signature")
            return outcome
        finally:
            if proxy:
                proxy.stop()


def measure(command: List[str], timeout: float, workdir: Path, env: Optional[Dict[str, str]] = None) -> Outcome:
    with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=workdir, env=env)
        peak_kb = 0
        while process.poll() is None and time.monotonic() - started < timeout and peak_kb < MAX_MB * 1024:
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            time.sleep(0.05)
        killed = process.poll() is None
        if killed:
            process.kill()
        process.wait()
        seconds = time.monotonic() - started
    records, message = 0, ""
    with open(workdir / "stdout", "rb") as lines:
        for line in lines:
            if b'"type":"RECORD"' in line[:40] or b'"type": "RECORD"' in line[:40]:
                records += 1
                continue
            try:
                parsed = json.loads(line)
            except ValueError:
                continue
            if not message and parsed.get("type") == "TRACE" and parsed["trace"].get("type") == "ERROR":
                message = parsed["trace"]["error"].get("message") or ""
            if not message and parsed.get("type") == "CONNECTION_STATUS":
                message = f"{parsed['connectionStatus']['status']} {parsed['connectionStatus'].get('message') or ''}"
    return Outcome(seconds, peak_kb / 1024, killed, process.returncode, records, " ".join(message.split()), [])


def _high_water_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM, kB); 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def connector_at(revision: str, directory: Path) -> Path:
    """The connector's package and manifest at a git revision, unpacked into `directory`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "source_codefresh", "manifest.yaml"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    return directory


def main() -> int:
    os.environ.update(HARNESS_ENV)  # the sandbox is plain http on this machine (source_codefresh/transport.py)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds before a case is killed")
    parser.add_argument("--before", metavar="REV", help="also run the connector of this git revision, side by side")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--width", type=int, default=160, help="outcome text is cut at this many characters")
    opts = parser.parse_args()
    if opts.list:
        for row in ROWS:
            print(f"{row.name:<32} {row.what}")
        return 0
    rows = [ROWS_BY_NAME[name] for name in opts.cases] if opts.cases else ROWS
    with tempfile.TemporaryDirectory(prefix="hostile-before-") as before_dir:
        before = connector_at(opts.before, Path(before_dir)) if opts.before else None
        columns = ["before", "after"] if before else ["now"]
        print(f"{'case':<32}" + "".join(f" {name + ' s':>9} {name + ' MB':>9}" for name in columns) + "  outcome")
        for row in rows:
            outcomes = []
            for connector in ([before] if before else []) + [None]:
                with tempfile.TemporaryDirectory(prefix=f"hostile-{row.name}-") as workdir:
                    outcomes.append(run(row, opts.timeout, Path(workdir), connector))
            figures = "".join(f" {o.seconds:>9.1f} {o.peak_mb:>9.0f}" for o in outcomes)
            print(f"{row.name:<32}{figures}  {outcomes[-1].text()[: opts.width]}", flush=True)
            if before:
                print(f"{'':<32}{'':>40}  (before: {outcomes[0].text()[: opts.width]})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
