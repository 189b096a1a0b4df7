#!/usr/bin/env bash
# build.sh PART...: build the pinned control plane from Go modules (versions in versions.env).
#   kube   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (k8s.io/kubernetes)
#   etcd   etcd (go.etcd.io/etcd/server/v3)
#   istio  pilot-discovery (istiod), istioctl, pilot-agent, istio-cni and install-cni (the cluster's
#          Istio images, tools/images/build.sh), Envoy's bootstrap template, plus crds below
#   crds   Istio's CRD bundle and its Helm charts (base, istiod, gateway, istio-cni), no build
#   metrics  metrics-server (sigs.k8s.io/metrics-server)
#   coredns  CoreDNS (github.com/coredns/coredns), the host cluster's DNS
#   localpath  local-path-provisioner (github.com/rancher/local-path-provisioner), its PVCs
# kube also builds kubelet and kube-proxy, for the host cluster (`make cluster-up CLUSTER=host`).
# Each part lands in .cache/controlplane/PART-VERSION/ and is skipped when already there, so
# only a new machine pays the build (about 20 minutes on 2 cores, see docs/verification.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
command -v go >/dev/null || { echo "build.sh: go not found; install Go 1.26+ to build the control plane" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
cache=$repo/.cache/controlplane

# The staging modules of k8s.io/kubernetes, each replaced with its published twin.
STAGING="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api
cri-client cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt
kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics
mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller streaming"
KUBE_COMMANDS="kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy"

# scratch_module DIR MODULE: a throwaway module in DIR whose go.mod requires what we build.
scratch_module() {
  mkdir -p "$1"
  printf 'module resilience-lab/%s\n\ngo 1.26\n' "$2" >"$1/go.mod"
}

build_kube() {
  local out=$cache/kube-$KUBE_VERSION mod minor
  [[ -f $out/.complete ]] && return
  mod=$(mktemp -d) && trap 'rm -rf "$mod"' RETURN
  scratch_module "$mod" kube
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    for m in $STAGING; do echo "replace k8s.io/$m => k8s.io/$m v0${KUBE_VERSION#v1}"; done
  } >>"$mod/go.mod"
  { echo 'package tools'; echo 'import ('
    for c in $KUBE_COMMANDS; do echo "  _ \"k8s.io/kubernetes/cmd/$c\""; done
    echo ')'; } >"$mod/tools.go"
  minor=${KUBE_VERSION#v1.} minor=${minor%%.*}
  local stamp="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1"
  stamp+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  mkdir -p "$out"
  (cd "$mod" && go mod tidy >/dev/null &&
    go build -trimpath -ldflags "-s -w $stamp" -o "$out/" $(printf 'k8s.io/kubernetes/cmd/%s ' $KUBE_COMMANDS))
  touch "$out/.complete"
}

build_etcd() {
  local out=$cache/etcd-$ETCD_VERSION mod
  [[ -f $out/.complete ]] && return
  mod=$(mktemp -d) && trap 'rm -rf "$mod"' RETURN
  scratch_module "$mod" etcd
  echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION" >>"$mod/go.mod"
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' >"$mod/main.go"
  mkdir -p "$out"
  (cd "$mod" && go mod tidy >/dev/null && go build -trimpath -ldflags "-s -w" -o "$out/etcd" .)
  touch "$out/.complete"
}

istio_source() {
  local src
  src=$(go mod download -json "istio.io/istio@$ISTIO_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [[ -d $src ]] || { echo "build.sh: istio.io/istio@$ISTIO_VERSION did not download" >&2; exit 1; }
  echo "$src"
}

# The charts `make istio-install` installs (scripts/cluster/istio.sh): no chart repository is needed.
ISTIO_CHARTS="base istio-control/istio-discovery gateway istio-cni"
# What the cluster's images hold beside pilot-discovery (tools/images/build.sh).
ISTIO_AGENT_COMMANDS="pilot/cmd/pilot-agent cni/cmd/istio-cni cni/cmd/install-cni"

# The pinned Istio's CRD bundle (the chart tests validate against it) and its Helm charts, copied
# from the module's source: a download, no build.
build_crds() {
  local out=$cache/istio-$ISTIO_VERSION src chart
  if [[ ! -f $out/crd-all.gen.yaml ]]; then
    src=${src:-$(istio_source)}
    mkdir -p "$out"
    install -m 0644 "$src/manifests/charts/base/files/crd-all.gen.yaml" "$out/crd-all.gen.yaml"
  fi
  [[ -f $out/charts/.complete ]] && return
  src=${src:-$(istio_source)}
  rm -rf "$out/charts" && mkdir -p "$out/charts"
  for chart in $ISTIO_CHARTS; do
    cp -R "$src/manifests/charts/$chart" "$out/charts/${chart##*/}"
  done
  chmod -R u+w "$out/charts"   # the module cache is read-only
  touch "$out/charts/.complete"
}

build_istio() {
  local out=$cache/istio-$ISTIO_VERSION src tag cmd packages=()
  [[ -f $out/.complete && -x $out/pilot-agent && -x $out/install-cni ]] && return
  src=$(istio_source)
  # Stamp the release line (VERSION holds e.g. 1.31) so istioctl and the proxies agree with istiod.
  tag="$(cat "$src/VERSION")-dev"
  for cmd in pilot/cmd/pilot-discovery istioctl/cmd/istioctl $ISTIO_AGENT_COMMANDS; do
    packages+=("istio.io/istio/$cmd@$ISTIO_VERSION")
  done
  mkdir -p "$out"
  GOBIN=$out go install -trimpath -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=$tag" "${packages[@]}"
  install -m 0644 "$src/manifests/charts/base/files/crd-all.gen.yaml" "$out/crd-all.gen.yaml"
  install -m 0644 "$src/tools/packaging/common/envoy_bootstrap.json" "$out/envoy_bootstrap.json"
  echo "$tag" >"$out/VERSION"
  build_crds
  touch "$out/.complete"
}

# go_install PART VERSION PACKAGE: `go install PACKAGE@VERSION` into .cache/controlplane/PART-VERSION.
go_install() {
  local out=$cache/$1-$2
  [[ -f $out/.complete ]] && return
  mkdir -p "$out"
  GOBIN=$out go install -trimpath -ldflags "-s -w" "$3@$2"
  touch "$out/.complete"
}

build_metrics() { go_install metrics "$METRICS_VERSION" sigs.k8s.io/metrics-server/cmd/metrics-server; }
build_coredns() { go_install coredns "$COREDNS_VERSION" github.com/coredns/coredns; }
build_localpath() { go_install localpath "$LOCALPATH_VERSION" github.com/rancher/local-path-provisioner; }

[[ $# -gt 0 ]] || set -- kube etcd istio metrics coredns localpath
for part in "$@"; do
  case $part in
    kube|etcd|istio|crds|metrics|coredns|localpath) echo "control plane: $part"; "build_$part" ;;
    *) echo "build.sh: unknown part '$part' (kube, etcd, istio, crds, metrics, coredns or localpath)" >&2; exit 2 ;;
  esac
done
