"""How fast, and how lean, source-codefresh reads builds and build details, against the Codefresh sandbox.

    .venv/bin/python scripts/benchmark.py                    # everything (749 s on 2 CPUs: docs/benchmark.md)
    .venv/bin/python scripts/benchmark.py --skip-dlt --skip-big --latencies 25   # quick
    .venv/bin/python scripts/benchmark.py --builds 5000 --latencies 50 --workers 32

Needs the benchmark dependency group: `.venv/bin/python -m pip install --group benchmark`.

Every measured reader runs in its own subprocess against a sandbox that runs in yet another process
(`python -m codefresh_sandbox`), so a contender's peak RSS and CPU time are its own: the peak is the process
tree's high-water mark (VmHWM, summed over the tree), sampled every 50 ms; the CPU time (user + system) is the
contender's and its children's, from the kernel when it exits. Request counts are the sandbox's own
(`/_sandbox/stats`, reset before each run). Wall times include interpreter start-up and imports.

Part 1, builds + build_details at `--builds` builds, at each latency of `--latencies` (ms per request):
  (a) source-codefresh `read` (builds + build_details, full refresh, `--workers` workers, the per-minute request
      ceiling lifted), its stdout counted line by line;
  (b) dlt's REST API source (`rest_api_source`) as a user would configure it for Codefresh, into DuckDB, with
      dlt's defaults (one request at a time);
  (b2) the same with `rest_api_source(..., parallelized=True)` (dlt's extract workers, 5 by default);
  (c) a plain sequential `requests` loop: the list pages in order, then each build's detail (at the first latency
      of `--latencies` only: it takes requests x latency);
  (d) the lower bound, computed: list pages x latency (in order) + detail requests x latency / workers.
Part 2, the second incremental sync of builds, build_details and build_steps: an account with `--account-builds`
  builds spread over whole days (~`--build-every-s` seconds apart, rounded to whole days; the newest `--running` not
  finished), then `--new-builds` new builds and the running ones finished: the requests and records of the second
  sync, this release's state against the previous release's (re-reading the 24 hours before the newest build).
Part 3, start-up: `source-codefresh read` of a one-request stream (`current_user`), wall and CPU time.
Part 4, zero latency, `--big-builds` builds: source-codefresh reading `builds` alone vs a raw `requests` + `json`
  loop over the same listing (records/s).
Part 5, scale: source-codefresh's wall time and peak RSS for builds + build_details at `--builds` and
  `--big-builds` builds (the first latency).
Part 6, builds + build_logs at `--builds` builds (the first latency, at the API and the log storage): wall time, API
  requests, log downloads and how many of them carried an Authorization header (none should).
The targets of the 150 ms part are printed next to its figures with PASS or MISS; other latencies are reported
without a target; the script never fails on a miss.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from codefresh_sandbox import HARNESS_ENV, SANDBOX_API_KEY
from codefresh_sandbox.expected import connector_command, sandbox_config
from codefresh_sandbox.scenarios import configured_catalog, fresh_catalog

ROOT = Path(__file__).resolve().parent.parent  # the repository (the benchmark runs commands there)

PAGE_SIZE = 100
UNLIMITED_REQUESTS_PER_MINUTE = 1_000_000
DEFAULT_REQUESTS_PER_MINUTE = 6000
DETAIL_STREAMS = ["builds", "build_details"]

# Targets: (label, comparison) -- printed with PASS/MISS, never enforced.
TARGET_VS_DLT = 10.0  # (a) at least this many times faster than (b), at TARGET_LATENCY_MS
TARGET_VS_BOUND = 1.2  # (a) within this factor of (d), at TARGET_LATENCY_MS
TARGET_LATENCY_MS = 150.0  # the latency the targets above are set for (the network decides, not the CPU)
TARGET_SECOND_SYNC_EXTRA = 5  # second sync: requests beyond new + unfinished builds' and their listing pages
TARGET_ZERO_LATENCY = 0.5  # connector records/s >= this share of the raw loop's
TARGET_RSS_MB = 300.0  # connector peak RSS below this
TARGET_RSS_RATIO = 1.2  # peak RSS at --big-builds / at --builds at most this


# ---------------------------------------------------------------------------------------------------------------------
# The sandbox, in its own process
# ---------------------------------------------------------------------------------------------------------------------


class Sandbox:
    """`python -m codefresh_sandbox` on a free port; stats through its control endpoints."""

    def __init__(self, builds: int, latency_ms: float, *extra: str) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "codefresh_sandbox", "--port", "0", "--builds", str(builds)]
            + ["--latency-ms", str(latency_ms), *extra],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._proc.stdout.readline().strip()
        if not line.startswith("SANDBOX_BASE_URL="):
            self.stop()
            raise RuntimeError(f"the sandbox did not start (it printed {line!r})")
        self.base_url = line.split("=", 1)[1]
        self.root = self.base_url[: -len("/api")]

    def _control(self, name: str, data: Optional[bytes] = None) -> Any:
        """GET (or, with `data`, POST) /_sandbox/<name>; its JSON answer."""
        request = urllib.request.Request(f"{self.root}/_sandbox/{name}", data=data)
        with urllib.request.urlopen(request, timeout=60) as answer:
            body = answer.read()
        return json.loads(body) if body else None

    def stats(self) -> Dict[str, Any]:
        return self._control("stats")

    def expected(self) -> Dict[str, Any]:
        return self._control("expected")

    def reset_stats(self) -> None:
        self._control("reset-stats", b"")

    def advance(self, **changes: Any) -> Dict[str, Any]:
        return self._control("advance", json.dumps(changes).encode())

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def sandbox_capacity(sandbox: Sandbox, concurrency: int, requests_count: int) -> Tuple[float, float]:
    """Build-detail requests per second the sandbox serves to a light client (http.client, one connection per
    thread) with `concurrency` requests in flight (ideal: concurrency / latency), and the kB of a listing page."""
    split = urlsplit(sandbox.base_url)
    local = threading.local()

    def get(path: str, headers: Optional[Dict[str, str]] = None) -> bytes:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(split.hostname, split.port, timeout=60)
        local.conn.request("GET", split.path + path, headers={"Authorization": SANDBOX_API_KEY, **(headers or {})})
        answer = local.conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"sandbox answered {answer.status} for {path}")
        return body

    first_page = get(f"/workflow?limit={PAGE_SIZE}&page=1", {"X-Pagination-Session-Id": str(uuid.uuid4())})
    ids = [build["id"] for build in json.loads(first_page)["workflows"]["docs"]]
    paths = [f"/builds/{ids[i % len(ids)]}" for i in range(requests_count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(get, paths))
    return requests_count / (time.perf_counter() - started), len(first_page) / 1024


# ---------------------------------------------------------------------------------------------------------------------
# Running one contender in a subprocess: wall time, peak RSS of its process tree, its stdout line by line
# ---------------------------------------------------------------------------------------------------------------------


class PeakRssSampler(threading.Thread):
    """Samples the high-water mark (VmHWM) of a process and its descendants every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._peaks: Dict[int, int] = {}
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                processes = [self._root] + self._root.children(recursive=True)
            except self._psutil.Error:
                processes = []
            for process in processes:
                self._peaks[process.pid] = max(self._peaks.get(process.pid, 0), self._high_water_mark(process))
            self._done.wait(0.05)

    def _high_water_mark(self, process: Any) -> int:
        """Peak resident set size in bytes: VmHWM on Linux (catches peaks between samples), else the current RSS."""
        try:
            with open(f"/proc/{process.pid}/status", "rb") as status:
                for line in status:
                    if line.startswith(b"VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return process.memory_info().rss
        except self._psutil.Error:
            return 0

    def stop(self) -> float:
        self._done.set()
        self.join()
        return sum(self._peaks.values()) / 2**20


@dataclass
class Result:
    """One row of a table."""

    name: str
    wall_s: float
    requests: Optional[int]
    records: Dict[str, int]
    peak_rss_mb: Optional[float] = None
    notes: List[str] = field(default_factory=list)
    first_record_s: Optional[float] = None
    cpu_s: Optional[float] = None
    by_route: Dict[str, int] = field(default_factory=dict)
    states: List[Dict[str, Any]] = field(default_factory=list)  # the last state message of each stream

    @property
    def total_records(self) -> int:
        return sum(self.records.values())

    @property
    def records_per_s(self) -> float:
        return self.total_records / self.wall_s if self.wall_s else 0.0


def measured_on_sandbox(
    sandbox: Sandbox,
    name: str,
    command: List[str],
    on_line: Callable[[bytes], None],
    cwd: Path,
    env: Optional[Dict[str, str]] = None,
) -> Result:
    """Runs a contender between a stats reset and a stats read, hands each stdout line to `on_line`, and measures
    wall time, peak RSS and CPU time (user + system of the process and of the children it waited for, as the kernel
    counts them when it exits); fails loudly if the contender failed. The row's records are the caller's to fill."""
    sandbox.reset_stats()
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env={**os.environ, **(env or {})}
        )
        sampler = PeakRssSampler(process.pid)
        sampler.start()
        for line in process.stdout:
            on_line(line)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        peak_mb = sampler.stop()
        stats = sandbox.stats()
        if os.waitstatus_to_exitcode(status):
            stderr.seek(0)
            tail = stderr.read()[-2000:].decode(errors="replace")
            raise RuntimeError(f"{name} exited with {os.waitstatus_to_exitcode(status)}:\n{tail}")
    if stats.get("pagination_errors"):
        print(f"  warning: {name} caused {stats['pagination_errors']} pagination errors", flush=True)
    routes = ", ".join(f"{route} {n}" for route, n in sorted(stats["by_route"].items()))
    return Result(
        name,
        wall,
        stats["requests"],
        {},
        peak_mb,
        notes=[f"requests: {routes}"],
        cpu_s=usage.ru_utime + usage.ru_stime,
        by_route=stats["by_route"],
    )


