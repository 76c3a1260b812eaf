#!/usr/bin/env bash
# The README's main command (`make demo`): see hack/demo.py. It starts a local
# control plane whose pods really run (hack/podrunner), installs the chart,
# runs the operator, deploys v1 then v2, drifts v2's traffic and ends with
# `kubectl get mm` showing the automatic rollback to v1.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m hack.demo "$@"
