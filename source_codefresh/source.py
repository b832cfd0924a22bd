"""The connector: the declarative manifest, loaded from this package's own location."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Mapping, Optional

from airbyte_cdk.models import AirbyteStateMessage, ConfiguredAirbyteCatalog
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

_PACKAGE_DIR = Path(__file__).resolve().parent


def manifest_path() -> Path:
    """The manifest shipped with this package.

    A built wheel carries it inside the package (pyproject.toml force-includes it); a source checkout or an
    editable install keeps it at the repository root, next to the package. Both are absolute paths, so a
    `manifest.yaml` in the current directory is never picked up instead.
    """
    for candidate in (_PACKAGE_DIR / "manifest.yaml", _PACKAGE_DIR.parent / "manifest.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"manifest.yaml not found next to {_PACKAGE_DIR}; the package is incomplete.")


class SourceCodefresh(YamlDeclarativeSource):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        config_path: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            path_to_yaml=str(manifest_path()),
            catalog=catalog,
            config=config,
            state=state,
            config_path=config_path,
        )
