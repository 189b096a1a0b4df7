#!/usr/bin/env bash
# Delete the demo cluster that cluster-up.sh created (and only that one).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

case $CLUSTER in
  minikube)
    require_tools minikube
    minikube delete --profile "$CLUSTER_NAME"
    ;;
  kind)
    require_tools kind
    kind delete cluster --name "$CLUSTER_NAME"
    ;;
  host)
    require_tools python
    "$REPO_ROOT/.venv/bin/python" -m lab host-cluster down --name "$CLUSTER_NAME"
    ;;
  *) die "CLUSTER must be minikube, kind or host, not '$CLUSTER'" ;;
esac
