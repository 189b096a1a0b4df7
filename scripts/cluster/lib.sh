# shellcheck shell=bash
# Sourced by scripts/cluster/*.sh: error reporting, tool checks, and a kubeconfig pinned to one
# context, so no command of a demo can reach the user's current context by accident.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Paths given to the scripts (charts, values files, scenarios) are relative to the repo root;
# a relative KUBECONFIG stays relative to where the user was.
if [ -n "${KUBECONFIG:-}" ]; then
  kubeconfig_files=()
  IFS=: read -ra kubeconfig_parts <<<"$KUBECONFIG"
  for part in "${kubeconfig_parts[@]}"; do
    case $part in /*) kubeconfig_files+=("$part") ;; ?*) kubeconfig_files+=("$PWD/$part") ;; esac
  done
  KUBECONFIG=$(IFS=:; echo "${kubeconfig_files[*]}")
  export KUBECONFIG
fi
cd "$REPO_ROOT"
CLUSTER=${CLUSTER:-minikube}
CLUSTER_NAME=${CLUSTER_NAME:-resilience-lab}

die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 1
}

step() { printf '\n==> %s\n' "$*"; }

# What a script leaves behind is undone on exit, success or failure: processes it started in
# the background (by pid), the pinned kubeconfig; and a failed demo step says how to clean up.
BACKGROUND_PIDS=()
PINNED_KUBECONFIG_DIR=""
CLEAN_HINT=""
on_exit() {
  local status=$? pid
  for pid in "${BACKGROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -z "$PINNED_KUBECONFIG_DIR" ] || rm -rf "$PINNED_KUBECONFIG_DIR"
  [ "$status" = 0 ] || [ -z "$CLEAN_HINT" ] || echo "$CLEAN_HINT" >&2
}
trap on_exit EXIT

# Helm for users: whatever is on PATH, else the repo's pinned copy from `make helm`.
# `type -P`, not `command -v`: the latter would name the helm() function below.
helm_bin() {
  if type -P helm >/dev/null; then
    type -P helm
  elif [ -x "$REPO_ROOT/.cache/bin/helm" ]; then
    echo "$REPO_ROOT/.cache/bin/helm"
  else
    return 1
  fi
}

install_hint() {
  case $1 in
    kubectl) echo "install kubectl (Kubernetes docs: Install Tools), or use 'minikube kubectl'" ;;
    helm) echo "run 'make helm', or install Helm 3.14+" ;;
    minikube) echo "install minikube, or use CLUSTER=kind" ;;
    kind) echo "install kind (go install sigs.k8s.io/kind@latest), or use CLUSTER=minikube" ;;
    istioctl) echo "install istioctl ${ISTIO_VERSION:-} (Istio's release archive, bin/istioctl)" ;;
    python) echo "run 'make venv'" ;;
    *) echo "install $1" ;;
  esac
}

# require_tools TOOL...: report every missing tool at once, then stop.
require_tools() {
  local tool missing=0
  for tool in "$@"; do
    case $tool in
      helm) helm_bin >/dev/null && continue ;;
      python) [ -x "$REPO_ROOT/.venv/bin/python" ] && continue ;;
      *) command -v "$tool" >/dev/null && continue ;;
    esac
    printf 'missing: %s (%s)\n' "$tool" "$(install_hint "$tool")" >&2
    missing=1
  done
  [ "$missing" = 0 ] || die "install the missing tools above, then run again"
}

# The context `make cluster-up` creates for CLUSTER and CLUSTER_NAME.
default_context() {
  case $CLUSTER in
    minikube) echo "$CLUSTER_NAME" ;;
    kind) echo "kind-$CLUSTER_NAME" ;;
    host) echo "host-$CLUSTER_NAME" ;;
    *) die "CLUSTER must be minikube, kind or host, not '$CLUSTER'" ;;
  esac
}

# pin_context: export KUBECONFIG as a private copy holding only KUBE_CONTEXT (default: the one
# cluster-up creates). kubectl, helm, istioctl and the chaos tool all honour it. Reads the
# kubeconfig only; contacts no cluster.
pin_context() {
  KUBE_CONTEXT=${KUBE_CONTEXT:-$(default_context)}
  local contexts
  # Read fully first: `grep -q` quitting early would break the pipe under pipefail.
  contexts=$(kubectl config get-contexts -o name 2>/dev/null) || true
  grep -Fxq -- "$KUBE_CONTEXT" <<<"$contexts" ||
    die "kube context '$KUBE_CONTEXT' not found: run 'make cluster-up CLUSTER=$CLUSTER', or name an existing context with KUBE_CONTEXT=..."
  PINNED_KUBECONFIG_DIR=$(mktemp -d)
  kubectl config view --minify --flatten --context "$KUBE_CONTEXT" >"$PINNED_KUBECONFIG_DIR/config"
  export KUBECONFIG="$PINNED_KUBECONFIG_DIR/config" KUBE_CONTEXT
}

helm() { "$(helm_bin)" "$@"; }

# DEMO_API_ONLY=1: every step talks to the API server as usual (installs, applies, labels, the chaos
# run) but stops before waiting for pods to run. The test suite runs the demos this way against
# its own kube-apiserver, which has no kubelet (docs/verification.md).
api_only() { [ "${DEMO_API_ONLY:-}" = 1 ]; }

# in_demo NAMESPACE: if this step fails, the demo's namespace stays for inspection; say so.
in_demo() {
  CLEAN_HINT="resources stay in namespace $1 for inspection; 'make demo-${1#"${DEMO_NS_PREFIX:-rl-}"}-clean' removes them"
}
