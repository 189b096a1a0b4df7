"""What the lab's node runs for one Pod: the images it can run as processes, and the PodRun it
keeps for each admitted Pod (one container: the first of the spec)."""

import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.host import cgroups
from lab.host.paths import REPO_ROOT, VENV_BIN
from lab.host.procs import Proc
from lab.kube.node.probes import Probe


@dataclass(frozen=True)
class AppImage:
    """One of the repo's services, as its image would run it: gunicorn with the service's config,
    bound to the Pod's address and container port."""
    app: str
    config: Path

    def __call__(self, run: "PodRun") -> list[str]:
        return [str(VENV_BIN / "gunicorn"), "--config", str(self.config), "--bind",
                f"{run.address}:{run.port}", self.app]


# Image repository -> the command line of its container on this node.
Runner = Callable[["PodRun"], list[str]]
RUNNABLE_IMAGES: dict[str, Runner] = {
    "resilience-lab/webgatos": AppImage("webgatos:create_app()",
                                        REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"),
    "resilience-lab/sqrt": AppImage("sqrt:create_app()", REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py"),
}


def image_repository(image: str) -> str:
    """`resilience-lab/webgatos:0.1.0` -> `resilience-lab/webgatos` (a registry port is kept)."""
    name = image.split("@", 1)[0]
    head, sep, tail = name.rpartition(":")
    return head if sep and "/" not in tail else name


def loopback_address(port: int, rng: random.Random | None = None) -> str:
    """A loopback address (127.x.y.z) on which `port` is free: a Pod's own IP on this machine."""
    rng = rng or random.Random()
    for _ in range(200):
        address = f"127.{rng.randint(100, 199)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return address
    raise RuntimeError(f"no loopback address with port {port} free after 200 tries")


def parse_cpu(quantity: str) -> float:
    """CPUs in a Kubernetes quantity: "200m" -> 0.2, "1" -> 1.0, "1.5" -> 1.5."""
    text = str(quantity).strip()
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass
class PodRun:
    """What the node does for one Pod (one container: the first of the spec)."""
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    service_account: str
    ports: dict[str, int]
    image: str
    container: str
    address: str
    port: int
    env: dict[str, str]
    tmp: Path
    grace_seconds: float
    prestop_seconds: float
    cpu_limit: float | None
    probes: dict[str, Probe]
    proc: Proc | None = None
    cgroup: cgroups.CpuGroup | None = None
    restarts: int = 0
    started: bool = False  # startup probe passed (or there is none)
    ready: bool = False
    waiting_reason: str = ""
    waiting_message: str = ""
    last_exit: dict | None = None
    started_at: str = ""
    restart_at: float | None = None
    deleting_since: float | None = None
    sigterm_at: float | None = None
    kill_at: float | None = None
    reported: dict = field(default_factory=dict)
    gone: bool = False  # the Pod is deleted and its process stopped: the listeners' last call
    # Probe threads and the node's loop all report: one at a time, each with the state as it is
    # then, so that the API server's last status is the newest.
    report_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def admit(cls, pod: dict, workdir: Path, rng: random.Random) -> "PodRun":
        """The run of a Pod bound to the node, from its spec: its own loopback address and /tmp
        under `workdir`, its grace period, preStop sleep, CPU limit and probes."""
        meta, spec = pod["metadata"], pod["spec"]
        container = spec["containers"][0]
        ports = {p.get("name", ""): int(p["containerPort"]) for p in container.get("ports", [])}
        port = next(iter(ports.values()), 8080)
        namespace, name = meta["namespace"], meta["name"]
        limits = (container.get("resources") or {}).get("limits") or {}
        return cls(namespace=namespace, name=name, uid=meta["uid"], labels=dict(meta.get("labels") or {}),
                   service_account=spec.get("serviceAccountName", "default"), ports=ports,
                   image=container.get("image", ""),
                   container=container["name"], address=loopback_address(port, rng), port=port, env={},
                   tmp=workdir / "pods" / f"{namespace}_{name}" / "tmp",
                   grace_seconds=float(spec.get("terminationGracePeriodSeconds", 30)),
                   prestop_seconds=float(((container.get("lifecycle") or {}).get("preStop") or {})
                                         .get("sleep", {}).get("seconds", 0)),
                   cpu_limit=parse_cpu(limits.get("cpu")) if limits.get("cpu") else None,
                   probes={kind: probe for kind in ("startup", "liveness", "readiness")
                           if (probe := Probe.from_spec(kind, container.get(f"{kind}Probe"), ports))})

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.alive() else None
