#!/usr/bin/env bash
# The README's main command (`make demo`): a local Kubernetes control plane
# with the MonitoredModel API installed and the operator reconciling the
# example model. Press Ctrl-C to stop the operator; the cluster stays up until
# `make cluster-down NAME=driftward-demo` (or `bash hack/testbed/cluster.sh down driftward-demo`).
set -euo pipefail
cd "$(dirname "$0")/.."

name=driftward-demo
cache=${DRIFTWARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftward}
kubeconfig=$cache/$name.kubeconfig
bin=$(bash hack/testbed/cluster.sh bin)
kubectl=("$bin/kubectl" --kubeconfig "$kubeconfig")

bash hack/testbed/cluster.sh up "$name" "$kubeconfig" >/dev/null
"${kubectl[@]}" apply --server-side -f crds/driftward.dev_monitoredmodels.yaml
"${kubectl[@]}" wait --for=condition=Established crd/monitoredmodels.driftward.dev --timeout=60s
"${kubectl[@]}" apply -f crds/examples/minimal.yaml

cat <<MSG

driftward's local cluster is up (kube-apiserver on 127.0.0.1, fake kwok nodes).
In another terminal:

  export KUBECONFIG=$kubeconfig PATH=$bin:\$PATH
  kubectl get mm -o wide          # the MonitoredModel and its status
  kubectl explain mm.spec         # the API, documented by the CRD
  kubectl get deploy,svc,cm -l app.kubernetes.io/managed-by=driftward

The operator runs below until you press Ctrl-C (the demo model is promoted
after its promotion window; kwok fakes the pods, so no model is loaded).
Stop the cluster with: bash hack/testbed/cluster.sh down $name

MSG
# kwok pod IPs are not on loopback in this cluster: never send traffic to them.
export KUBECONFIG=$kubeconfig DRIFTWARD_OPERATOR_STANDALONE=true DRIFTWARD_OPERATOR_LIVENESS_PORT=0
export DRIFTWARD_OPERATOR_EVALUATE_VERDICTS=false DRIFTWARD_OPERATOR_HTTP_PORT=0
exec .venv/bin/driftward-operator
