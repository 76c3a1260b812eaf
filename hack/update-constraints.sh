#!/usr/bin/env bash
# Re-resolve every dependency (runtime and dev) to its newest release that
# pyproject.toml allows, in a throwaway virtualenv, and write the exact
# versions to hack/constraints.txt. `make setup` and the Dockerfile install
# with these constraints, so the test suite runs the versions the image ships
# (scikit-learn above all: an artifact is best served by the version it was
# saved with). Run this to move to newer releases on purpose, then `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
"$python" -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install --quiet --upgrade pip
"$scratch/venv/bin/pip" install --quiet ".[dev]"
{
  echo "# Exact versions of every dependency of driftward (runtime and dev), resolved"
  echo "# by hack/update-constraints.sh on $(date -u +%Y-%m-%d) with $("$scratch/venv/bin/python" -V)."
  echo "# make setup and the Dockerfile install with them (pip install -c). Do not edit by hand."
  "$scratch/venv/bin/pip" freeze --exclude driftward | LC_ALL=C sort -f
} > hack/constraints.txt
echo "hack/constraints.txt: $(grep -vc '^#' hack/constraints.txt) pins"
