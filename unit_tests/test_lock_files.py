"""The lock files (requirements*.lock, written by scripts/update_lock.sh) agree with pyproject.toml, and what installs
from them (README, CI, Dockerfile) does. Offline checks; `scripts/update_lock.sh --check` re-resolves against the index.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
# name==version [; marker] \ then --hash=sha256:... lines
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def pins(lock: str) -> Dict[str, List[Tuple[str, str, int]]]:
    """name -> [(version, marker, number of hashes)] (a package may be pinned twice, under exclusive markers)."""
    found: Dict[str, List[Tuple[str, str, int]]] = {}
    current = None
    for line in (REPO_ROOT / lock).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = [match.group(2), (match.group(3) or "").strip(), 0]
            found.setdefault(canonicalize_name(match.group(1)), []).append(current)  # type: ignore[arg-type]
        elif current is not None and line.strip().startswith("--hash=sha256:"):
            current[2] += 1
    return {name: [tuple(entry) for entry in entries] for name, entries in found.items()}  # type: ignore[misc]


def _satisfied(requirement: str, lock: str) -> bool:
    req = Requirement(requirement)
    entries = pins(lock).get(canonicalize_name(req.name), [])
    return bool(entries) and all(req.specifier.contains(version, prereleases=True) for version, _, _ in entries)


LOCKS = {
    "requirements.lock": PYPROJECT["project"]["dependencies"],
    "requirements-dev.lock": PYPROJECT["project"]["dependencies"]
    + PYPROJECT["dependency-groups"]["dev"]
    + PYPROJECT["dependency-groups"]["pyairbyte"],
    "requirements-build.lock": PYPROJECT["build-system"]["requires"],
    "requirements-sandbox.lock": PYPROJECT["dependency-groups"]["sandbox"],
}


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_of_pyproject_is_pinned_in_the_lock(lock):
    unsatisfied = [r for r in LOCKS[lock] if not _satisfied(r, lock)]
    assert unsatisfied == [], f"{lock} does not satisfy {unsatisfied}: run scripts/update_lock.sh"


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_pin_has_hashes(lock):
    found = pins(lock)
    assert len(found) >= len(LOCKS[lock])
    assert [name for name, entries in found.items() if any(hashes == 0 for _, _, hashes in entries)] == []


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-sandbox.lock"])
def test_the_image_and_the_quick_start_ship_the_releases_the_tests_ran(lock):
    dev = {name: {version for version, _, _ in entries} for name, entries in pins("requirements-dev.lock").items()}
    runtime = {name: {version for version, _, _ in entries} for name, entries in pins(lock).items()}
    differ = {
        name: (versions, dev.get(name)) for name, versions in runtime.items() if not versions <= dev.get(name, set())
    }
    assert differ == {}, f"{lock} pins releases requirements-dev.lock does not: run scripts/update_lock.sh"


def _readme_command(installs: str) -> str:
    commands = re.findall(r"```bash\n(python3 -m venv \.venv .*?)\n```", (REPO_ROOT / "README.md").read_text())
    return next(c for c in commands if f"-r {installs} " in c)


def test_ci_runs_exactly_the_readme_test_command_which_installs_the_dev_lock():
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci == _readme_command("requirements-dev.lock")
    assert ci.endswith(".venv/bin/python -m pytest")
    assert "pip install -q --no-deps -e ." in ci  # the connector itself adds no unlocked dependency


def test_the_quick_start_and_the_dockerfile_install_the_runtime_lock():
    assert "pip install -q --no-deps -e ." in _readme_command("requirements.lock")
    # ... and the sandbox's GraphQL engine, so that its sync reads the GitOps streams too (the image does not).
    assert "-r requirements.lock -r requirements-sandbox.lock " in _readme_command("requirements.lock")
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"install --no-deps --require-hashes --no-compile\s*\\\s*-r requirements\.lock", dockerfile)
    assert "--require-hashes --no-compile -r requirements-build.lock" in dockerfile
    assert "--no-build-isolation" in dockerfile  # the wheel is built with the locked backend, not a fresh download


def test_the_version_and_the_base_image_are_the_same_in_pyproject_metadata_and_dockerfile():
    """The "keep in step" comments of metadata.yaml, checked offline (the container test checks the built image's
    label, but only where a container engine runs)."""
    metadata = yaml.safe_load((REPO_ROOT / "metadata.yaml").read_text())["data"]
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    label = re.search(r'io\.airbyte\.version="([^"]+)"', dockerfile)
    base_image = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert label and base_image
    assert PYPROJECT["project"]["version"] == metadata["dockerImageTag"] == label.group(1)
    assert metadata["connectorBuildOptions"]["baseImage"] == base_image.group(1)
