#!/usr/bin/env bash
# preflight.sh TOOL...: every tool a demo needs is installed, its kube context exists, and the
# cluster behind it answers. Run first by every demo target, so nothing starts half-way.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

require_tools "$@"
pin_context
kubectl get --raw /readyz --request-timeout=10s >/dev/null 2>&1 ||
  die "context '$KUBE_CONTEXT' does not answer: is the cluster running? ('make cluster-up CLUSTER=$CLUSTER')"
echo "context $KUBE_CONTEXT: ready"
