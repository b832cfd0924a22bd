# source-codefresh: the connector image.
#
#   docker build -t airbyte/source-codefresh:dev .
#   docker run --rm -v "$PWD/secrets:/secrets" airbyte/source-codefresh:dev check --config /secrets/config.json
#
# Reproducible: every dependency is installed from requirements.lock (exact releases, each file checked against its
# sha256) and the wheel is built with the backend pinned in requirements-build.lock, so a rebuild next month holds
# the same releases. scripts/update_lock.sh rewrites both files (README, "Dependencies and the lock files").
#
# Two stages on the same base image: `builder` installs the locked dependencies and the package wheel into a virtual
# environment; the final stage copies only that environment. No pip, build backend, wheel, test, sandbox or pip
# cache reaches the final image, and byte-code only for the modules the connector loads.
# BASE_IMAGE is the pinned Airbyte Python connector base (Python 3.11, non-root `airbyte` user, uid 1000); the
# same value is connectorBuildOptions.baseImage in metadata.yaml. Override it to build on a stand-in:
#   docker build --build-arg BASE_IMAGE=airbyte/python-connector-base:standin ...
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.1.0@sha256:1d1aa21d34e851df4e8a87b391c27724c06e2597608e7161f4d167be853bd7b6

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# 1. The dependencies, exactly as locked. This slow layer depends on requirements.lock alone, so a code or manifest
#    change does not rebuild it. The environment gets no pip of its own (the base image's pip installs into it), and
#    no byte-code yet (--no-compile): step 3 writes it for what the connector imports, a tenth of the whole.
COPY requirements.lock ./
RUN python -m venv --without-pip /opt/source-codefresh \
 && python -m pip --python /opt/source-codefresh/bin/python install --no-deps --require-hashes --no-compile \
        -r requirements.lock
# 2. The build backend, locked the same way, in an environment of the builder stage only.
COPY requirements-build.lock ./
RUN python -m venv /build/backend \
 && /build/backend/bin/python -m pip install --no-deps --require-hashes --no-compile -r requirements-build.lock
# 3. The package: its wheel (manifest.yaml force-included), installed without dependencies (all are above); then
#    `spec` and `discover` run once, which writes the byte-code of every module the connector imports (a full read
#    imports no other), and the tests that some dependencies ship are removed.
COPY pyproject.toml README.md manifest.yaml ./
COPY source_codefresh ./source_codefresh
RUN /build/backend/bin/python -m pip wheel --no-build-isolation --no-deps --wheel-dir /build/dist . \
 && python -m pip --python /opt/source-codefresh/bin/python install --no-deps --no-compile \
        /build/dist/source_codefresh-*.whl \
 && /opt/source-codefresh/bin/python -I -c "import importlib.resources as r; assert r.files('source_codefresh').joinpath('manifest.yaml').is_file(), 'manifest.yaml missing from the wheel'" \
 && python -m pip --python /opt/source-codefresh/bin/python check \
 && find /opt/source-codefresh/lib -depth -type d -name tests -path '*/site-packages/*/tests' -exec rm -rf {} + \
 && cd / && echo '{"api_key": "build-time-placeholder"}' > /build/config.json \
 && env -u PYTHONDONTWRITEBYTECODE /opt/source-codefresh/bin/source-codefresh spec >/dev/null \
 && env -u PYTHONDONTWRITEBYTECODE /opt/source-codefresh/bin/source-codefresh discover --config /build/config.json \
        > /build/catalog.jsonl \
 && grep -q '"type":"CATALOG"' /build/catalog.jsonl

FROM ${BASE_IMAGE}
# Everything but the environment first: these layers stay cached, so a code change rebuilds only the last COPY.
ENV PATH="/opt/source-codefresh/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    AIRBYTE_ENTRYPOINT="source-codefresh"
WORKDIR /airbyte/integration_code
RUN chown airbyte:airbyte /airbyte/integration_code
# Must match dockerRepository and dockerImageTag in metadata.yaml (integration_tests/test_container.py checks).
LABEL io.airbyte.name="airbyte/source-codefresh" \
      io.airbyte.version="1.0.0"
ENTRYPOINT ["source-codefresh"]
USER airbyte
# Owned by root and read-only for the `airbyte` user that runs the connector.
COPY --from=builder /opt/source-codefresh /opt/source-codefresh
