#!/usr/bin/env bash
# under-chaos.sh CHAOS_ARGS... -- COMMAND...: run COMMAND (a load test) while the repo's chaos
# tool (python -m chaos k8s CHAOS_ARGS) kills pods; chaos stops when COMMAND ends and prints its
# summary (and writes it to reports/cluster/chaos-<time>.json).
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

chaos_args=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  chaos_args+=("$1")
  shift
done
if [ "${1:-}" != -- ] || [ $# -lt 2 ]; then
  die "usage: under-chaos.sh CHAOS_ARGS... -- COMMAND..."
fi
shift
require_tools python
pin_context

mkdir -p reports/cluster
summary=reports/cluster/chaos-$(date +%Y%m%d-%H%M%S).json
step "chaos: python -m chaos k8s ${chaos_args[*]}"
.venv/bin/python -m chaos k8s "${chaos_args[@]}" --summary-json "$summary" &
chaos_pid=$!
BACKGROUND_PIDS+=("$chaos_pid")

status=0
"$@" || status=$?
# SIGTERM ends the chaos run after its current kill, with its summary line.
kill -TERM "$chaos_pid" 2>/dev/null || true
wait "$chaos_pid" || die "the chaos tool failed (see above)"
echo "chaos summary: $summary"
exit "$status"
