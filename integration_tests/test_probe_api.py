"""scripts/probe_api.py against the sandbox: under each reading a sandbox switch offers, the probe names that reading
(the sandbox is the executable spec of the readings, so this checks the probe's requests and its classification end to
end); a key without a scope gets "could not tell" for the questions that need it, and the other answers still come."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Dict

import pytest

from integration_tests.sandbox import SANDBOX_API_KEY, SANDBOX_LIMITED_API_KEY, SandboxConfig, SandboxServer

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "probe_api.py"
spec = importlib.util.spec_from_file_location("probe_api_script", SCRIPT)
probe_api = importlib.util.module_from_spec(spec)
sys.modules["probe_api_script"] = probe_api
spec.loader.exec_module(probe_api)

SMALL = dict(
    builds=60,
    pipelines=12,
    projects=4,
    step_types=10,
    runtime_environments=6,
    images=30,
    audit=40,
    hermes_triggers=5,
    hermes_events=5,
    account_users=4,
    views=3,
)


def readings(server: SandboxServer, key: str = SANDBOX_API_KEY) -> Dict[str, probe_api.Finding]:
    client = probe_api.Client(server.base_url, key, pause_seconds=0)
    return {finding.question: finding for finding in probe_api.probe(client)}


@pytest.mark.parametrize(
    "images_paging, reading, fits",
    [("offset", "offset", True), ("cursor", "cursor", True), ("ignores_paging", "ignores_paging", False)],
)
def test_the_probe_names_the_images_reading_of_the_sandbox(images_paging, reading, fits):
    with SandboxServer(SandboxConfig(images_paging=images_paging, **SMALL)) as server:
        found = readings(server)
        assert server.stats()["pagination_errors"] == 0
        assert set(server.stats()["by_route"]) <= {
            f"GET /api{path}"
            for path in (
                "/images",
                "/workflow",
                "/audit",
                "/analytics/reports/{name}",
                "/hermes/triggers",
                "/hermes/events",
            )
        }
    images = found[probe_api.Q_IMAGES]
    assert (images.reading, images.fits) == (reading, fits)


def test_the_probe_reads_the_sandbox_defaults():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        found = readings(server)
    assert {q: f.reading for q, f in found.items()} == {
        probe_api.Q_IMAGES: "offset",
        probe_api.Q_WORKFLOW: "exact",
        probe_api.Q_AUDIT_FORMAT: "ms",
        probe_api.Q_AUDIT_PAGE: "1",
        probe_api.Q_ANALYTICS_EMPTY: "empty_200",
        probe_api.Q_COMMITTERS: "accepts",
        probe_api.Q_HERMES: "observed",
        probe_api.Q_RETRY_AFTER: "unknown",
    }


def test_a_key_without_the_audit_scope_cannot_tell_the_audit_answers_and_tells_the_rest():
    with SandboxServer(SandboxConfig(**SMALL)) as server:
        found = readings(server, SANDBOX_LIMITED_API_KEY)
    for question in (probe_api.Q_AUDIT_FORMAT, probe_api.Q_AUDIT_PAGE):
        assert found[question].fits is None and "HTTP 403" in found[question].seen
        assert "'audit' scope" in found[question].seen
    assert found[probe_api.Q_IMAGES].reading == "offset" and found[probe_api.Q_WORKFLOW].reading == "exact"
