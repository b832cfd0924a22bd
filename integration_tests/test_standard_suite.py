"""The CDK's standard connector tests (spec, check, discover, basic read), driven by acceptance-test-config.yml,
against the Codefresh sandbox that this module starts on the port its configs name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from airbyte_cdk.test.models import ConnectorTestScenario
from airbyte_cdk.test.standard_tests import DeclarativeSourceTestSuite

from codefresh_sandbox import SMALL_ACCOUNT, SandboxConfig, SandboxServer
from source_codefresh import SourceCodefresh

CONFIGS = Path(__file__).parent / "configs"
SANDBOX_PORT = urlsplit(json.loads((CONFIGS / "sandbox.json").read_text())["base_url"]).port
# One xdist worker runs the whole module: the sandbox's port is fixed, so a second worker could not start its own.
pytestmark = pytest.mark.xdist_group("standard_suite")


@pytest.fixture(scope="module", autouse=True)
def sandbox() -> Iterator[SandboxServer]:
    try:
        server = SandboxServer(SandboxConfig(port=SANDBOX_PORT, **SMALL_ACCOUNT)).start()
    except OSError as error:
        pytest.fail(f"The standard suite's sandbox needs 127.0.0.1:{SANDBOX_PORT}, which is taken: {error}")
    yield server
    server.stop()


class TestSourceCodefresh(DeclarativeSourceTestSuite):
    # The source builds its streams from the config, so it must be constructed with it (the suite's default
    # builds a ConcurrentDeclarativeSource from the manifest without one).
    @classmethod
    def create_connector(cls, scenario: ConnectorTestScenario | None) -> SourceCodefresh:
        config = (
            scenario.get_config_dict(empty_if_missing=True, connector_root=cls.get_connector_root_dir())
            if scenario
            else {}
        )
        return SourceCodefresh(config=config)
