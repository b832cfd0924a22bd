#!/usr/bin/env bash
# Re-resolve the lock files from pyproject.toml, with sha256 hashes of every file of every pinned release.
#
#   scripts/update_lock.sh                              # after editing pyproject.toml: keeps every pin that still fits
#   scripts/update_lock.sh --upgrade                    # take the newest releases pyproject.toml allows
#   scripts/update_lock.sh --upgrade-package requests   # one package (and what it needs)
#   scripts/update_lock.sh --check                      # exit 1 if the lock files are not what pyproject.toml gives
#
# Writes (commit all four together, with the pyproject.toml change that caused them):
#   requirements-dev.lock    the project's dependencies + the `dev` and `pyairbyte` groups: the README's test
#                            command and CI (.ci/run) install it
#   requirements.lock        the project's dependencies alone, each at the version requirements-dev.lock has (so
#                            the image ships exactly what the tests ran): the README's quick start and the Dockerfile
#   requirements-sandbox.lock the `sandbox` group alone (the sandbox's GraphQL engine), at the version
#                            requirements-dev.lock has: the README's quick start installs it next to requirements.lock
#   requirements-build.lock  the build backend (pyproject.toml [build-system] requires): the Dockerfile builds the
#                            wheel with it
#
# The resolution is universal (Linux, macOS and Windows; Python 3.11 and up), so the same files serve a developer's
# machine, CI and the image. uv (pinned below, installed into a throwaway venv) runs with --no-config: it reads no
# pip or uv configuration, so only the public package index is asked and the hashes are the ones any machine or
# `docker build` downloads. Needs python3 >= 3.11 and network access to the package index.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
LOCKS=(requirements-dev.lock requirements.lock requirements-sandbox.lock requirements-build.lock)
check=false
if [[ "${1:-}" == "--check" ]]; then
    check=true
    shift
fi

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --isolated --disable-pip-version-check "uv==$UV_VERSION"

# Resolve in a scratch directory holding pyproject.toml and the current lock files (uv keeps their pins where they
# still fit), under the same relative names, so the files' annotations do not depend on where this runs.
work="$tools/work"
mkdir "$work"
cp pyproject.toml "$work/"
for lock in "${LOCKS[@]}"; do
    if [[ -f "$lock" ]]; then cp "$lock" "$work/"; fi
done
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
    > "$work/build-requirements.in"
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]["sandbox"]))' \
    > "$work/sandbox-requirements.in"
(
    cd "$work"
    uv=("$tools/venv/bin/uv" --no-config --no-progress --quiet pip compile --universal --python-version 3.11
        --generate-hashes --custom-compile-command "scripts/update_lock.sh")
    "${uv[@]}" pyproject.toml --group dev --group pyairbyte "$@" --output-file requirements-dev.lock
    "${uv[@]}" pyproject.toml --constraints requirements-dev.lock "$@" --output-file requirements.lock
    "${uv[@]}" sandbox-requirements.in --constraints requirements-dev.lock "$@" --output-file requirements-sandbox.lock
    sed -i "s|-r sandbox-requirements.in|pyproject.toml (sandbox)|" requirements-sandbox.lock
    "${uv[@]}" build-requirements.in "$@" --output-file requirements-build.lock
    sed -i "s|-r build-requirements.in|pyproject.toml [build-system] requires|" requirements-build.lock
)

if $check; then
    stale=()
    for lock in "${LOCKS[@]}"; do
        if ! diff -u "$lock" "$work/$lock" > "$tools/$lock.diff" 2>&1; then
            stale+=("$lock")
            head -40 "$tools/$lock.diff"
        fi
    done
    if ((${#stale[@]})); then
        echo "update_lock.sh --check: ${stale[*]} differ from what pyproject.toml gives; run scripts/update_lock.sh" >&2
        exit 1
    fi
    echo "update_lock.sh --check: the lock files are current"
    exit 0
fi

for lock in "${LOCKS[@]}"; do
    cp "$work/$lock" "$lock"
    echo "$lock: $(grep -c '^[A-Za-z0-9]' "$lock") pinned packages"
done
