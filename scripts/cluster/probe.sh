#!/usr/bin/env bash
# probe.sh NAMESPACE URL COUNT [--session]: send COUNT requests to URL from a throwaway pod inside
# the cluster (so a Service balances them as it would for any client) and summarise them: which
# replicas answered, the status codes, latency. With --session the requests share one cookie
# jar, as one browser would, and the summary counts the colors that user saw (1 = session kept).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 3 ] || die "usage: probe.sh NAMESPACE URL COUNT [--session]"
namespace=$1 url=$2 count=$3 mode=${4:-}
case $count in '' | *[!0-9]*) die "COUNT must be a whole number, not '$count'" ;; esac
pin_context
in_demo "$namespace"

# Runs in the pod (POSIX sh): one line per request: status|replica (X-Replica)|seconds|body;
# status 000 means no answer (connection refused or reset, or 15 s without a response).
# shellcheck disable=SC2016  # expanded by the pod's shell, not this one
pod_script='
jar=""; [ "$MODE" = --session ] && jar="-c /tmp/jar -b /tmp/jar"
i=0
while [ "$i" -lt "$COUNT" ]; do
  curl -s --max-time 15 $jar -o /tmp/body -w "%{http_code}|%header{x-replica}|%{time_total}|" "$URL" || true
  [ -n "$jar" ] && tr -d "\n" </tmp/body 2>/dev/null
  echo
  i=$((i + 1))
done'

# Fit for a namespace that enforces PodSecurity `restricted` (the image's user is 100).
pod=probe-$$
overrides='{"spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 100, "seccompProfile": {"type": "RuntimeDefault"}}, "containers": [{"name": "'$pod'", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}}'
probe_pod=(kubectl run "$pod" --namespace "$namespace" --image "${PROBE_IMAGE:-curlimages/curl:8.11.1}"
  --restart=Never --labels=sidecar.istio.io/inject=false --override-type=strategic --overrides "$overrides"
  --env "URL=$url" --env "COUNT=$count" --env "MODE=$mode" --command -- sh -c "$pod_script")

step "$count requests to $url from inside namespace $namespace${mode:+ (one session)}"
if api_only; then
  "${probe_pod[@]}" --dry-run=server -o name
  echo "DEMO_API_ONLY: the probe pod is accepted; not waiting for it to run"
  exit 0
fi
# Run to completion, then read its log: attaching (`kubectl run -i`) loses what a quick pod
# printed before the attach (seen on a real node: 20 requests took 0.3 s).
remove_probe() {
  local status=$?
  kubectl delete pod "$pod" --namespace "$namespace" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  return "$status"
}
trap 'remove_probe; on_exit' EXIT
"${probe_pod[@]}" >/dev/null
phase=""
for _ in $(seq 180); do
  phase=$(kubectl get pod "$pod" --namespace "$namespace" -o jsonpath='{.status.phase}')
  case $phase in Succeeded | Failed) break ;; esac
  sleep 1
done
case $phase in Succeeded | Failed) ;; *) die "probe pod $pod did not finish in 180 s (phase '$phase')" ;; esac
kubectl logs "$pod" --namespace "$namespace" |
  awk -F '|' '
    NF >= 4 {
      n++; status[$1]++; replica[($2 == "" ? "-" : $2)]++; t = $3 + 0; sum += t; if (t > max) max = t
      if (match($0, /"color": *"#[0-9a-fA-F]+"/)) { c = substr($0, RSTART, RLENGTH); sub(/.*"#/, "#", c); sub(/"$/, "", c); if (!(c in color)) colors++; color[c]++ }
    }
    END {
      if (n == 0) { print "no answers"; exit 1 }
      printf "requests: %d   mean %.3fs   max %.3fs\n", n, sum / n, max
      for (s in status) printf "  status %s: %d\n", s, status[s]
      for (r in replica) printf "  replica %s: %d\n", r, replica[r]
      if (colors) { printf "  colors seen by this session: %d\n", colors; for (c in color) printf "    %s: %d\n", c, color[c] }
    }'
