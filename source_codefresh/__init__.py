"""Airbyte source connector for Codefresh CI/CD data."""

from source_codefresh import ast_guard

# First, before the CDK parses anything from a thread: see ast_guard (CPython bug gh-106905).
ast_guard.install()

from source_codefresh.source import SourceCodefresh  # noqa: E402

__all__ = ["SourceCodefresh"]
