"""metadata.yaml against Airbyte's metadata model (ConnectorMetadataDefinitionV0, from the airbyte-connector-models
package that Airbyte's own tooling validates with), and what its breaking change promises: a deadline a week or more
after the release, a deadline action, impacted streams that exist, and the migration guide Airbyte links to."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Dict, List

import yaml
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0

from source_codefresh.pipeline_runs import PipelineRunRetriever
from source_codefresh.source import builtin_stream_names, manifest_path

ROOT = Path(__file__).resolve().parent.parent
METADATA = yaml.safe_load((ROOT / "metadata.yaml").read_text())
DATA: Dict[str, Any] = METADATA["data"]
VERSION = DATA["dockerImageTag"]
DOCS = (ROOT / "docs" / "codefresh.md").read_text()
# Airbyte's convention: <docs page>-migrations.md next to the page (documentationUrl + "-migrations").
GUIDE = (ROOT / "docs" / "codefresh-migrations.md").read_text()


def test_metadata_is_valid_against_airbytes_model():
    ConnectorMetadataDefinitionV0.model_validate(METADATA)


def test_it_is_airbytes_codefresh_connector():
    # The definition users of Airbyte's Codefresh tile have (its 0.0.x metadata.yaml in airbytehq/airbyte).
    assert DATA["definitionId"] == "cd8313fe-05cb-4439-aed5-26a2adc4856c"
    assert DATA["dockerRepository"] == "airbyte/source-codefresh"
    assert DATA["documentationUrl"] == "https://docs.airbyte.com/integrations/sources/codefresh"
    assert DATA["name"] == "Codefresh" and re.fullmatch(r"[1-9]\d*\.\d+\.\d+", VERSION)


def _released_on(version: str) -> date:
    dates = re.findall(rf"^\| {re.escape(version)} \| (\d{{4}}-\d{{2}}-\d{{2}}) \|", DOCS, re.MULTILINE)
    assert dates, f"docs/codefresh.md has no changelog row for {version}"
    return min(date.fromisoformat(day) for day in dates)


def test_the_breaking_change_of_this_version_is_complete():
    change = DATA["releases"]["breakingChanges"][VERSION]
    assert change["message"].strip()
    # Airbyte's QA check asks for a week from the day it runs; the release date stands for that day here.
    assert date.fromisoformat(change["upgradeDeadline"]) >= _released_on(VERSION) + timedelta(days=7)
    assert change["deadlineAction"] in ("auto_upgrade", "disable")
    (scope,) = change["scopedImpact"]
    assert scope["scopeType"] == "stream"
    assert set(scope["impactedScopes"]) <= builtin_stream_names()


def test_the_migration_guide_has_a_section_per_breaking_change_newest_first_naming_every_impacted_stream():
    assert f"# {DATA['name']} Migration Guide" in GUIDE.splitlines()
    headings = re.findall(r"^## Upgrading to (\S+)$", GUIDE, re.MULTILINE)
    breaking = sorted(DATA["releases"]["breakingChanges"], key=lambda v: tuple(map(int, v.split("."))), reverse=True)
    assert headings == breaking
    section = GUIDE.split(f"## Upgrading to {VERSION}")[1]
    for stream in DATA["releases"]["breakingChanges"][VERSION]["scopedImpact"][0]["impactedScopes"]:
        assert f"`{stream}`" in section, f"the guide does not say what changes for {stream}"


def test_every_suggested_stream_exists():
    assert set(DATA["suggestedStreams"]["streams"]) <= builtin_stream_names()


def _seconds(node: Any, key: str) -> List[float]:
    """Every value of `key` in the manifest (timeouts, backoff caps)."""
    found: List[float] = []
    if isinstance(node, dict):
        for name, value in node.items():
            if name == key and isinstance(value, (int, float)):
                found.append(float(value))
            found.extend(_seconds(value, key))
    elif isinstance(node, list):
        for value in node:
            found.extend(_seconds(value, key))
    return found


def test_max_seconds_between_messages_covers_the_longest_silence_the_connector_is_built_for():
    # The longest wait without a message: a Retry-After at its cap (jitter included; the CDK adds one second) after
    # the 429's log line, then one request at its connect and read timeouts; pipeline_runs logs while it waits.
    manifest = yaml.safe_load(manifest_path().read_text())
    longest_request = max(_seconds(manifest, "connect_timeout_in_seconds")) + max(
        _seconds(manifest, "read_timeout_in_seconds")
    )
    longest = max(
        max(_seconds(manifest, "max_wait_seconds")) + 1 + longest_request,
        PipelineRunRetriever.log_every_seconds + longest_request,
    )
    assert longest <= DATA["maxSecondsBetweenMessages"], longest
