#!/usr/bin/env bash
# Create the demo cluster (CLUSTER=minikube|kind|host, named CLUSTER_NAME) with metrics-server, so
# the HPA demo has CPU metrics. Reuses the cluster when it already exists. CLUSTER=host is a
# one-node cluster on this Linux machine (root; lab/kube/hostcluster/), with the images of `make images`.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

# metrics-server for kind, from its project's chart repository (minikube ships it as an addon).
METRICS_SERVER_REPO=https://kubernetes-sigs.github.io/metrics-server/
METRICS_SERVER_CHART_VERSION=3.12.2

case $CLUSTER in
  minikube)
    require_tools minikube kubectl
    step "minikube profile $CLUSTER_NAME (kubelet housekeeping every 10s: fresher CPU figures for the HPA)"
    minikube start --profile "$CLUSTER_NAME" \
      --cpus "${CLUSTER_CPUS:-4}" --memory "${CLUSTER_MEMORY:-8g}" \
      --extra-config=kubelet.housekeeping-interval=10s \
      --addons=metrics-server
    ;;
  kind)
    require_tools kind kubectl helm
    if grep -Fxq -- "$CLUSTER_NAME" <<<"$(kind get clusters 2>/dev/null)"; then
      step "kind cluster $CLUSTER_NAME exists; reusing it"
    else
      step "kind cluster $CLUSTER_NAME (gateway NodePort 30080 published on 127.0.0.1:${KIND_GATEWAY_PORT:-8080})"
      sed "s/hostPort: 8080/hostPort: ${KIND_GATEWAY_PORT:-8080}/" "$(dirname "$0")/kind-config.yaml" |
        kind create cluster --name "$CLUSTER_NAME" --config - --wait 180s
    fi
    pin_context
    step "metrics-server (chart $METRICS_SERVER_CHART_VERSION); kind's kubelets have self-signed certificates"
    helm upgrade --install metrics-server metrics-server \
      --repo "$METRICS_SERVER_REPO" --version "$METRICS_SERVER_CHART_VERSION" \
      --namespace kube-system --wait --timeout 5m \
      --set 'args={--kubelet-insecure-tls}'
    ;;
  host)
    require_tools python
    step "host cluster $CLUSTER_NAME: kubelet, containerd, kube-proxy, CoreDNS and metrics-server on this machine"
    "$REPO_ROOT/.venv/bin/python" -m lab host-cluster up --name "$CLUSTER_NAME"
    ;;
  *) die "CLUSTER must be minikube, kind or host, not '$CLUSTER'" ;;
esac

pin_context
step "waiting for the metrics API (the HPA reads CPU from it)"
for _ in $(seq 30); do
  kubectl top nodes >/dev/null 2>&1 && break
  sleep 10
done
kubectl top nodes || echo "metrics not available yet; 'kubectl --context $KUBE_CONTEXT top nodes' shows when they are"
echo "cluster ready: context $KUBE_CONTEXT. Next: make images CLUSTER=$CLUSTER"