# ---------------------------------------------------------------------------------------------------------------------
# (a) source-codefresh
# ---------------------------------------------------------------------------------------------------------------------


class RecordCounter:
    """Counts RECORD lines per stream without parsing JSON; keeps error traces, the first record's time and the last
    state message of each stream."""

    MARK = b'"type":"RECORD"'
    STREAM = b'"stream":"'

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.errors: List[str] = []
        self.started = time.perf_counter()
        self.first_record_s: Optional[float] = None
        self.states: Dict[str, Any] = {}

    def __call__(self, line: bytes) -> None:
        if self.MARK in line:
            start = line.index(self.STREAM) + len(self.STREAM)
            self.counts[line[start : line.index(b'"', start)].decode()] += 1
            if self.first_record_s is None:
                self.first_record_s = time.perf_counter() - self.started
        elif b'"type":"STATE"' in line:
            state = json.loads(line)["state"]
            self.states[state["stream"]["stream_descriptor"]["name"]] = state
        elif b'"type":"TRACE"' in line and b'"type":"ERROR"' in line:
            self.errors.append(line[:400].decode(errors="replace"))


def run_connector(
    sandbox: Sandbox,
    catalog: Dict[str, Any],
    names: List[str],
    workers: int,
    workdir: Path,
    label: str,
    state: Optional[List[Dict[str, Any]]] = None,
    incremental: bool = False,
    **config: Any,
) -> Result:
    """`source-codefresh read` of the streams `names` of `catalog` (from `discover`), its stdout counted."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path, catalog_path = workdir / "config.json", workdir / "catalog.json"
    lifted = {"num_workers": workers, "max_requests_per_minute": UNLIMITED_REQUESTS_PER_MINUTE}
    config_path.write_text(json.dumps(sandbox_config(sandbox.base_url, SANDBOX_API_KEY, **lifted, **config)))
    catalog_path.write_text(json.dumps(configured_catalog(catalog, names, incremental)))
    counter = RecordCounter()
    command = connector_command() + ["read", "--config", str(config_path), "--catalog", str(catalog_path)]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        command += ["--state", str(workdir / "state.json")]
    result = measured_on_sandbox(sandbox, label, command, counter, workdir)
    result.records = {n: counter.counts.get(n, 0) for n in names}
    result.states = list(counter.states.values())
    result.first_record_s = counter.first_record_s
    if counter.first_record_s is not None:
        result.notes.insert(0, f"first record after {counter.first_record_s:.2f} s")
    result.notes += [f"ERROR trace: {error}" for error in counter.errors[:3]]
    return result


# ---------------------------------------------------------------------------------------------------------------------
# (b) dlt and (c) the plain requests loop: run as `benchmark.py --child ...` in a subprocess
# ---------------------------------------------------------------------------------------------------------------------


def dlt_rest_api_config(base_url: str) -> Dict[str, Any]:
    """dlt's REST API source configured as a user would for Codefresh (dlt 1.31 syntax)."""
    return {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "auth": {"type": "api_key", "name": "Authorization", "api_key": SANDBOX_API_KEY, "location": "header"},
        },
        "resources": [
            {
                "name": "builds",
                "primary_key": "id",
                "endpoint": {
                    "path": "workflow",
                    "params": {"limit": PAGE_SIZE},
                    "data_selector": "workflows.docs",
                    "paginator": {
                        "type": "page_number",
                        "base_page": 1,
                        "page_param": "page",
                        "total_path": None,
                        "stop_after_empty_page": True,
                    },
                },
            },
            {
                "name": "build_details",
                "primary_key": "id",
                "endpoint": {
                    "path": "builds/{resources.builds.id}",
                    "data_selector": "$",  # the answer is the record; unset, dlt would pick its first nested list
                    "paginator": "single_page",
                },
            },
        ],
    }


