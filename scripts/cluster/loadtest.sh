#!/usr/bin/env bash
# loadtest.sh NAMESPACE NAME [--expect-fail] -- LOCUST_ARGS...: run the repo's Locust files
# (loadtests/*.py, mounted from a ConfigMap) as a Job inside NAMESPACE, so the load reaches the
# Services as in-cluster clients do; keep its log and summary under reports/cluster/NAME/.
# The exit code is Locust's: 1 when a quality gate fails. --expect-fail turns that around, for
# the demo whose point is a failing check. LOADTEST_PRINT_JOB=1 prints the Job and stops there.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

[ $# -ge 4 ] || die "usage: loadtest.sh NAMESPACE NAME [--expect-fail] -- LOCUST_ARGS..."
namespace=$1 name=$2
shift 2
expect_fail=0
if [ "$1" = --expect-fail ]; then expect_fail=1 && shift; fi
[ "${1:-}" = -- ] || die "usage: loadtest.sh NAMESPACE NAME [--expect-fail] -- LOCUST_ARGS..."
shift

# The image matches the Locust that .venv runs locally (requirements-dev.txt), so the same
# locustfile behaves the same here.
locust_version=$(sed -n 's/^locust==//p' requirements-dev.txt)
[ -n "$locust_version" ] || die "no locust==VERSION pin in requirements-dev.txt"
job=loadtest-$name
reports=reports/cluster/$name

# Locust's -f paths are repo paths; in the pod the directory is mounted at /loadtests.
locust_args=()
for arg in "$@"; do locust_args+=("${arg/#loadtests\//\/loadtests\/}"); done

args_json=$(printf '%s\n' "${locust_args[@]}" | sed 's/\\/\\\\/g; s/"/\\"/g; s/.*/"&"/' | paste -sd, -)
manifest=$(cat <<JOB
apiVersion: batch/v1
kind: Job
metadata:
  name: $job
  labels: {app.kubernetes.io/name: loadtest, app.kubernetes.io/part-of: resilience-lab}
spec:
  backoffLimit: 0
  ttlSecondsAfterFinished: 3600
  template:
    metadata:
      labels: {app.kubernetes.io/name: loadtest, sidecar.istio.io/inject: "false"}
    spec:
      restartPolicy: Never
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: locust
          image: locustio/locust:$locust_version
          # Locust's own output, then the run's summary after a marker line, all on stdout.
          command: [sh, -c, 'locust "\$@" --summary-json /tmp/summary.json; status=\$?; echo "=== summary.json"; cat /tmp/summary.json 2>/dev/null; echo; exit \$status', locust]
          args: [$args_json]
          env: [{name: PYTHONDONTWRITEBYTECODE, value: "1"}, {name: HOME, value: /tmp}]
          resources:
            requests: {cpu: 200m, memory: 128Mi}
            limits: {cpu: "1", memory: 512Mi}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          volumeMounts:
            - {name: loadtests, mountPath: /loadtests, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: loadtests, configMap: {name: loadtest-files}}
        - {name: tmp, emptyDir: {sizeLimit: 64Mi}}
JOB
)
if [ "${LOADTEST_PRINT_JOB:-}" = 1 ]; then
  echo "$manifest"
  exit 0
fi

require_tools kubectl
pin_context
in_demo "$namespace"
step "Locust in $namespace: locust ${locust_args[*]}"
kubectl create configmap loadtest-files --namespace "$namespace" --from-file=loadtests/ \
  --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl delete job "$job" --namespace "$namespace" --ignore-not-found --wait=true >/dev/null
kubectl apply --namespace "$namespace" -f - >/dev/null <<<"$manifest"
if api_only; then
  echo "DEMO_API_ONLY: job $job is created; not waiting for it to run"
  exit 0
fi

# Bounded wait: the Job's pod must start, then finish.
deadline=$((SECONDS + ${LOADTEST_TIMEOUT_SECONDS:-900}))
while :; do
  succeeded=$(kubectl get job "$job" --namespace "$namespace" -o 'jsonpath={.status.succeeded}')
  failed=$(kubectl get job "$job" --namespace "$namespace" -o 'jsonpath={.status.failed}')
  [ -z "$succeeded$failed" ] || break
  if [ "$SECONDS" -ge "$deadline" ]; then
    kubectl describe job "$job" --namespace "$namespace" | tail -n 20
    die "job $job did not finish within ${LOADTEST_TIMEOUT_SECONDS:-900}s"
  fi
  sleep 5
done

mkdir -p "$reports"
kubectl logs "job/$job" --namespace "$namespace" >"$reports/locust.log"
sed '1,/^=== summary.json$/d' "$reports/locust.log" >"$reports/summary.json"
sed '/^=== summary.json$/,$d' "$reports/locust.log" | tail -n 40
echo "report: $reports/locust.log, $reports/summary.json"

if [ -n "$succeeded" ]; then
  [ "$expect_fail" = 0 ] || die "expected the check to fail here, but every quality gate passed"
  echo "quality gates: passed"
else
  grep -h "quality gate failed" "$reports/locust.log" || true
  [ "$expect_fail" = 1 ] || die "quality gate failed (see $reports/locust.log)"
  echo "quality gates: failed, as this demo expects"
fi
