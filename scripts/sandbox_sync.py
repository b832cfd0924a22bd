"""The connector's main job against the built-in Codefresh sandbox: discover, then read every stream.

    python scripts/sandbox_sync.py                  # start a sandbox, read all streams, print a summary
    python scripts/sandbox_sync.py --builds 5000    # a bigger account
    python scripts/sandbox_sync.py --base-url http://127.0.0.1:8765/api   # a sandbox you started yourself
    python scripts/sandbox_sync.py --build-logs     # with build logs on (sync_build_logs), and their throughput
    python scripts/sandbox_sync.py --build-logs --builds 2000 --latency-ms 25 --streams builds,build_logs
    python scripts/sandbox_sync.py --custom-streams # plus two custom streams (registries, pipeline_names)
    python scripts/sandbox_sync.py --custom-streams '[{"name": "clusters", "path": "clusters", ...}]'  # or @file.json

It runs the installed `source-codefresh` executable exactly as Airbyte would (config and catalog as files,
the Airbyte protocol on stdout) and prints, per stream, the records read next to what the sandbox holds.
Add `--out DIR` to keep the config, catalog, messages and final state; without it they go to a temporary directory
that is removed at the end (the config holds the API key).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List

from codefresh_sandbox import HARNESS_ENV, SANDBOX_API_KEY, SandboxConfig, SandboxServer
from codefresh_sandbox.expected import (
    EXAMPLE_CUSTOM_STREAMS,
    expected_records,
    sandbox_config,
)
from codefresh_sandbox.scenarios import (
    ConnectorRun,
    configured_catalog,
    discover,
    expected_analytics_keys,
    run_connector,
)


def custom_streams_option(value: str) -> List[Dict[str, Any]]:
    """`--custom-streams` takes the entries as JSON, or @path of a JSON file."""
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    entries = json.loads(text)
    if not isinstance(entries, list):
        raise argparse.ArgumentTypeError("--custom-streams takes a JSON list of entries")
    return entries


def run(args: List[str], out_dir: Path, name: str) -> ConnectorRun:
    """The installed connector, as Airbyte runs it; its messages are kept as `<name>.jsonl`."""
    done = run_connector(args, out_dir, name, timeout=None)
    (out_dir / f"{name}.stdout").replace(out_dir / f"{name}.jsonl")
    if done.exit_code != 0 and not done.messages:
        sys.stderr.write(done.stderr.decode(errors="replace"))
    return done


def main() -> int:
    os.environ.update(HARNESS_ENV)  # the sandbox is plain http on this machine (source_codefresh/transport.py)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", help="a running sandbox (or Codefresh) API root; default: start a sandbox")
    parser.add_argument("--api-key", default=os.environ.get("CODEFRESH_API_KEY", SANDBOX_API_KEY))
    parser.add_argument("--builds", type=int, default=500, help="builds in the started sandbox (default 500)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="per-request latency of the started sandbox")
    parser.add_argument("--streams", help="comma-separated streams to read (default: all)")
    parser.add_argument("--out", help="directory to keep config, catalog, messages and state in")
    parser.add_argument(
        "--max-requests-per-minute",
        type=int,
        help="the connector's request budget (default: the connector's, 6000 = 100 per second)",
    )
    parser.add_argument(
        "--build-logs",
        action="store_true",
        help="turn on sync_build_logs (the build_logs stream) and print its throughput",
    )
    parser.add_argument(
        "--custom-streams",
        nargs="?",
        type=custom_streams_option,
        const=EXAMPLE_CUSTOM_STREAMS,
        metavar="JSON|@FILE",
        help="configure custom streams (the custom_streams setting); alone: registries and pipeline_names",
    )
    opts = parser.parse_args()

    server = None
    if opts.base_url:
        base_url = opts.base_url
    else:
        server = SandboxServer(SandboxConfig(builds=opts.builds, latency_ms=opts.latency_ms)).start()
        base_url = server.base_url
        print(f"Codefresh sandbox: {base_url} ({opts.builds} builds)")

    out_dir = Path(opts.out) if opts.out else Path(tempfile.mkdtemp(prefix="source-codefresh-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        config_file = out_dir / "config.json"
        overrides: Dict[str, Any] = {"custom_streams": opts.custom_streams} if opts.custom_streams else {}
        if opts.build_logs:
            overrides["sync_build_logs"] = True
        if opts.max_requests_per_minute:
            overrides["max_requests_per_minute"] = opts.max_requests_per_minute
        config_file.write_text(json.dumps(sandbox_config(base_url, opts.api_key, **overrides), indent=2))
        for entry in opts.custom_streams or []:
            print(f"custom stream: {json.dumps(entry)}")

        status = run(["check", "--config", str(config_file)], out_dir, "check").connection_status()
        print(
            f"check: {status['status'] if status else 'no answer'}"
            + (f" - {status.get('message')}" if status and status.get("message") else "")
        )
        if not status or status["status"] != "SUCCEEDED":
            return 1

        try:
            catalog = discover(config_file, out_dir)
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        finally:
            (out_dir / "discover.stdout").replace(out_dir / "discover.jsonl")
        names = opts.streams.split(",") if opts.streams else None
        configured = configured_catalog(catalog, names, incremental=True)["streams"]
        # The started sandbox answers GraphQL (the GitOps streams) only with graphql-core installed.
        if server is not None and importlib.util.find_spec("graphql") is None:
            print(
                "GitOps streams left out: the sandbox's GraphQL API needs graphql-core "
                "(pip install -r requirements-sandbox.lock)"
            )
            configured = [entry for entry in configured if not entry["stream"]["name"].startswith("gitops_")]
        catalog_file = out_dir / "catalog.json"
        catalog_file.write_text(json.dumps({"streams": configured}, indent=2))

        started, read_day = time.monotonic(), datetime.now(timezone.utc).date()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        messages = run(["read", "--config", str(config_file), "--catalog", str(catalog_file)], out_dir, "read").messages
        elapsed = time.monotonic() - started
        cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)

        records = Counter(m["record"]["stream"] for m in messages if m.get("type") == "RECORD")
        states = [m["state"] for m in messages if m.get("type") == "STATE"]
        problems = [
            m["log"]["message"] for m in messages if m.get("type") == "LOG" and m["log"]["level"] in ("WARN", "ERROR")
        ]
        errors = [
            m["trace"]["error"]["message"]
            for m in messages
            if m.get("type") == "TRACE" and m["trace"].get("type") == "ERROR"
        ]
        final_state = {}
        for state in states:
            if state.get("type") == "STREAM":
                final_state[state["stream"]["stream_descriptor"]["name"]] = state["stream"]["stream_state"]
        (out_dir / "state.json").write_text(
            json.dumps(
                [
                    {"type": "STREAM", "stream": {"stream_descriptor": {"name": n}, "stream_state": s}}
                    for n, s in final_state.items()
                ],
                indent=2,
            )
        )

        expected: Dict[str, int] = {}
        if server:
            # Analytics rows: those of the windows a read on this day asks for (the same count the fault table uses).
            expected = dict(server.expected(), analytics_report_rows=len(expected_analytics_keys(server, read_day)))
        print()
        print(f"{'stream':<24} {'mode':<12} {'records':>8} {'sandbox':>8}")
        print("-" * 56)
        mismatches = 0
        for entry in configured:
            name = entry["stream"]["name"]
            want = expected_records(expected, name) if server else None
            mark = ""
            if want is not None and want != records[name]:
                mark, mismatches = "  <- differs", mismatches + 1
            unknown = want is None and server is not None
            shown = "-" if unknown else ("" if want is None else want)
            print(f"{name:<24} {entry['sync_mode']:<12} {records[name]:>8} {shown:>8}{mark}")
        print("-" * 56)
        if server and any(expected_records(expected, e["stream"]["name"]) is None for e in configured):
            print("-: the sandbox cannot tell in advance (pipeline runs depend on the config)")
        print(
            f"{sum(records.values())} records from {len(configured)} streams in {elapsed:.1f} s; "
            f"{len(states)} state messages" + (f"; files in {out_dir}" if opts.out else "")
        )
        # CPU seconds say more than wall time on a busy machine. ru_maxrss of the waited-for children is the largest
        # connector process (check, discover, read), in KiB on Linux.
        print(
            f"connector: read used {cpu:.1f} s of CPU; peak RSS "
            f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MiB"
        )
        if opts.build_logs:
            logs = [
                m["record"]["data"]
                for m in messages
                if m.get("type") == "RECORD" and m["record"]["stream"] == "build_logs"
            ]
            kept = sum(len((row.get("log") or "").encode()) for row in logs)
            whole = sum(row.get("log_size_bytes") or 0 for row in logs)
            log_builds = len({row.get("build_id") for row in logs})
            print(
                f"build_logs: {len(logs)} step logs of {log_builds} builds, {kept / 1e6:.1f} MB of text kept "
                f"({whole / 1e6:.1f} MB in the logs, {sum(1 for row in logs if row.get('truncated'))} cut); "
                f"{log_builds / elapsed:.0f} builds/s and {kept / 1e6 / elapsed:.1f} MB/s over the whole read "
                f"({cpu:.1f} s of connector CPU)"
            )
        if server:
            stats = server.stats()
            print(
                f"sandbox: {stats['requests']} requests, {stats['response_bytes'] / 1e6:.1f} MB answered, "
                f"{stats['pagination_errors']} pagination errors; GraphQL: {stats['graphql']['query']} queries, "
                f"{stats['graphql']['mutation']} mutations"
                + (
                    f"; log storage: {stats['storage']['requests']} requests, "
                    f"{stats['storage']['with_authorization']} with an Authorization header, "
                    f"{stats['progress_deletes']} DELETE /progress"
                    if opts.build_logs
                    else ""
                )
            )
        for line in problems:
            print(f"  log: {line}")
        for line in errors:
            print(f"  error: {line}")
        return 1 if errors or mismatches else 0
    finally:
        if server:
            server.stop()
        if not opts.out:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
