"""The Codefresh sandbox: a local HTTP server speaking the Codefresh REST API shapes (see README.md)."""

from .common import SANDBOX_API_KEY, SANDBOX_LIMITED_API_KEY, SANDBOX_RESTRICTED_API_KEY
from .data import SMALL_ACCOUNT, SandboxConfig, SandboxData
from .server import SandboxServer

# The test harness's one exception to the connector's URL policy (source_codefresh/transport.py): plain http to this
# machine, where the sandbox listens. An environment variable, so no config can turn it on; tests (conftest.py) and
# scripts put it into their environment, and the connector processes they start inherit it.
HARNESS_ENV = {"SOURCE_CODEFRESH_TEST_LOOPBACK": "1"}

__all__ = [
    "HARNESS_ENV",
    "SANDBOX_API_KEY",
    "SANDBOX_LIMITED_API_KEY",
    "SANDBOX_RESTRICTED_API_KEY",
    "SMALL_ACCOUNT",
    "SandboxConfig",
    "SandboxData",
    "SandboxServer",
]
