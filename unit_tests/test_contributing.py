"""CONTRIBUTING.md's table of streams is the manifest's: regenerate it with `scripts/streams_table.py --write`."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]


def _streams_table_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("streams_table", REPO_ROOT / "scripts" / "streams_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_contributing_table_of_streams_matches_the_manifest():
    script = _streams_table_script()
    document = (REPO_ROOT / "CONTRIBUTING.md").read_text()
    expected = script.replace_table(document, script.streams_table(script.resolved_manifest()))
    assert document == expected, (
        "CONTRIBUTING.md's table of streams differs from manifest.yaml: run "
        "`.venv/bin/python scripts/streams_table.py --write` and commit the result."
    )


def test_the_table_lists_every_stream_of_the_manifest_once():
    script = _streams_table_script()
    manifest = script.resolved_manifest()
    names = [stream["$parameters"]["name"] for stream in script.listed_streams(manifest)]
    rows = script.streams_table(manifest).splitlines()[2:]
    assert len(names) == len(set(names)) == len(rows)
    assert [row.split("|")[1].strip().strip("`") for row in rows] == names
