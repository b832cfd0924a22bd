"""build_logs against the sandbox: what a user gets, and what the connector never does (send the API key to the
storage host, send DELETE to a progress job, hold a whole log in memory)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import jsonschema
import pytest
from airbyte_cdk.models import SyncMode
from airbyte_cdk.test.catalog_builder import CatalogBuilder, ConfiguredAirbyteStreamBuilder
from airbyte_cdk.test.entrypoint_wrapper import EntrypointOutput, discover, read
from airbyte_cdk.test.models.outcome import ExpectedOutcome
from airbyte_cdk.test.state_builder import StateBuilder

from codefresh_sandbox import SANDBOX_API_KEY, SandboxConfig, SandboxServer, progress
from source_codefresh import SourceCodefresh

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def config(server: SandboxServer, **overrides: Any) -> Dict[str, Any]:
    return {"api_key": SANDBOX_API_KEY, "base_url": server.base_url, "sync_build_logs": True, **overrides}


def read_logs(server: SandboxServer, state: Optional[Dict[str, Any]] = None, **overrides: Any) -> EntrypointOutput:
    cfg = config(server, **overrides)
    catalog = (
        CatalogBuilder()
        .with_stream(
            ConfiguredAirbyteStreamBuilder()
            .with_name("build_logs")
            .with_sync_mode(SyncMode.incremental)
            .with_primary_key([["build_id"], ["step_name"]])
        )
        .build()
    )
    states = StateBuilder().with_stream_state("build_logs", state).build() if state else None
    return read(
        SourceCodefresh(catalog=catalog, config=cfg, state=states),
        cfg,
        catalog,
        states,
        expected_outcome=ExpectedOutcome.ALLOW_ANY,
    )


def records(output: EntrypointOutput) -> List[Dict[str, Any]]:
    return [message.record.data for message in output.records]


def lines(output: EntrypointOutput) -> List[str]:
    return [message.log.message for message in output.logs]


def errors(output: EntrypointOutput) -> List[str]:
    return [message.trace.error.message for message in output.errors]


def by_build(rows: List[Dict[str, Any]]) -> Dict[str, Dict[str, str]]:
    out: Dict[str, Dict[str, str]] = {}
    for row in rows:
        out.setdefault(row["build_id"], {})[row["step_name"]] = row["log"]
    return out


def test_the_stream_exists_only_when_sync_build_logs_is_true():
    with SandboxServer(SandboxConfig(builds=5, pipelines=3)) as server:
        names = {}
        for setting in (None, False, True):
            cfg = {"api_key": SANDBOX_API_KEY, "base_url": server.base_url}
            if setting is not None:
                cfg["sync_build_logs"] = setting
            catalog = discover(SourceCodefresh(config=cfg), cfg).catalog.catalog
            names[setting] = {stream.name for stream in catalog.streams}
    assert "build_logs" not in names[None] and "build_logs" not in names[False]
    assert names[True] - names[None] == {"build_logs"}


@pytest.mark.parametrize("shape", ["list", "object", "mixed"])
def test_every_step_of_every_finished_build_with_its_whole_text_in_each_shape(shape):
    with SandboxServer(SandboxConfig(builds=40, pipelines=6, unfinished_fraction=0, build_log_shape=shape)) as server:
        output = read_logs(server)
        catalog = discover(SourceCodefresh(config=config(server)), config(server)).catalog.catalog
        data = server.data
        want = {st.doc["id"]: progress.expected_log_text(data, st) for st in data.builds if st.started_ms}
        expected = server.expected()["build_logs"]

    rows = records(output)
    assert not errors(output)
    assert len(rows) == expected > 100
    assert by_build(rows) == want, "each step's chunks joined exactly as stored"
    assert any("\x1b[" in row["log"] for row in rows), "colour codes are kept by default"
    schema = next(stream.json_schema for stream in catalog.streams if stream.name == "build_logs")
    validator = jsonschema.Draft7Validator(schema)
    assert not [error.message for row in rows for error in validator.iter_errors(row)][:3]
    assert set(rows[0]) <= set(schema["properties"]), "every field the connector emits is described"
    for row in rows:
        assert row["log_size_bytes"] == len(row["log"].encode()) and row["truncated"] is False
        assert isinstance(row["creationTimeStamp"], int) and row["build_created"].endswith("Z")


def test_strip_ansi_gives_the_same_text_without_escape_codes():
    with SandboxServer(SandboxConfig(builds=15, pipelines=4, unfinished_fraction=0)) as server:
        output = read_logs(server, build_logs_strip_ansi=True)
        want = {
            st.doc["id"]: {
                name: ANSI.sub("", text) for name, text in progress.expected_log_text(server.data, st).items()
            }
            for st in server.data.builds
            if st.started_ms
        }
    assert by_build(records(output)) == want
    assert not any("\x1b" in row["log"] for row in records(output))


def test_a_log_over_the_limit_is_cut_there_and_says_so():
    cfg = SandboxConfig(builds=9, pipelines=3, unfinished_fraction=0, build_log_huge_every=3, build_log_huge_mb=3)
    with SandboxServer(cfg) as server:
        output = read_logs(server, build_logs_max_kb_per_step=64)
        huge_size = progress.huge_log_size(server.data)
        huge_builds = {st.doc["id"] for st in server.data.builds if progress.is_huge(server.data, st) and st.started_ms}
        expected = server.expected()["build_logs"]

    rows = records(output)
    assert len(rows) == expected and not errors(output)
    cut = [row for row in rows if row["truncated"]]
    assert {row["build_id"] for row in cut} == huge_builds and len(cut) == len(huge_builds) >= 2
    for row in cut:
        kept = row["log"].encode()
        assert 64 * 1024 - 4 < len(kept) <= 64 * 1024
        assert row["log_size_bytes"] == huge_size > 3_000_000
        assert row["log"].startswith("\x1b[32m[huge]\x1b[0m a very talkative step")
    assert all(row["log_size_bytes"] == len(row["log"].encode()) for row in rows if not row["truncated"])


def test_running_builds_are_skipped_without_a_request_and_read_once_they_have_finished():
    with SandboxServer(SandboxConfig(builds=60, pipelines=6, unfinished_fraction=0.15)) as server:
        running = {st.doc["id"] for st in server.data.builds if not st.finished}
        first = read_logs(server)
        progress_requests = server.stats()["by_route"].get("GET /api/progress/{id}", 0)
        finished_before = sum(1 for st in server.data.builds if st.finished)
        state = first.most_recent_state.stream_state.__dict__ if first.most_recent_state else None

        server.advance(finish_running=True, minutes=30)
        second = read_logs(server, state=state)
        now_done = {
            st.doc["id"]: progress.expected_log_text(server.data, st)
            for st in server.data.builds
            if st.doc["id"] in running and st.started_ms
        }

    assert len(running) >= 8 and not errors(first) and not errors(second)
    assert not running & {row["build_id"] for row in records(first)}
    assert progress_requests == finished_before, "no progress request for a running build"
    assert {k: v for k, v in by_build(records(second)).items() if k in running} == now_done


@pytest.mark.parametrize(
    "switch, said",
    [("build_log_expired_every", "refused its signed URL"), ("build_log_missing_every", "has no archive at")],
)
def test_an_expired_url_or_a_missing_archive_skips_that_log_with_one_line_and_the_sync_goes_on(switch, said):
    with SandboxServer(SandboxConfig(builds=40, pipelines=6, unfinished_fraction=0, **{switch: 4})) as server:
        output = read_logs(server)
        hit = [st for st in server.data.builds if st.finished and (st.index + 1) % 4 == 0]
        expected = server.expected()["build_logs"]

    said_lines = [line for line in lines(output) if said in line]
    assert not errors(output)
    assert len(said_lines) == len(hit) >= 5, "one line per log skipped"
    assert all("'build_logs'" in line and "Signature" not in line and "?" not in line for line in said_lines)
    assert len(records(output)) == expected > 0
    assert not {st.doc["id"] for st in hit} & {row["build_id"] for row in records(output)}


def test_the_api_key_never_reaches_the_storage_host_and_no_delete_is_ever_sent():
    with SandboxServer(SandboxConfig(builds=40, pipelines=6, unfinished_fraction=0.1)) as server:
        server.set_faults(
            [
                # Retried requests must not turn into anything else (each retry waits: a few faults only).
                {"match": {"path": "^/api/progress/"}, "kind": "status", "status": 502, "every": 5, "times": 3},
                {
                    "match": {"path": f"^/{progress.STORAGE_BUCKET}/"},
                    "kind": "status",
                    "status": 503,
                    "every": 4,
                    "times": 3,
                },
                {"match": {"path": f"^/{progress.STORAGE_BUCKET}/"}, "kind": "drop", "every": 7, "times": 2},
                {"match": {"path": f"^/{progress.STORAGE_BUCKET}/"}, "kind": "malformed", "every": 6, "times": 2},
            ]
        )
        output = read_logs(server, num_workers=4)
        stats = server.stats()
        expected = server.expected()["build_logs"]
        storage_origin, api_origin = server.storage_url, server.url

    assert storage_origin != api_origin, "the storage is another origin than the API"
    assert len(records(output)) == expected and not errors(output), "retried through the faults"
    assert stats["storage"]["requests"] > expected // 10 and stats["storage"]["with_authorization"] == 0
    assert stats["progress_deletes"] == 0
    assert sorted(index for index, fired in stats["faults_fired"].items() if fired) == [0, 1, 2, 3], "every fault hit"
    assert not [route for route in stats["by_route"] if not route.startswith("GET ")]
    assert SANDBOX_API_KEY not in json.dumps([lines(output), records(output)])


# A read of build_logs in a subprocess that reports its own peak memory (ru_maxrss, kB) on stderr.
_MEASURED_READ = (
    "import resource, sys\n"
    "sys.argv = ['source-codefresh'] + sys.argv[1:]\n"
    "try:\n"
    "    from source_codefresh.run import run\n"
    "    run()\n"
    "finally:\n"
    "    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
)


def _peak_rss_mb_of_a_read(tmp_path: Path, huge_every: int) -> tuple:
    cfg = SandboxConfig(
        builds=8, pipelines=3, unfinished_fraction=0, build_log_huge_every=huge_every, build_log_huge_mb=50
    )
    with SandboxServer(cfg) as server:
        (tmp_path / "config.json").write_text(json.dumps(config(server)))
        (tmp_path / "catalog.json").write_text(
            json.dumps(
                {
                    "streams": [
                        {
                            "stream": {
                                "name": "build_logs",
                                "json_schema": {},
                                "supported_sync_modes": ["full_refresh"],
                            },
                            "sync_mode": "full_refresh",
                            "destination_sync_mode": "overwrite",
                        }
                    ]
                }
            )
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _MEASURED_READ,
                "read",
                "--config",
                str(tmp_path / "config.json"),
                "--catalog",
                str(tmp_path / "catalog.json"),
            ],
            capture_output=True,
            cwd=ROOT,
            timeout=300,
        )
    peak = re.search(rb"PEAK_RSS_KB (\d+)", proc.stderr)
    assert proc.returncode == 0 and peak, proc.stderr.decode(errors="replace")[-2000:]
    rows = [
        json.loads(line)["record"]["data"] for line in proc.stdout.splitlines() if line.startswith(b'{"type":"RECORD"')
    ]
    return int(peak.group(1)) / 1024, max(row["log_size_bytes"] for row in rows)


def test_memory_stays_flat_on_a_50_mb_log(tmp_path):
    small_peak, small_largest = _peak_rss_mb_of_a_read(tmp_path, huge_every=0)
    huge_peak, huge_largest = _peak_rss_mb_of_a_read(tmp_path, huge_every=5)

    assert small_largest < 10_000 and huge_largest > 50_000_000, "the second read did meet a 50 MB log"
    assert huge_peak - small_peak < 25, (
        f"reading a 50 MB log raised the connector's peak memory by {huge_peak - small_peak:.0f} MB "
        f"({small_peak:.0f} MB -> {huge_peak:.0f} MB)"
    )