def dlt_defaults() -> str:
    """The parallelism a dlt user gets without configuring any, and with `parallelized=True`."""
    from dlt.extract.pipe_iterator import PipeIterator
    from dlt.load.configuration import LoaderConfiguration
    from dlt.normalize.configuration import NormalizeConfiguration

    extract = PipeIterator.PipeIteratorConfiguration()
    normalize = NormalizeConfiguration()
    load = LoaderConfiguration()
    return (
        f"rest_api_source(parallelized=False): the extract step sends one request at a time (the builds pages, "
        f"then each build's detail as the pages arrive); with parallelized=True the resources run in dlt's "
        f"extract pool, [extract] workers={extract.workers}; normalize pool_type={normalize.pool_type} workers="
        f"{normalize.workers} (None = CPU count, {os.cpu_count()} here); load workers={load.workers}"
    )


def child_dlt(base_url: str, workdir: Path, parallelized: bool) -> Dict[str, Any]:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    pipeline = dlt.pipeline(
        pipeline_name="codefresh_benchmark",
        pipelines_dir=str(workdir / "pipelines"),
        destination=dlt.destinations.duckdb(str(workdir / "benchmark.duckdb")),
        dataset_name="codefresh",
    )
    pipeline.run(rest_api_source(dlt_rest_api_config(base_url), parallelized=parallelized))
    with pipeline.sql_client() as client:
        counts = {name: client.execute_sql(f"SELECT count(*) FROM {name}")[0][0] for name in DETAIL_STREAMS}
    steps = {step.step: (step.finished_at - step.started_at).total_seconds() for step in pipeline.last_trace.steps}
    return {"records": counts, "steps": steps}


