# syntax=docker/dockerfile:1
#
# One image for every driftward process. It has no ENTRYPOINT, so a pod's
# `args` (or `command`) is the whole command line, and the console scripts are
# on PATH:
#
#   driftward-operator           the kopf operator (the default CMD; the Helm chart's Deployment)
#   driftward-serving serve      the model server (the operator's serving pods, container "model-server")
#   driftward-serving monitor    the drift/performance sidecar (container "monitor")
#   driftward-serving local      serve a model file on a laptop, no Kubernetes
#   driftward-serving profile    build a reference profile from a dataset
#
# tests/unit/packaging checks that each of these is an installed console script
# whose --help works, and that the chart and the operator's pod template use
# only these. Lint: hack/lint-dockerfile.sh (hadolint, run by `make lint`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Builder: turn the project into a wheel and install it with its dependencies
# into a self-contained virtualenv. Every dependency ships manylinux wheels, so
# no compiler is needed even here. The dependencies' versions are the exact ones
# in hack/constraints.txt, which `make setup` installs for the test suite too.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md hack/constraints.txt ./
COPY operator/ operator/
COPY serving/ serving/
RUN python -m venv /opt/driftward \
    && /opt/driftward/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/driftward/bin/pip install --no-cache-dir -c constraints.txt /wheels/*.whl \
    && /opt/driftward/bin/python -m compileall -q /opt/driftward/lib

# Final: the slim base plus the virtualenv, nothing else: no build tools, no
# source tree, no pip cache. Runs as a fixed non-root UID/GID (10001, the same
# the operator's serving pods and the chart's Deployment set), and works with a
# read-only root filesystem (bytecode is precompiled; /tmp is an emptyDir).
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="driftward" \
      org.opencontainers.image.description="Serve scikit-learn models on Kubernetes, watch them for drift and degradation, roll back to the last verified-stable version." \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /opt/driftward /opt/driftward
ENV PATH=/opt/driftward/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
# The operator's metrics/liveness port and the serving/monitor ports (docs/contracts.md).
EXPOSE 8080 8081 9090 9091
CMD ["driftward-operator"]
