#!/usr/bin/env bash
# release.sh NAMESPACE RELEASE CHART [helm upgrade args...]: install or upgrade a chart of this
# repo and wait until its pods are ready; when they are not, show why.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || die "usage: release.sh NAMESPACE RELEASE CHART [helm upgrade args...]"
namespace=$1 release=$2 chart=$3
shift 3
pin_context
in_demo "$namespace"
# --reset-values: each step states its whole configuration; nothing carries over from the last.
wait_args=(--wait --timeout "${ROLLOUT_TIMEOUT:-5m}")
if api_only; then wait_args=(); fi
if ! helm upgrade --install "$release" "$chart" --namespace "$namespace" --reset-values "${wait_args[@]}" "$@"; then
  kubectl get pods --namespace "$namespace" -o wide || true
  kubectl get events --namespace "$namespace" --sort-by=.lastTimestamp | tail -n 15 || true
  die "release $release is not ready; ErrImagePull / ImagePullBackOff means the images are not in the cluster: run 'make images' and 'make cluster-images CLUSTER=$CLUSTER'"
fi
kubectl get pods --namespace "$namespace" -l "app.kubernetes.io/instance=$release" -o wide
