"""The tables of streams and of config fields in docs/codefresh.md and CONTRIBUTING.md are the manifest's and the
spec's (regenerate them with `scripts/doc_tables.py --write`), and docs/api-notes.md holds the evidence of every
stream the manifest reads."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("doc_tables", REPO_ROOT / "scripts" / "doc_tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest(script):
    return script.resolved_manifest()


def test_the_tables_in_the_docs_match_the_manifest_and_its_spec(script, manifest):
    for document, text in script.generated_documents(manifest).items():
        assert (REPO_ROOT / document).read_text() == text, (
            f"{document}: a generated table differs from manifest.yaml: run "
            "`.venv/bin/python scripts/doc_tables.py --write` and commit the result."
        )


def test_the_stream_tables_list_every_stream_of_the_manifest_once(script, manifest):
    names = [stream["$parameters"]["name"] for stream in script.listed_streams(manifest)]
    assert len(names) == len(set(names))
    evidence = script.evidence_rows(script.API_NOTES.read_text())
    for table in (script.contributing_streams_table(manifest), script.user_streams_table(manifest, evidence)):
        rows = table.splitlines()[2:]
        assert [row.split("|")[1].split("`")[1] for row in rows] == names


def test_the_config_table_lists_every_field_of_the_spec_once(script, manifest):
    spec = manifest["spec"]["connection_specification"]
    rows = script.config_table(spec).splitlines()[2:]
    assert sorted(row.split("|")[2].strip().strip("`") for row in rows) == sorted(spec["properties"])


def test_the_api_notes_hold_the_evidence_of_every_stream_and_its_request(script, manifest):
    """docs/api-notes.md section 5 has a row per stream, with its sources, naming the request the manifest sends."""
    evidence = script.evidence_rows(script.API_NOTES.read_text())
    streams = {stream["$parameters"]["name"]: stream for stream in script.listed_streams(manifest)}
    assert sorted(evidence) == sorted(streams), "one row per stream of the manifest, and none for another"
    for name, stream in streams.items():
        row = evidence[name]
        assert re.search(r"\[[A-Z]", row["sources"]), f"{name}: no source in docs/api-notes.md"
        endpoint = stream["$parameters"].get("endpoint")
        if endpoint and not stream["retriever"].get("partition_router", {}).get("parent_stream_configs", [{}])[0].get(
            "lazy_read_pointer"
        ):
            # `{id}` in the manifest is `{accountId}`, `{reportName}`, ... in the notes.
            pattern = re.escape(f"/{endpoint}").replace(r"\{id\}", r"\{\w+\}").replace(r"\{progress\}", r"\{\w+\}")
            assert re.search(pattern, row["request"]), (
                f"{name}: the notes' request {row['request']!r} is not /{endpoint}"
            )
