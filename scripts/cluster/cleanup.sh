#!/usr/bin/env bash
# cleanup.sh NAMESPACE: remove a demo: its Helm releases, then its namespace (and whatever else
# the demo created in it, such as load-test jobs).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

namespace=${1:?usage: cleanup.sh NAMESPACE}
pin_context
if kubectl get namespace "$namespace" >/dev/null 2>&1; then
  helm list --namespace "$namespace" --short | while read -r release; do
    helm uninstall "$release" --namespace "$namespace" --wait
  done
  kubectl delete namespace "$namespace" --wait=true --timeout=180s
fi
echo "namespace $namespace: removed"
