#!/usr/bin/env bash
# namespace.sh NAMESPACE [--istio]: create the demo's own namespace; with --istio, check Istio is
# installed and label the namespace for sidecar injection (before any pod starts in it).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

namespace=${1:?usage: namespace.sh NAMESPACE [--istio]}
pin_context
in_demo "$namespace"
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f -
if [ "${2:-}" = --istio ]; then
  kubectl get deployment istiod --namespace istio-system >/dev/null 2>&1 ||
    die "Istio is not installed on context $KUBE_CONTEXT: run 'make istio-install'"
  kubectl label namespace "$namespace" istio-injection=enabled --overwrite
fi
