#!/usr/bin/env bash
# Build the test cluster's binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, kwokctl, helm) from the Go module proxy
# into a cache outside the repository, keyed by the pinned versions.
#
# Prints the bin directory on its last line of stdout. Skips any binary that is
# already there, so a warm run costs well under a second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

key=$(sha256sum "$here/versions.env" | cut -c1-12)
cache_root=${DRIFTWARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftward}/testbed/$key
bin=$cache_root/bin
src=$cache_root/src
mkdir -p "$bin" "$src"

log() { printf '[testbed-build] %s\n' "$*" >&2; }
fail() {
  log "FAILED at step: $1"
  log "Retry with: bash hack/testbed/build.sh   (partial results in $cache_root are reused)"
  log "To start from scratch: rm -rf $cache_root"
  exit 1
}

command -v go >/dev/null || fail "find the Go toolchain (go is not on PATH; Go >= 1.25 is required)"

export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# Two cores and 24 GiB: one package build at a time keeps peak memory modest
# without slowing the build much, since the compiler itself is parallel.
export GOMAXPROCS=${GOMAXPROCS:-2}

k8s_minor=${KUBERNETES_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
staging_version=v0.${KUBERNETES_VERSION#v1.}
staging=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver)

build_kubernetes() {
  local mod=$src/kubernetes
  mkdir -p "$mod"
  {
    echo "module driftward.dev/testbed/kubernetes"
    echo
    echo "go 1.25.0"
    echo
    echo "godebug default=go1.25"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    for m in "${staging[@]}"; do echo "	k8s.io/$m => k8s.io/$m $staging_version"; done
    echo ")"
  } >"$mod/go.mod"
  local ldflags=""
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$bin/$cmd" ] && { log "$cmd: cached"; continue; }
    log "$cmd: building $KUBERNETES_VERSION"
    # -mod=mod lets the go command record each dependency's checksum as it resolves it.
    (cd "$mod" && go build -mod=mod -trimpath -ldflags "-s -w $ldflags" -o "$bin/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" >&2) \
      || fail "build $cmd $KUBERNETES_VERSION"
    mv "$bin/$cmd.tmp" "$bin/$cmd"
  done
}

build_etcd() {
  [ -x "$bin/etcd" ] && { log "etcd: cached"; return; }
  local mod=$src/etcd
  mkdir -p "$mod"
  printf 'module driftward.dev/testbed/etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$mod/go.mod"
  log "etcd: building $ETCD_VERSION"
  (cd "$mod" && go build -mod=mod -trimpath -ldflags "-s -w" -o "$bin/etcd.tmp" go.etcd.io/etcd/server/v3 >&2) \
    || fail "build etcd $ETCD_VERSION"
  mv "$bin/etcd.tmp" "$bin/etcd"
}

build_kwok() {
  if [ -x "$bin/kwok" ] && [ -x "$bin/kwokctl" ]; then log "kwok, kwokctl: cached"; return; fi
  log "kwok, kwokctl: building $KWOK_VERSION"
  GOBIN=$bin go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" >&2 \
    || fail "build kwok/kwokctl $KWOK_VERSION"
}

build_helm() {
  [ -x "$bin/helm" ] && { log "helm: cached"; return; }
  log "helm: building $HELM_VERSION"
  GOBIN=$bin go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2 || fail "build helm $HELM_VERSION"
}

steps=${*:-etcd kwok helm kubernetes}
for step in $steps; do "build_$step"; done
log "all binaries ready in $bin"
echo "$bin"
