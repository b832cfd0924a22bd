"""Every stream of the sandbox through PyAirbyte, the way a user runs the connector from Python, and the rows each
stream got in PyAirbyte's DuckDB cache next to what the sandbox holds.

    .venv/bin/python scripts/pyairbyte_sync.py --via local_executable   # this venv's `source-codefresh`
    .venv/bin/python scripts/pyairbyte_sync.py --via pip_url            # PyAirbyte installs this clone into a venv
    .venv/bin/python scripts/pyairbyte_sync.py --via docker_image --image airbyte/source-codefresh:1.0.0

docker_image needs the image (`docker build -t airbyte/source-codefresh:1.0.0 .`) and runs it on the host network,
where the sandbox listens. Exit status 1 when a stream's rows differ from the sandbox's (or a stream is empty).
PyAirbyte's scratch files (its venv for pip_url, the cache) go to a temporary directory unless --keep DIR is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

# PyAirbyte reads these when it is imported: the connector is looked up nowhere (it is not in Airbyte's registry yet)
# and nothing is reported to Airbyte.
os.environ["AIRBYTE_OFFLINE_MODE"] = "1"
os.environ.setdefault("DO_NOT_TRACK", "1")
# pip_url: PyAirbyte makes the connector's venv with uv when uv is on PATH, else it must be told to use pip.
if shutil.which("uv") is None:
    os.environ.setdefault("AIRBYTE_NO_UV", "1")

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--via", choices=["local_executable", "pip_url", "docker_image"], required=True)
    parser.add_argument("--image", default="airbyte/source-codefresh:1.0.0", help="for --via docker_image")
    parser.add_argument("--builds", type=int, default=100, help="builds in the sandbox (default 100)")
    parser.add_argument("--keep", type=Path, help="keep PyAirbyte's files (venv, cache) in this directory")
    options = parser.parse_args()

    work = options.keep or Path(tempfile.mkdtemp(prefix="pyairbyte-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["AIRBYTE_PROJECT_DIR"] = str(work)
    import airbyte as ab  # after the environment above

    from codefresh_sandbox import SANDBOX_API_KEY, SandboxConfig, SandboxServer
    from codefresh_sandbox.expected import connector_command, expected_records, sandbox_config

    how = {
        "local_executable": {"local_executable": connector_command()[0]},
        "pip_url": {"pip_url": str(ROOT), "install_root": work},
        "docker_image": {"docker_image": options.image, "use_host_network": True},
    }[options.via]
    with SandboxServer(SandboxConfig(builds=options.builds)) as sandbox:
        started = time.monotonic()
        source = ab.get_source("source-codefresh", config=sandbox_config(sandbox.base_url, SANDBOX_API_KEY), **how)
        source.check()
        streams = source.get_available_streams()
        source.select_all_streams()
        cache = ab.DuckDBCache(db_path=work / "codefresh.duckdb", cache_dir=work / "cache")
        result = source.read(cache=cache, force_full_refresh=True)
        elapsed = time.monotonic() - started
        expected = sandbox.expected()

    print(f"\nPyAirbyte {version('airbyte')}, --via {options.via}: {how}")
    print(f"{'stream':<24} {'rows':>8} {'sandbox':>8}")
    print("-" * 42)
    problems = 0
    for name in streams:
        rows = len(result[name].to_pandas())
        want = expected_records(expected, name)
        differs = rows == 0 or (want is not None and rows != want)
        problems += differs
        print(f"{name:<24} {rows:>8} {'-' if want is None else want:>8}{'  <- differs' if differs else ''}")
    print("-" * 42)
    print(f"{len(streams)} streams in {elapsed:.0f} s (install included); -: depends on the day of the read")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
