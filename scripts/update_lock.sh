#!/usr/bin/env bash
# Re-resolve the lock files from pyproject.toml, with sha256 hashes of every file of every pinned release.
#
#   scripts/update_lock.sh                          # after editing pyproject.toml: keeps every pin that still fits
#   scripts/update_lock.sh --upgrade                # take the newest releases pyproject.toml allows
#   scripts/update_lock.sh --upgrade-package requests   # one package (and what it needs)
#
# Writes (commit all three together, with the pyproject.toml change that caused them):
#   requirements-dev.lock    the project's dependencies + the `dev` and `pyairbyte` groups: the README's test
#                            command and CI (.ci/run) install it
#   requirements.lock        the project's dependencies alone, each at the version requirements-dev.lock has (so
#                            the image ships exactly what the tests ran): the README's quick start and the Dockerfile
#   requirements-build.lock  the build backend (pyproject.toml [build-system] requires): the Dockerfile builds the
#                            wheel with it
#
# The resolution is universal (Linux, macOS and Windows; every Python that requires-python admits), so the same
# files serve a developer's machine, CI and the image. uv (pinned below, installed into a throwaway venv) runs with
# --no-config: it reads no pip or uv configuration, so only the public package index is asked and the hashes are
# the ones any machine or `docker build` downloads. Needs python3 >= 3.11 and network access to the package index.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --isolated --disable-pip-version-check "uv==$UV_VERSION"
uv=("$tools/venv/bin/uv" --no-config --no-progress --quiet pip compile --universal --python-version 3.11
    --generate-hashes --custom-compile-command "scripts/update_lock.sh")

"${uv[@]}" pyproject.toml --group dev --group pyairbyte "$@" --output-file requirements-dev.lock
"${uv[@]}" pyproject.toml --constraints requirements-dev.lock "$@" --output-file requirements.lock
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
    > "$tools/build-requirements.in"
"${uv[@]}" "$tools/build-requirements.in" "$@" --output-file requirements-build.lock
# The header names the input by its temporary path; say what it is instead.
sed -i "s|$tools/build-requirements.in|pyproject.toml [build-system] requires|" requirements-build.lock

for lock in requirements-dev.lock requirements.lock requirements-build.lock; do
    echo "$lock: $(grep -c '^[A-Za-z0-9]' "$lock") pinned packages"
done
