#!/usr/bin/env bash
# istio.sh install|uninstall: Istio from its Helm chart repository (version pinned in
# istio/install/istio.env): base, istiod, and the ingress gateway, each with its values file.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=../../istio/install/istio.env
source "$REPO_ROOT/istio/install/istio.env"
VALUES=$REPO_ROOT/istio/install

require_tools kubectl helm
pin_context

chart() {  # chart RELEASE CHART NAMESPACE VALUES_FILE
  helm upgrade --install "$1" "$2" --repo "$ISTIO_CHART_REPO" --version "$ISTIO_VERSION" \
    --namespace "$3" --create-namespace --values "$4" --wait --timeout 5m
}

case ${1:-} in
  install)
    step "Istio $ISTIO_VERSION on context $KUBE_CONTEXT"
    chart istio-base base istio-system "$VALUES/base-values.yaml"
    chart istiod istiod istio-system "$VALUES/istiod-values.yaml"
    chart istio-ingressgateway gateway istio-ingress "$VALUES/gateway-values.yaml"
    kubectl get pods --namespace istio-system
    kubectl get pods --namespace istio-ingress
    echo "Istio ready. Demos label their own namespace istio-injection=enabled."
    ;;
  uninstall)
    step "removing Istio from context $KUBE_CONTEXT"
    helm uninstall istio-ingressgateway --namespace istio-ingress --ignore-not-found --wait
    helm uninstall istiod --namespace istio-system --ignore-not-found --wait
    helm uninstall istio-base --namespace istio-system --ignore-not-found --wait
    kubectl delete namespace istio-ingress istio-system --ignore-not-found --wait=true --timeout=120s
    ;;
  *) die "usage: istio.sh install|uninstall" ;;
esac
