#!/usr/bin/env bash
# Start or stop the project's local Kubernetes control plane: kwokctl's binary
# runtime on 127.0.0.1 with etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and the kwok controller, plus fake Ready nodes. No containers
# run; kwok moves pods to Running/Ready so Deployments become Available.
#
# Podrunner mode (DRIFTWARD_TESTBED_PODRUNNER=1) is for end-to-end runs where
# containers really run: each node gets a loopback pod CIDR (127.B.N.0/24), and
# kwok's pod stages (hack/testbed/podrunner-stages.yaml) only assign the IP and
# leave pods Pending. hack/podrunner then starts the containers as local
# processes bound to the pod IP and sets Running and Ready from real probes.
#
#   cluster.sh up   [NAME] [KUBECONFIG]   build if needed, create, wait for nodes
#   cluster.sh down [NAME]                delete the cluster and its files
#   cluster.sh bin                        print the directory of the built binaries
#
# Environment: DRIFTWARD_TESTBED_NODES (default 2), KWOK_WORKDIR (default
# under the cache), DRIFTWARD_CACHE (the cache root, default ~/.cache/driftward),
# DRIFTWARD_TESTBED_PODRUNNER (1 for podrunner mode), DRIFTWARD_TESTBED_POD_NET
# (podrunner mode: the B in 127.B.N.x, 1-254; default derived from NAME so two
# podrunner clusters rarely share addresses).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cmd=${1:-}
name=${2:-driftward-test}
cache=${DRIFTWARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftward}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$cache/kwok-workdir}
nodes=${DRIFTWARD_TESTBED_NODES:-2}
podrunner=${DRIFTWARD_TESTBED_PODRUNNER:-0}
case "$podrunner" in
0 | 1) ;;
*)
  printf '[testbed] DRIFTWARD_TESTBED_PODRUNNER=%s is not allowed: use 1 (podrunner mode) or 0 (default)\n' "$podrunner" >&2
  exit 2
  ;;
esac

log() { printf '[testbed] %s\n' "$*" >&2; }
fail() {
  log "FAILED at step: $1"
  log "Logs: $KWOK_WORKDIR/clusters/$name/logs/ (kwokctl --name $name logs <component>)"
  log "Retry with: bash hack/testbed/cluster.sh down $name && bash hack/testbed/cluster.sh up $name"
  exit 1
}

bin=$(bash "$here/build.sh" | tail -n 1) || fail "build the pinned binaries (see the build log above)"
export PATH=$bin:$PATH

case "$cmd" in
bin)
  echo "$bin"
  ;;
up)
  kubeconfig=${3:-$KWOK_WORKDIR/$name.kubeconfig}
  mkdir -p "$KWOK_WORKDIR" "$(dirname "$kubeconfig")"
  # A cluster left behind by a killed run holds ports and state: start clean.
  kwokctl --name "$name" delete cluster >/dev/null 2>&1 || true
  config=$KWOK_WORKDIR/$name.kwokctl.yaml
  cat >"$config" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeAuthorization: true
  kubeAdmission: true
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kubectlBinary: $bin/kubectl
  etcdBinary: $bin/etcd
  kwokControllerBinary: $bin/kwok
YAML
  node_params=()
  if [ "$podrunner" = 1 ]; then
    # Replaces kwokctl's default Stages (nodes and pods) with the podrunner set.
    printf -- '---\n' >>"$config"
    cat "$here/podrunner-stages.yaml" >>"$config"
    net=${DRIFTWARD_TESTBED_POD_NET:-$((100 + $(printf '%s' "$name" | cksum | cut -d' ' -f1) % 150))}
    if ! [[ "$net" =~ ^[0-9]+$ ]] || [ "$net" -lt 1 ] || [ "$net" -gt 254 ]; then
      log "DRIFTWARD_TESTBED_POD_NET=$net is not allowed: use a number from 1 to 254 (the B in 127.B.N.x)"
      exit 2
    fi
    # kwokctl's node template gives node i the CIDR shifted by i: 127.B.i.0/24.
    node_params=(--param ".podCIDRs=[\"127.$net.0.0/24\"]" --param ".nodeIPs=[\"127.$net.254.1\"]")
    log "podrunner mode: pod IPs from 127.$net.0.0/24 upwards, one /24 per node"
  fi
  log "creating cluster $name (kwokctl binary runtime, 127.0.0.1)"
  start=$(date +%s%3N)
  kwokctl --config "$config" --name "$name" create cluster --runtime binary \
    --kubeconfig "$kubeconfig" --wait 3m >&2 || fail "kwokctl create cluster"
  kwokctl --name "$name" scale node --replicas "$nodes" "${node_params[@]}" >&2 \
    || fail "kwokctl scale node --replicas $nodes ${node_params[*]}"
  kubectl --kubeconfig "$kubeconfig" wait node --all --for=condition=Ready --timeout=120s >&2 \
    || fail "wait for $nodes fake nodes to become Ready"
  # The controller-manager creates the default ServiceAccount asynchronously;
  # tests that create pods in "default" need it.
  for _ in $(seq 60); do
    kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1 && break
    sleep 1
  done
  kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null \
    || fail "wait for the controller-manager to create the default ServiceAccount"
  elapsed_ms=$(($(date +%s%3N) - start))
  log "cluster $name is up in $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100))s; kubeconfig: $kubeconfig"
  echo "$kubeconfig"
  ;;
down)
  kwokctl --name "$name" delete cluster >&2 || fail "kwokctl delete cluster"
  ;;
*)
  echo "usage: $0 up|down|bin [NAME] [KUBECONFIG]" >&2
  exit 2
  ;;
esac