def child_requests_loop(base_url: str, details: bool) -> Dict[str, Any]:
    """The builds listing page by page (one pagination session), then, if asked, each build's detail."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = SANDBOX_API_KEY
    listing = {"X-Pagination-Session-Id": f"benchmark-{uuid.uuid4()}"}
    ids: List[str] = []
    page = 1
    while True:
        answer = session.get(f"{base_url}/workflow", params={"limit": PAGE_SIZE, "page": page}, headers=listing)
        answer.raise_for_status()
        body = answer.json()
        ids.extend(build["id"] for build in body["workflows"]["docs"])
        if not body["pagination"]["nextPage"] or not body["workflows"]["docs"]:
            break
        page += 1
    records = {"builds": len(ids)}
    if details:
        count = 0
        for build_id in ids:
            answer = session.get(f"{base_url}/builds/{build_id}")
            answer.raise_for_status()
            count += isinstance(answer.json(), dict)
        records["build_details"] = count
    return {"records": records}


def run_child(sandbox: Sandbox, kind: str, label: str, workdir: Path) -> Result:
    """Runs `benchmark.py --child kind` and reads the JSON result it prints last."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines: List[bytes] = []
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--base-url", sandbox.base_url]
    command += ["--workdir", str(workdir)]
    env = {"RUNTIME__DLTHUB_TELEMETRY": "false"}  # no network calls to dlt's telemetry from the benchmark
    result = measured_on_sandbox(sandbox, label, command, lines.append, workdir, env)
    payload = json.loads(lines[-1])
    result.records = payload["records"]
    if payload.get("steps"):
        result.notes.insert(0, "dlt steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in payload["steps"].items()))
    return result


def child_main(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    if args.child in ("dlt", "dlt-parallel"):
        payload = child_dlt(args.base_url, workdir, parallelized=args.child == "dlt-parallel")
    else:
        payload = child_requests_loop(args.base_url, details=args.child == "requests-details")
    print(json.dumps(payload), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# (d) the lower bound
# ---------------------------------------------------------------------------------------------------------------------


def list_pages(builds: int) -> int:
    return max(1, math.ceil(builds / PAGE_SIZE))


def lower_bound(builds: int, latency_ms: float, workers: int) -> Result:
    """List pages strictly in order, then the details `workers` at a time: no client cost at all."""
    latency = latency_ms / 1000.0
    wall = list_pages(builds) * latency + builds * latency / workers
    return Result(
        f"(d) lower bound ({workers} workers)",
        wall,
        list_pages(builds) + builds,
        {"builds": builds, "build_details": builds},
    )


def print_ceiling_note(row: Result) -> None:
    """The least time the row's requests take under the default ceiling: the budget lets a sixtieth of
    DEFAULT_REQUESTS_PER_MINUTE through in any second, so request k waits for second (k - 1) // per_second."""
    per_second = max(DEFAULT_REQUESTS_PER_MINUTE // 60, 1)
    print(
        f"  {row.name.split(' ')[0]} at the default ceiling ({DEFAULT_REQUESTS_PER_MINUTE:,} requests per minute, "
        f"kept as {DEFAULT_REQUESTS_PER_MINUTE // 60} in any second) its {row.requests:,} requests would take at "
        f"least {(max(row.requests, 1) - 1) // per_second:.0f} s"
    )


# ---------------------------------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def cpu_per_thousand(row: Result, builds: int) -> str:
    return f"{1000 * row.cpu_s / builds:.2f}" if row.cpu_s is not None and builds else "-"


def print_table(rows: List[Result], dlt_row: Optional[Result], bound: Result, builds: int) -> None:
    header = (
        f"{'contender':<40} {'wall s':>8} {'requests':>9} {'records':>8} {'records/s':>10} "
        f"{'peak RSS MB':>12} {'CPU s/1k builds':>16} {'÷ (b)':>7} {'÷ (d)':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        rss = f"{row.peak_rss_mb:.0f}" if row.peak_rss_mb is not None else "-"
        vs_dlt = f"{row.wall_s / dlt_row.wall_s:.3f}" if dlt_row else "-"
        print(
            f"{row.name:<40} {row.wall_s:>8.2f} {row.requests if row.requests is not None else '-':>9} "
            f"{row.total_records:>8} {row.records_per_s:>10.0f} {rss:>12} {cpu_per_thousand(row, builds):>16} "
            f"{vs_dlt:>7} {f'{row.wall_s / bound.wall_s:.2f}' if bound.wall_s else '-':>7}"
        )
    print(
        "(÷ (b), ÷ (d): wall time divided by that of (b) dlt's defaults and (d) the lower bound; CPU: user + system "
        "time of the contender's processes per 1,000 builds read)"
    )
    for row in rows:
        for note in row.notes:
            print(f"  {row.name.split(' ')[0]} {note}")


def check_counts(result: Result, expected: Dict[str, int]) -> None:
    for stream, count in expected.items():
        if result.records.get(stream) != count:
            print(
                f"  WARNING: {result.name} read {result.records.get(stream)} {stream} records, expected {count}",
                flush=True,
            )


# ---------------------------------------------------------------------------------------------------------------------
# The parts
# ---------------------------------------------------------------------------------------------------------------------


def part_detail_sync(
    args: argparse.Namespace,
    latency_ms: float,
    workdir: Path,
    with_loop: bool,
    streams: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    print(
        f"\n== 1. builds + build_details: {args.builds:,} builds, {latency_ms:g} ms per request, "
        f"{args.workers} workers ==",
        flush=True,
    )
    expected = {"builds": args.builds, "build_details": args.builds}
    workdir = workdir / f"latency_{latency_ms:g}"
    workdir.mkdir(parents=True, exist_ok=True)
    with Sandbox(args.builds, latency_ms) as sandbox:
        probe = max(800, 50 * args.workers)
        capacity, page_kb = sandbox_capacity(sandbox, args.workers, probe)
        ideal = args.workers / (latency_ms / 1000.0) if latency_ms else float("inf")
        print(
            f"sandbox capacity: {capacity:.0f} req/s with {args.workers} concurrent connections "
            f"(light http.client client, {probe} detail requests; ideal {ideal:.0f} req/s = "
            f"{100 * capacity / ideal:.0f} %); a listing page of {PAGE_SIZE} builds is "
            f"{page_kb:.0f} kB",
            flush=True,
        )
        streams = streams or fresh_catalog(sandbox.base_url, workdir)

        label = f"(a) source-codefresh ({args.workers} workers)"
        rows = [run_connector(sandbox, streams, DETAIL_STREAMS, args.workers, workdir / "a", label)]
        check_counts(rows[0], expected)
        children = [] if args.skip_dlt else [("dlt", "(b) dlt rest_api_source -> DuckDB", "b")]
        children += [] if args.skip_dlt else [("dlt-parallel", "(b2) dlt, parallelized=True", "b2")]
        children += [("requests-details", "(c) sequential requests loop", "c")] if with_loop else []
        for kind, label, sub in children:
            rows.append(run_child(sandbox, kind, label, workdir / sub))
            check_counts(rows[-1], expected)
    connector = rows[0]
    dlt_row, dlt_parallel = (None, None) if args.skip_dlt else (rows[1], rows[2])
    bound = lower_bound(args.builds, latency_ms, args.workers)
    rows.append(bound)
    print()
    print_table(rows, dlt_row, bound, args.builds)
    if not with_loop:
        print(
            f"  (c) the sequential loop is left out at this latency: it takes about "
            f"{(list_pages(args.builds) + args.builds) * latency_ms / 1000:.0f} s (requests x latency)"
        )
    print_ceiling_note(connector)
    if not args.skip_dlt:
        print(f"  (b) dlt: {dlt_defaults()}")
    return {
        "streams": streams,
        "connector": connector,
        "dlt": dlt_row,
        "dlt_parallel": dlt_parallel,
        "bound": bound,
        "latency_ms": latency_ms,
    }


def part_second_sync(args: argparse.Namespace, streams: Dict[str, Any], workdir: Path) -> Dict[str, Any]:
    """The second incremental sync, this release's state against the previous release's `{"created": <newest>}`
    (which re-read the `builds_lookback_hours` = 24 before the newest build at every sync: this release reads such a
    state exactly so once, which is what the previous release did at every sync)."""
    builds, new, running = args.account_builds, args.new_builds, args.running
    days = max(1, round(builds * args.build_every_s / 86400))
    print(
        f"\n== 2. the second incremental sync: {builds:,} builds over {days} days (one every "
        f"{days * 86400 / builds:.0f} s), the newest {running} not finished; then {new} new builds and those "
        f"{running} finished ==",
        flush=True,
    )
    names = ["builds", "build_details", "build_steps"]
    rows: List[Result] = []
    with Sandbox(builds, 0.0, "--build-days", str(days), "--unfinished-fraction", str(running / builds)) as sandbox:
        unfinished = sandbox.expected()["builds_unfinished"]
        first = run_connector(sandbox, streams, names, args.workers, workdir / "first", "first sync", incremental=True)
        newest = first.states[0]["stream"]["stream_state"]
        sandbox.advance(new_builds=new, finish_running=True, minutes=60)
        new_state = first.states
        old_state = [
            {
                "type": "STREAM",
                "stream": {
                    "stream_descriptor": state["stream"]["stream_descriptor"],
                    "stream_state": {
                        key: value for key, value in state["stream"]["stream_state"].items() if key != "unfinished"
                    },
                },
            }
            for state in first.states
        ]
        for label, state, config in (
            ("this release", new_state, {}),
            ("previous release (24 h lookback)", old_state, {"builds_lookback_hours": 24}),
        ):
            row = run_connector(
                sandbox,
                streams,
                names,
                args.workers,
                workdir / label.split(" ")[0],
                label,
                state=state,
                incremental=True,
                **config,
            )
            rows.append(row)
    pages = list_pages(new + unfinished)
    print(
        f"first sync: {first.records['builds']:,} builds, {first.records['build_steps']:,} build steps, "
        f"{first.requests:,} requests; state of builds {json.dumps(newest)[:160]}..."
    )
    header = (
        f"{'second sync':<34} {'builds':>7} {'details':>8} {'steps':>7} {'listing req':>12} {'detail req':>11} "
        f"{'steps req':>10} {'all req':>8} {'wall s':>7}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        routes = row.by_route
        print(
            f"{row.name:<34} {row.records['builds']:>7} {row.records['build_details']:>8} "
            f"{row.records['build_steps']:>7} {routes.get('GET /api/workflow', 0):>12} "
            f"{routes.get('GET /api/builds/{id}', 0):>11} "
            f"{routes.get('GET /api/workflow/{id}/context-revision', 0):>10} "
            f"{row.requests:>8} {row.wall_s:>7.2f}"
        )
    ceiling = 3 * pages + 2 * (new + unfinished) + TARGET_SECOND_SYNC_EXTRA
    print(
        f"target: builds read = new + unfinished = {new} + {unfinished} = {new + unfinished}; requests <= "
        f"3 streams x {pages} listing page(s) + 2 x {new + unfinished} per-build + {TARGET_SECOND_SYNC_EXTRA} = "
        f"{ceiling}"
    )
    return {"rows": rows, "wanted": new + unfinished, "ceiling": ceiling}


def part_startup(args: argparse.Namespace, streams: Dict[str, Any], workdir: Path) -> None:
    """`source-codefresh read` of current_user (one request): the start-up a sync pays before its first request."""
    runs = 5
    print(f"\n== 3. start-up: `source-codefresh read` of current_user (one request), median of {runs} ==", flush=True)
    with Sandbox(10, 0.0) as sandbox:
        rows = [
            run_connector(sandbox, streams, ["current_user"], 1, workdir / "startup", "start-up") for _ in range(runs)
        ]
    wall, cpu = median(row.wall_s for row in rows), median(row.cpu_s or 0.0 for row in rows)
    print(
        f"source-codefresh read, one stream: {wall:.2f} s wall, {cpu:.2f} s CPU (interpreter, CDK imports, "
        f"manifest, the catalog's streams only)"
    )


def part_zero_latency(args: argparse.Namespace, streams: Dict[str, Any], workdir: Path) -> Dict[str, Result]:
    print(f"\n== 4. zero latency: builds alone, {args.big_builds:,} builds ==", flush=True)
    with Sandbox(args.big_builds, 0.0) as sandbox:
        connector = run_connector(
            sandbox, streams, ["builds"], args.workers, workdir / "zero_a", "source-codefresh (builds)"
        )
        raw = run_child(sandbox, "requests-listing", "raw requests + json loop", workdir / "zero_raw")
    for row in (connector, raw):
        check_counts(row, {"builds": args.big_builds})
        print(
            f"{row.name:<28} {row.wall_s:>7.2f} s {row.requests:>6} requests {row.total_records:>7} records "
            f"{row.records_per_s:>8.0f} records/s  peak RSS {row.peak_rss_mb:.0f} MB  CPU "
            f"{cpu_per_thousand(row, args.big_builds)} s/1k builds"
        )
        for note in row.notes:
            print(f"  {note}")
    if connector.first_record_s is not None and connector.wall_s > connector.first_record_s:
        # The fixed cost (interpreter, CDK imports, manifest) next to the rate once records flow: both are figures.
        flowing = connector.total_records / (connector.wall_s - connector.first_record_s)
        print(
            f"  source-codefresh from its first record on: {flowing:.0f} records/s "
            f"({flowing / raw.records_per_s:.2f} of the raw loop's rate); start-up {connector.first_record_s:.2f} s"
        )
    return {"connector": connector, "raw": raw}


def part_scale(
    args: argparse.Namespace, latency_ms: float, streams: Dict[str, Any], small: Result, workdir: Path
) -> Result:
    print(
        f"\n== 5. scale: builds + build_details, {args.builds:,} vs {args.big_builds:,} builds, {latency_ms:g} ms ==",
        flush=True,
    )
    with Sandbox(args.big_builds, latency_ms) as sandbox:
        big = run_connector(
            sandbox,
            streams,
            DETAIL_STREAMS,
            args.workers,
            workdir / "big",
            f"source-codefresh ({args.big_builds:,} builds)",
        )
    check_counts(big, {"builds": args.big_builds, "build_details": args.big_builds})
    for builds, row in ((args.builds, small), (args.big_builds, big)):
        bound = lower_bound(builds, latency_ms, args.workers).wall_s
        print(
            f"{builds:>7,} builds: {row.wall_s:>7.2f} s ({1000 * row.wall_s / builds:.2f} ms per build; lower "
            f"bound {bound:.2f} s, x{row.wall_s / bound:.2f}), {row.requests} requests, "
            f"peak RSS {row.peak_rss_mb:.0f} MB, CPU {cpu_per_thousand(row, builds)} s/1k builds"
        )
    for note in big.notes:
        print(f"  {note}")
    print_ceiling_note(big)
    return big


def part_build_logs(args: argparse.Namespace, latency_ms: float, workdir: Path) -> Result:
    """builds + build_logs (opt-in): per finished build a progress job from the API and its log archive from the
    storage host, both with the sandbox's latency; the logs parsed as they stream in and cut per step."""
    print(
        f"\n== 6. builds + build_logs: {args.builds:,} builds, {latency_ms:g} ms per request (API and log storage), "
        f"{args.workers} workers ==",
        flush=True,
    )
    with Sandbox(args.builds, latency_ms) as sandbox:
        (workdir / "logs").mkdir(parents=True, exist_ok=True)
        streams = fresh_catalog(sandbox.base_url, workdir / "logs", sync_build_logs=True)
        row = run_connector(
            sandbox,
            streams,
            ["builds", "build_logs"],
            args.workers,
            workdir / "logs",
            "source-codefresh (builds + build_logs)",
            sync_build_logs=True,
        )
        expected = sandbox.expected()
        storage = sandbox.stats().get("storage") or {}
    check_counts(row, {"builds": args.builds, "build_logs": expected["build_logs"]})
    log_builds = row.by_route.get("GET /api/progress/{id}", 0)
    print(
        f"{row.name}: {row.wall_s:.2f} s, {row.requests} API requests + {storage.get('requests', 0)} log downloads "
        f"({storage.get('with_authorization', 0)} with an Authorization header), {row.records.get('build_logs', 0):,} "
        f"step logs of {log_builds:,} builds, {log_builds / row.wall_s:.0f} builds/s, "
        f"peak RSS {row.peak_rss_mb:.0f} MB, CPU {cpu_per_thousand(row, args.builds)} s/1k builds"
    )
    for note in row.notes:
        print(f"  {note}")
    return row


def print_targets(
    args: argparse.Namespace,
    part1: List[Dict[str, Any]],
    second: Optional[Dict[str, Any]],
    zero: Optional[Dict[str, Result]],
    big: Optional[Result],
) -> None:
    print("\n== targets (figures only; nothing is enforced) ==")
    for part in part1:
        connector, dlt_row, parallel, bound = part["connector"], part["dlt"], part["dlt_parallel"], part["bound"]
        at = f"{part['latency_ms']:g} ms"
        binding = part["latency_ms"] == TARGET_LATENCY_MS
        label = "" if binding else "  (report)"
        checks = []
        if dlt_row:
            x = dlt_row.wall_s / connector.wall_s
            checks.append(
                (f"(a) faster than (b) dlt defaults: {x:7.2f}x   target >= {TARGET_VS_DLT:g}x    ", x >= TARGET_VS_DLT)
            )
        if parallel:
            x = parallel.wall_s / connector.wall_s
            checks.append((f"(a) faster than (b2) dlt parallelized: {x:5.2f}x target > 1x       ", x > 1))
        if bound.wall_s:
            x = connector.wall_s / bound.wall_s
            checks.append(
                (
                    f"(a) vs (d) lower bound:          {x:7.2f}x   target <= {TARGET_VS_BOUND:g}x   ",
                    x <= TARGET_VS_BOUND,
                )
            )
        for text, ok in checks:
            print(f"{at:>7}: {text}{verdict(ok) if binding else ''}{label}")
    if second:
        new_row, old_row = second["rows"]
        print(
            f"second sync: builds read {new_row.records['builds']} (previous release "
            f"{old_row.records['builds']}), target {second['wanted']}   "
            f"{verdict(new_row.records['builds'] == second['wanted'])}"
        )
        print(
            f"second sync: requests {new_row.requests} (previous release {old_row.requests}), target <= "
            f"{second['ceiling']}   {verdict(new_row.requests <= second['ceiling'])}"
        )
    if zero:
        share = zero["connector"].records_per_s / zero["raw"].records_per_s
        print(
            f"zero latency, connector / raw:    {share:7.2f}    target >= {TARGET_ZERO_LATENCY:g}   "
            f"{verdict(share >= TARGET_ZERO_LATENCY)}"
        )
    first = part1[0]["connector"]
    for label, row in ((f"{args.builds:,} builds", first), (f"{args.big_builds:,} builds", big)):
        if row:
            print(
                f"peak RSS, {label + ':':<22}{row.peak_rss_mb:7.0f} MB target < {TARGET_RSS_MB:g} MB "
                f"{verdict(row.peak_rss_mb < TARGET_RSS_MB)}"
            )
    if big:
        ratio = big.peak_rss_mb / first.peak_rss_mb
        print(
            f"peak RSS ratio {args.big_builds:,} / {args.builds:,}: {ratio:5.2f}    target <= "
            f"{TARGET_RSS_RATIO:g}   {verdict(ratio <= TARGET_RSS_RATIO)}"
        )


def load_average() -> str:
    """Other work on the machine slows the CPU-bound contenders: print the load next to the figures."""
    try:
        return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())
    except OSError:
        return "load average unknown"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", type=int, default=2000, help="builds for part 1 (default 2000)")
    parser.add_argument(
        "--latencies",
        default="25,150",
        help="sandbox latencies per request for part 1, in ms, comma-separated (default 25,150)",
    )
    parser.add_argument("--workers", type=int, default=16, help="the connector's num_workers (default 16)")
    parser.add_argument("--big-builds", type=int, default=20000, help="builds for parts 4 and 5 (default 20000)")
    parser.add_argument("--account-builds", type=int, default=2000, help="part 2: builds of the account (2000)")
    parser.add_argument(
        "--build-every-s",
        type=float,
        default=86.4,
        help="part 2: about this many seconds between builds; the account spans whole days (86.4: 2 days)",
    )
    parser.add_argument("--new-builds", type=int, default=50, help="part 2: new builds before the second sync (50)")
    parser.add_argument("--running", type=int, default=10, help="part 2: builds not finished at the first sync (10)")
    parser.add_argument("--skip-dlt", action="store_true", help="leave out (b) and (b2) dlt")
    parser.add_argument("--skip-big", action="store_true", help="leave out parts 4 and 5")
    parser.add_argument("--skip-second-sync", action="store_true", help="leave out part 2")
    parser.add_argument("--skip-loop", action="store_true", help="leave out (c) the sequential requests loop")
    parser.add_argument("--skip-build-logs", action="store_true", help="leave out part 6 (builds + build_logs)")
    parser.add_argument("--keep", metavar="DIR", help="keep configs, catalogs and dlt's files in DIR")
    # Internal: the subprocess side of (b), (b2), (c) and the raw loop of part 4.
    parser.add_argument(
        "--child", choices=["dlt", "dlt-parallel", "requests-details", "requests-listing"], help=argparse.SUPPRESS
    )
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.latencies = [float(value) for value in str(args.latencies).split(",") if value.strip()]
    return args


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.update(HARNESS_ENV)  # the sandbox is plain http on this machine (source_codefresh/transport.py)
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="codefresh-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"source-codefresh benchmark: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {load_average()}")
    print(
        f"The connector runs with max_requests_per_minute={UNLIMITED_REQUESTS_PER_MINUTE:,}: the default ceiling "
        f"of {DEFAULT_REQUESTS_PER_MINUTE:,}/min is a safety budget for real accounts and is lifted here."
    )
    print("command: " + " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])))
    try:
        part1: List[Dict[str, Any]] = []
        streams = None
        for index, latency in enumerate(args.latencies):
            with_loop = index == 0 and not args.skip_loop
            part1.append(part_detail_sync(args, latency, workdir, with_loop=with_loop, streams=streams))
            streams = part1[-1]["streams"]
        second = None if args.skip_second_sync else part_second_sync(args, streams, workdir)
        part_startup(args, streams, workdir)
        zero = big = None
        if not args.skip_big:
            zero = part_zero_latency(args, streams, workdir)
            big = part_scale(args, args.latencies[0], streams, part1[0]["connector"], workdir)
        if not args.skip_build_logs:
            part_build_logs(args, args.latencies[0], workdir)
        print_targets(args, part1, second, zero, big)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nbenchmark took {time.perf_counter() - started:.0f} s; {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
