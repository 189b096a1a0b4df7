#!/usr/bin/env bash
# watch-hpa.sh NAMESPACE SECONDS [LABEL]: every 15 s for SECONDS, one line per HorizontalPodAutoscaler
# of the namespace (CPU use against its target, current and desired replicas, ready pods of the
# scaled Deployment). Bounded, so a demo never hangs on a watch.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 2 ] || die "usage: watch-hpa.sh NAMESPACE SECONDS [LABEL]"
namespace=$1 seconds=$2 label=${3:-}
case $seconds in '' | *[!0-9]*) die "SECONDS must be a whole number, not '$seconds'" ;; esac
pin_context
in_demo "$namespace"

step "${label:-HPA} for ${seconds}s (namespace $namespace)"
columns='NAME:.metadata.name,CPU:.status.currentMetrics[0].resource.current.averageUtilization,TARGET:.spec.metrics[0].resource.target.averageUtilization,DESIRED:.status.desiredReplicas,CURRENT:.status.currentReplicas,REF:.spec.scaleTargetRef.name'
deadline=$((SECONDS + seconds))
while :; do
  kubectl get hpa --namespace "$namespace" --no-headers -o "custom-columns=$columns" |
    while read -r name cpu target desired current ref; do
      ready=$(kubectl get deployment "$ref" --namespace "$namespace" -o 'jsonpath={.status.readyReplicas}')
      printf '%s  %-12s cpu %4s%% (target %s%%)  replicas %s -> %s  ready pods %s\n' \
        "$(date +%T)" "$name" "$cpu" "$target" "$current" "$desired" "${ready:-0}"
    done
  if api_only || [ "$SECONDS" -ge "$deadline" ]; then break; fi
  sleep 15
done
