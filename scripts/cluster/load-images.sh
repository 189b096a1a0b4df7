#!/usr/bin/env bash
# Load the images `make images` built (resilience-lab/CHART:appVersion, the charts' default image)
# and Istio's stand-ins (`make istio-images`) from the local Docker engine into the demo cluster's
# nodes; for CLUSTER=host, every archive that `make images` exported (.cache/images/archives/)
# into the node's containerd.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

case $CLUSTER in
  minikube) require_tools minikube docker ;;
  kind) require_tools kind docker ;;
  host)
    require_tools python
    exec "$REPO_ROOT/.venv/bin/python" -m lab host-cluster load-images --name "$CLUSTER_NAME"
    ;;
  *) die "CLUSTER must be minikube, kind or host, not '$CLUSTER'" ;;
esac

# Istio's stand-ins (docs/mesh.md), tagged with the pinned version: `make istio-images` builds them.
istio_version=$(sed -n 's/^ISTIO_VERSION=//p' tools/controlplane/versions.env)
istio_hub=$(sed -n 's/^  hub: *//p' istio/install/global-values.yaml)
for name in pilot proxyv2 install-cni; do
  image=$istio_hub/$name:$istio_version
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    echo "load-images: $image is not in the local Docker engine; run 'make istio-images' before 'make istio-install'" >&2
    continue
  fi
  step "loading $image into $CLUSTER cluster $CLUSTER_NAME"
  case $CLUSTER in
    minikube) minikube --profile "$CLUSTER_NAME" image load "$image" ;;
    kind) kind load docker-image "$image" --name "$CLUSTER_NAME" ;;
  esac
done

for chart in webgatos sqrt; do
  version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "charts/$chart/Chart.yaml")
  image=resilience-lab/$chart:$version
  docker image inspect "$image" >/dev/null 2>&1 ||
    die "image $image is not in the local Docker engine: run 'make images IMAGE_ENGINE=docker' first"
  step "loading $image into $CLUSTER cluster $CLUSTER_NAME"
  case $CLUSTER in
    minikube) minikube --profile "$CLUSTER_NAME" image load "$image" ;;
    kind) kind load docker-image "$image" --name "$CLUSTER_NAME" ;;
  esac
done
