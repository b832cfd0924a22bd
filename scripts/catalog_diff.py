"""Compare the catalogs `discover` emits for two versions of manifest.yaml: what a schema change changes for users.

    python scripts/catalog_diff.py                  # the working tree's manifest.yaml against HEAD's
    python scripts/catalog_diff.py main             # ... against another git revision
    python scripts/catalog_diff.py OLD.yaml NEW.yaml

Discover runs in-process (it sends no request) with a config that also enables the conditional streams
(pipeline_runs, build_logs). Every difference is printed as stream, JSON path, old value -> new value; a changed
member order of a JSON object is counted apart, since it carries no meaning. Exit status 1 when the catalogs differ
otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from airbyte_cdk.models.airbyte_protocol_serializers import AirbyteStreamSerializer
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource

ROOT = Path(__file__).resolve().parent.parent
# Never contacted: discover builds the catalog from the manifest alone.
CONFIG = {
    "api_key": "catalog-diff",
    "base_url": "http://127.0.0.1:9/api",
    "pipeline_runs": [{"pipeline": "p/q"}],
    "sync_build_logs": True,
}


def discovered(manifest: Path) -> Dict[str, Dict[str, Any]]:
    """Stream name -> the stream as `discover` emits it (JSON-ready)."""
    source = YamlDeclarativeSource(path_to_yaml=str(manifest), config=CONFIG)
    catalog = source.discover(logging.getLogger("catalog_diff"), CONFIG)
    return {stream.name: AirbyteStreamSerializer.dump(stream) for stream in catalog.streams}


def differences(old: Any, new: Any, path: str = "$") -> Iterator[Tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            yield from differences(old.get(key, _MISSING), new.get(key, _MISSING), f"{path}.{key}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from differences(a, b, f"{path}[{index}]")
    elif old != new:
        yield path, old, new


def reordered(old: Any, new: Any, path: str = "$") -> Iterator[str]:
    """Paths of objects whose members are equal but in another order."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old == new and list(old) != list(new):
            yield path
        for key in old:
            if key in new:
                yield from reordered(old[key], new[key], f"{path}.{key}")
    elif isinstance(old, list) and isinstance(new, list):
        for index, (a, b) in enumerate(zip(old, new, strict=False)):  # lists of other lengths: the common part
            yield from reordered(a, b, f"{path}[{index}]")


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def manifest_at(revision: str, directory: Path) -> Path:
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{revision}:manifest.yaml"], check=True, capture_output=True, text=True
    ).stdout
    path = directory / "manifest.old.yaml"
    path.write_text(text)
    return path


def short(value: Any, limit: int = 100) -> str:
    text = repr(value) if value is _MISSING else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", nargs="?", default="HEAD", help="git revision or manifest file (default HEAD)")
    parser.add_argument("new", nargs="?", default=str(ROOT / "manifest.yaml"), help="manifest file (default: ours)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        old_path = Path(args.old) if Path(args.old).is_file() else manifest_at(args.old, Path(tmp))
        old, new = discovered(old_path), discovered(Path(args.new))
    changed = 0
    for name in list(old) + [n for n in new if n not in old]:
        found = list(differences(old.get(name, _MISSING), new.get(name, _MISSING)))
        for path, a, b in found:
            print(f"{name}  {path}: {short(a)} -> {short(b)}")
        changed += len(found)
    moved = {name: list(reordered(old[name], new[name])) for name in old if name in new}
    moved_count = sum(len(paths) for paths in moved.values())
    print(
        f"{len(old)} streams before, {len(new)} after; {changed} difference(s) in meaning; "
        f"member order changed in {moved_count} object(s) of {sum(1 for p in moved.values() if p)} stream(s)"
    )
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
