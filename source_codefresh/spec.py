"""The spec (`spec.connection_specification` of manifest.yaml): the one home of the config's fields, their defaults
and their bounds.

- `manifest_path()`: where the manifest shipped with this package is;
- `SpecDefaults`: the config transformation the manifest's spec runs at every start (after the saved-config
  migrations): every field the config leaves out takes the spec's `default`, so the manifest and the code read
  `config['num_workers']` and never hold a default of their own.

The bounds are the spec's alone: the CDK's entrypoint validates every config against the spec before check, discover
and read (source.py's `config_problem` makes only the checks the spec cannot express).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any, Mapping, MutableMapping

from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)
from airbyte_cdk.utils.yaml_loader import safe_load_yaml

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


@functools.lru_cache(maxsize=1)
def connection_specification() -> Mapping[str, Any]:
    """The spec's JSON schema of the config (the manifest's spec uses no `$ref`)."""
    specification: Mapping[str, Any] = safe_load_yaml(manifest_path().read_text())["spec"]["connection_specification"]
    return specification


def default(field: str) -> Any:
    """The spec's default of a top-level field."""
    return connection_specification()["properties"][field]["default"]


def with_defaults(config: MutableMapping[str, Any], properties: Mapping[str, Any]) -> None:
    """Fills in `config` every field of `properties` that it leaves out, or leaves as an empty text, with the field's
    default; entries of a list of objects (custom_streams, pipeline_runs) get their items' defaults, as copies."""
    for name, field in properties.items():
        value = config.get(name)
        if "default" in field and (name not in config or value == ""):
            config[name] = copy.deepcopy(field["default"])
        item_properties = (field.get("items") or {}).get("properties")
        if item_properties and isinstance(value, list):
            entries = [dict(entry) if isinstance(entry, Mapping) else entry for entry in value]
            for entry in entries:
                if isinstance(entry, dict):
                    with_defaults(entry, item_properties)
            config[name] = entries


class SpecDefaults(ConfigTransformation):
    """Every field the config leaves out takes the spec's default (manifest.yaml, `spec.config_normalization_rules`).

    Not saved: the CDK writes back only what its config migrations change, so a saved config keeps following the
    defaults of the release that reads it."""

    def transform(self, config: MutableMapping[str, Any]) -> None:
        with_defaults(config, connection_specification()["properties"])
