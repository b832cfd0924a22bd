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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from codefresh_sandbox import HARNESS_ENV, SANDBOX_API_KEY, SandboxServer
from codefresh_sandbox.expected import connector_command
from codefresh_sandbox.hostile import LOG_SIGNATURE, RUNS, Run

ROOT = Path(__file__).resolve().parent.parent
MAX_MB = 4096  # a case is killed at this peak memory too, so that a connector that balloons cannot take the machine
SIGNATURE = re.compile(r"Signature=[0-9A-Za-z%_-]{12,}")


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


def run(case: Run, timeout: float, workdir: Path, connector_path: Optional[Path] = None) -> Outcome:
    with case.serving() as (sandbox, base_url):
        command = connector_command() + case.arguments(workdir, base_url)
        # The connector of another revision: its package and manifest first on the path (its manifest is found next to
        # its package).
        env = {**os.environ, "PYTHONPATH": str(connector_path)} if connector_path else None
        outcome = measure(command, timeout, workdir, env)
        text = (workdir / "stdout").read_bytes().decode(errors="replace")
        text += (workdir / "stderr").read_bytes().decode(errors="replace")
        outcome.leaks = [what for what, value in secrets_of(sandbox).items() if value and value in text]
        if SIGNATURE.search(text):
            outcome.leaks.append("a signed URL's signature")
        return outcome


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
        for case in RUNS.values():
            print(f"{case.name:<32} {case.what}")
        return 0
    rows = [RUNS[name] for name in opts.cases] if opts.cases else list(RUNS.values())
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
