"""Airbyte source connector for Codefresh CI/CD data."""

from source_codefresh.source import SourceCodefresh

__all__ = ["SourceCodefresh"]
