"""The README's PyAirbyte snippet runs as written: from the repository root, in a shell where the venv is not active
(the snippet activates it), it reads every stream of the sandbox into PyAirbyte's DuckDB cache with the row counts the
sandbox holds. The same read by `pip_url` and `docker_image` is scripts/pyairbyte_sync.py (it installs or builds the
connector first)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Dict

import pytest

duckdb = pytest.importorskip("duckdb", reason="PyAirbyte is installed by the README's test command (--group pyairbyte)")

from codefresh_sandbox import SandboxConfig, SandboxServer  # noqa: E402
from codefresh_sandbox.expected import expected_records  # noqa: E402

pytestmark = pytest.mark.pyairbyte

ROOT = Path(__file__).resolve().parent.parent


def readme_pyairbyte_snippet() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("With PyAirbyte", 1)[1]
    (block,) = re.findall(r"```bash\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    return block


def test_the_readme_snippet_reads_every_stream_into_duckdb_as_written(tmp_path):
    snippet = readme_pyairbyte_snippet()
    assert 'local_executable="source-codefresh"' in snippet and "source .venv/bin/activate" in snippet
    # A shell as a reader opens it: no venv active, PATH without the venv's bin.
    venv_bin = str(ROOT / ".venv" / "bin")
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "AIRBYTE_OFFLINE_MODE")}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if part != venv_bin)
    env["AIRBYTE_PROJECT_DIR"] = str(tmp_path)  # PyAirbyte's cache and scratch files go here, not into the clone
    env["DO_NOT_TRACK"] = "1"

    done = subprocess.run(
        ["bash", "-c", snippet], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "status" in done.stdout and "created" in done.stdout, done.stdout
    with duckdb.connect(str(tmp_path / ".cache" / "default_cache" / "default_cache.duckdb"), read_only=True) as db:
        tables = [row[0] for row in db.execute("select table_name from information_schema.tables").fetchall()]
        counts: Dict[str, int] = {
            table: db.execute(f'select count(*) from main."{table}"').fetchone()[0]
            for table in tables
            if not table.startswith("_airbyte")
        }
    with SandboxServer(SandboxConfig(builds=50)) as sandbox:  # the snippet's sandbox: the same data
        expected = sandbox.expected()
    assert len(counts) >= 25, sorted(counts)
    for stream, rows in counts.items():
        want = expected_records(expected, stream)
        if want is None:  # analytics rows depend on the day of the read
            assert rows > 0, stream
        else:
            assert rows == want, f"{stream}: {rows} rows in DuckDB, the sandbox holds {want}"
