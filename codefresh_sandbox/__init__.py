"""The Codefresh sandbox: a local HTTP server speaking the Codefresh REST API shapes (see README.md)."""

from .common import SANDBOX_API_KEY, SANDBOX_LIMITED_API_KEY, SANDBOX_RESTRICTED_API_KEY
from .data import SMALL_ACCOUNT, SandboxConfig, SandboxData
from .server import SandboxServer

__all__ = [
    "SANDBOX_API_KEY",
    "SANDBOX_LIMITED_API_KEY",
    "SANDBOX_RESTRICTED_API_KEY",
    "SMALL_ACCOUNT",
    "SandboxConfig",
    "SandboxData",
    "SandboxServer",
]
