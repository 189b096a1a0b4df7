#!/usr/bin/env bash
# istio.sh install|uninstall: the pinned Istio (ISTIO_VERSION of tools/controlplane/versions.env)
# from the charts in its module's source (`make istio-charts` copies them into .cache/, no chart
# repository): base, istio-cni, istiod and the ingress gateway, each with its values file in
# istio/install/, on images built locally (`make images`, `make cluster-images`).
#   ISTIO_CNI_VALUES  the node's CNI folders as istio-cni values (a host cluster's context host-NAME:
#                     the file that cluster writes; kind and minikube: the chart's defaults)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
ISTIO_VERSION=$(sed -n 's/^ISTIO_VERSION=//p' "$REPO_ROOT/tools/controlplane/versions.env")
CHARTS=$REPO_ROOT/.cache/controlplane/istio-$ISTIO_VERSION/charts
# The host cluster's state folder is lab/kube/hostcluster/layout.py's DEFAULT_STATE_ROOT.
HOST_CLUSTER_STATE=/var/lib/resilience-lab
TIMEOUT=${ISTIO_TIMEOUT:-5m}

require_tools kubectl helm

chart() {  # chart RELEASE CHART NAMESPACE VALUES_ARGS...: printed as it runs, paths from the repo root
  local command=(upgrade --install "$1" "${CHARTS#"$REPO_ROOT"/}/$2" --namespace "$3"
    --values istio/install/global-values.yaml --set "global.tag=$ISTIO_VERSION")
  shift 3
  command+=("$@" --wait --timeout "$TIMEOUT")
  echo "+ helm ${command[*]}"
  helm "${command[@]}"
}

# namespace NAME LEVEL: created (or kept) with PodSecurity enforcing LEVEL.
namespace() {
  kubectl create namespace "$1" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$1" --overwrite "pod-security.kubernetes.io/enforce=$2" \
    "pod-security.kubernetes.io/warn=$2" "pod-security.kubernetes.io/audit=$2" >/dev/null
}

case ${1:-} in
  install)
    [ -f "$CHARTS/.complete" ] || die "Istio's charts are not in ${CHARTS#"$REPO_ROOT"/}: run 'make istio-charts'"
    pin_context
    # A host cluster (context host-NAME, as cluster-up names it) writes its node's CNI folders.
    case $KUBE_CONTEXT in
      host-*) ISTIO_CNI_VALUES=${ISTIO_CNI_VALUES:-$HOST_CLUSTER_STATE/${KUBE_CONTEXT#host-}/cni/istio-cni-values.yaml} ;;
    esac
    cni_values=()
    if [ -n "${ISTIO_CNI_VALUES:-}" ]; then
      [ -f "$ISTIO_CNI_VALUES" ] || die "$ISTIO_CNI_VALUES: not found (the host cluster writes it at start: is it up? 'make cluster-up CLUSTER=host')"
      cni_values=(--values "$ISTIO_CNI_VALUES")
    fi
    step "Istio $ISTIO_VERSION on context $KUBE_CONTEXT"
    # The CNI node agent needs host folders and NET_ADMIN: istio-system is `privileged`. The gateway
    # passes `restricted` (istio/install/gateway-values.yaml).
    namespace istio-system privileged
    namespace istio-ingress restricted
    # A cluster that applied Istio's CRDs itself (the host cluster: the same bundle) hands them to
    # the base chart, which manages them from then on as on any other cluster.
    if [ -n "$(kubectl get crd -l chart=istio -o name)" ]; then
      echo "Istio's CRDs are already on the cluster: release istio-base adopts them"
      kubectl label crd -l chart=istio --overwrite app.kubernetes.io/managed-by=Helm >/dev/null
      kubectl annotate crd -l chart=istio --overwrite meta.helm.sh/release-name=istio-base \
        meta.helm.sh/release-namespace=istio-system >/dev/null
    fi
    chart istio-base base istio-system --values "istio/install/base-values.yaml"
    chart istio-cni istio-cni istio-system --values "istio/install/cni-values.yaml" "${cni_values[@]}"
    chart istiod istio-discovery istio-system --values "istio/install/istiod-values.yaml"
    chart istio-ingressgateway gateway istio-ingress --values "istio/install/gateway-values.yaml"
    kubectl get pods --namespace istio-system
    kubectl get pods --namespace istio-ingress
    echo "Istio ready. Demos label their own namespace istio-injection=enabled."
    ;;
  uninstall)
    pin_context
    step "removing Istio from context $KUBE_CONTEXT"
    helm uninstall istio-ingressgateway --namespace istio-ingress --ignore-not-found --wait
    helm uninstall istiod --namespace istio-system --ignore-not-found --wait
    helm uninstall istio-cni --namespace istio-system --ignore-not-found --wait
    helm uninstall istio-base --namespace istio-system --ignore-not-found --wait
    kubectl delete namespace istio-ingress istio-system --ignore-not-found --wait=true --timeout=120s
    ;;
  *) die "usage: istio.sh install|uninstall" ;;
esac
