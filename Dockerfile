# source-codefresh: the connector image.
#
#   docker build -t airbyte/source-codefresh:dev .
#   docker run --rm -v "$PWD/secrets:/secrets" airbyte/source-codefresh:dev check --config /secrets/config.json
#
# Two stages on the same base image: `builder` builds the package wheel (hatchling, force-including manifest.yaml
# into the package) and installs it with its dependencies into a virtual environment; the final stage copies only
# that environment. No compiler, build backend, wheel, test, sandbox or pip cache reaches the final image.
# BASE_IMAGE is the pinned Airbyte Python connector base (Python 3.11, non-root `airbyte` user, uid 1000); the
# same value is connectorBuildOptions.baseImage in metadata.yaml. Override it to build on a stand-in:
#   docker build --build-arg BASE_IMAGE=airbyte/python-connector-base:standin ...
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.1.0@sha256:1d1aa21d34e851df4e8a87b391c27724c06e2597608e7161f4d167be853bd7b6

FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python -m venv /opt/source-codefresh
# 1. The dependencies, from pyproject.toml alone (a stub package stands in for the code), so that this slow layer
#    is rebuilt only when pyproject.toml changes, not on every manifest or code change.
COPY pyproject.toml ./
RUN mkdir source_codefresh \
 && touch source_codefresh/__init__.py manifest.yaml README.md \
 && /opt/source-codefresh/bin/python -m pip install --no-cache-dir . \
 && rm -rf source_codefresh manifest.yaml README.md build
# 2. The package itself: build its wheel (manifest.yaml force-included) and install it over the stub.
COPY README.md manifest.yaml ./
COPY source_codefresh ./source_codefresh
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /build/dist . \
 && /opt/source-codefresh/bin/python -m pip install --no-cache-dir --no-deps --force-reinstall /build/dist/source_codefresh-*.whl \
 && /opt/source-codefresh/bin/python -I -c "import importlib.resources as r; assert r.files('source_codefresh').joinpath('manifest.yaml').is_file(), 'manifest.yaml missing from the wheel'" \
 && /opt/source-codefresh/bin/python -m pip check \
 && /opt/source-codefresh/bin/python -m pip uninstall --yes pip \
 && find /opt/source-codefresh/lib -depth -type d -name tests -path '*/site-packages/*/tests' -exec rm -rf {} + \
 && cd / && /opt/source-codefresh/bin/source-codefresh spec >/dev/null

FROM ${BASE_IMAGE}
# Everything but the environment first: these layers stay cached, so a code change rebuilds only the last COPY.
ENV PATH="/opt/source-codefresh/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    AIRBYTE_ENTRYPOINT="source-codefresh"
WORKDIR /airbyte/integration_code
RUN chown airbyte:airbyte /airbyte/integration_code
# Must match dockerRepository and dockerImageTag in metadata.yaml (integration_tests/test_container.py checks).
LABEL io.airbyte.name="airbyte/source-codefresh" \
      io.airbyte.version="0.1.0"
ENTRYPOINT ["source-codefresh"]
USER airbyte
# Owned by root and read-only for the `airbyte` user that runs the connector.
COPY --from=builder /opt/source-codefresh /opt/source-codefresh
