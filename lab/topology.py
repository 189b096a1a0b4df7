"""A lab topology on loopback, from a description: the session store (Redis, or a two-member
Hazelcast cluster), N gunicorn replicas kept alive by the supervisor, and Envoy in front, rendered
from a mesh scenario, whose active `/readyz` health check is the readiness gate.

`TopologySpec.validate()` rejects bad input before anything starts; `running(spec, workdir)` brings
the topology up and tears every process down when its `with` block ends, whatever happened.
"""

import json
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab import binaries
from lab.procs import LOOPBACK, ProcessGroup, free_port, port_in_use

if TYPE_CHECKING:
    from lab.supervisor import Supervisor

REPO_ROOT = binaries.REPO_ROOT
SCENARIO_DIR = REPO_ROOT / "istio" / "scenarios"
STORES = ("memory", "redis", "hazelcast")
APPS = {
    "webgatos": ("webgatos:create_app()", REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"),
    "sqrt": ("sqrt:create_app()", REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py"),
}
MAX_REPLICAS = 8  # two shared cores: more replicas only measure the machine
HAZELCAST_MEMBERS = 2


class LabInputError(ValueError):
    """Bad input to the lab (store, scenario, replica count, port); the message says which."""


def scenario_names() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class TopologySpec:
    store: str = "redis"
    replicas: int = 2
    scenario: str = "retries"
    app: str = "webgatos"
    port: int = 0  # Envoy's listener; 0 picks a free port
    admin_port: int = 0  # Envoy's admin; 0 picks a free port
    restart_delay: float = 3.0  # seconds a killed replica stays down, as a pod's restart would
    drain_seconds: float = 2.0  # SHUTDOWN_DRAIN_SECONDS of each replica
    stop_grace: float = 10.0  # seconds each replica gets to stop at teardown before SIGKILL
    extra_env: dict = field(default_factory=dict)

    def validate(self) -> None:
        """Raise LabInputError naming the first bad field; nothing has started yet."""
        if self.app not in APPS:
            raise LabInputError(f"unknown app {self.app!r}: choose one of {', '.join(APPS)}")
        if self.store not in STORES:
            raise LabInputError(f"unknown store {self.store!r}: choose one of {', '.join(STORES)}")
        names = scenario_names()
        if self.scenario not in names:
            where = SCENARIO_DIR.relative_to(REPO_ROOT)
            raise LabInputError(f"unknown scenario {self.scenario!r}: choose one of "
                                f"{', '.join(names) or '(none found)'} (files in {where}/)")
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int) \
                or not 1 <= self.replicas <= MAX_REPLICAS:
            raise LabInputError(f"bad replica count {self.replicas!r}: a whole number from 1 to {MAX_REPLICAS}")
        if self.restart_delay < 0:
            raise LabInputError(f"bad restart delay {self.restart_delay!r}: seconds, 0 or more")
        for what, port in (("Envoy listener", self.port), ("Envoy admin", self.admin_port)):
            if not 0 <= port <= 65535:
                raise LabInputError(f"bad {what} port {port}: 1-65535, or 0 for a free one")
        if self.port and self.port == self.admin_port:
            raise LabInputError(f"the Envoy listener and admin ports are both {self.port}: pick two")
        for what, port in (("Envoy listener", self.port), ("Envoy admin", self.admin_port)):
            if port and port_in_use(port):
                raise LabInputError(f"port {port} ({what}) on {LOOPBACK} is already in use: pick another")
        if self.store == "hazelcast":
            binaries.java()
            binaries.hazelcast_jar()


def hazelcast_available() -> str | None:
    """None when Java and the Hazelcast jar are both there, else why not."""
    try:
        binaries.java()
        binaries.hazelcast_jar()
    except binaries.MissingBinary as missing:
        return str(missing)
    return None


@dataclass
class Topology:
    """A running topology: where everything listens, and the processes behind it."""

    spec: TopologySpec
    group: ProcessGroup
    workdir: Path
    url: str
    admin_url: str
    replica_urls: list[str]
    state_path: Path
    supervisor: "Supervisor"
    store_address: str = ""

    def describe(self) -> list[str]:
        lines = [f"mesh (Envoy, scenario {self.spec.scenario}): {self.url}/",
                 f"Envoy admin:   {self.admin_url}/",
                 f"session store: {self.spec.store}" + (f" at {self.store_address}" if self.store_address else "")]
        lines += [f"{self.spec.app}-{i}:  {url}/" for i, url in enumerate(self.replica_urls)]
        lines.append(f"replica state (for `python -m chaos local --state`): {self.state_path}")
        lines.append(f"logs: {self.group.log_dir}")
        return lines

    def envoy_stats(self) -> dict[str, int]:
        """Envoy's counters (name -> value); empty when the admin does not answer."""
        import urllib.request
        try:
            with urllib.request.urlopen(f"{self.admin_url}/stats?format=json&usedonly", timeout=2) as response:
                stats = json.load(response).get("stats", [])
        except (OSError, ValueError):
            return {}
        return {item["name"]: item["value"] for item in stats if "name" in item and isinstance(item.get("value"), int)}


def _store_env(spec: TopologySpec, group: ProcessGroup) -> tuple[dict, str]:
    if spec.store == "redis":
        port = free_port()
        group.redis(port)
        return {"REDIS_URL": f"redis://{LOOPBACK}:{port}/0"}, f"redis://{LOOPBACK}:{port}/0"
    if spec.store == "hazelcast":
        ports = [free_port() for _ in range(HAZELCAST_MEMBERS)]
        cluster = f"lab-{uuid.uuid4().hex[:8]}"
        group.hazelcast_cluster(ports, cluster)
        members = ",".join(f"{LOOPBACK}:{p}" for p in ports)
        return {"HAZELCAST_MEMBERS": members, "HAZELCAST_CLUSTER_NAME": cluster}, f"{members} (cluster {cluster})"
    return {}, ""


@contextmanager
def running(spec: TopologySpec, workdir: str | Path) -> Iterator[Topology]:
    """Start the topology described by `spec`; stop every process when the block ends."""
    from lab import envoy
    from lab.supervisor import Supervisor

    spec.validate()
    try:
        values = envoy.load_scenario(spec.scenario)
    except envoy.ScenarioError as error:
        raise LabInputError(str(error)) from None
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with ProcessGroup(workdir / "logs") as group:
        store_env, store_address = _store_env(spec, group)
        app, config = APPS[spec.app]
        env = {"SESSION_STORE": spec.store, "SECRET_KEY": secrets.token_hex(32),
               "SHUTDOWN_DRAIN_SECONDS": str(spec.drain_seconds), **envoy.replica_environment(values),
               **store_env, **spec.extra_env}
        state_path = workdir / "replicas.json"

        def start_replica(name: str, port: int):
            return group.gunicorn(app, port, {**env, "REPLICA_NAME": name}, name=name, config=config, wait=False)

        sup = Supervisor(group, start_replica, replicas=spec.replicas, state_path=state_path,
                         name_prefix=spec.app, restart_delay=spec.restart_delay).start()
        try:
            listen_port = spec.port or free_port()
            admin_port = spec.admin_port or free_port()
            bootstrap = envoy.render_bootstrap(values, listen_port=listen_port, admin_port=admin_port,
                                               upstreams=sup.upstreams)
            config_path = workdir / "envoy.json"
            config_path.write_text(json.dumps(bootstrap, indent=2))
            group.envoy(config_path, admin_port)
            topology = Topology(spec=spec, group=group, workdir=workdir, url=f"http://{LOOPBACK}:{listen_port}",
                                admin_url=f"http://{LOOPBACK}:{admin_port}",
                                replica_urls=[f"http://{LOOPBACK}:{p}" for p in sup.ports], state_path=state_path,
                                supervisor=sup, store_address=store_address)
            sup.wait_ready(timeout=60)
            wait_envoy_routes(topology, spec.replicas)
            yield topology
        finally:
            # The supervisor first, or it would restart the replicas the group is stopping.
            sup.stop(grace=spec.stop_grace)


def wait_envoy_routes(topology: Topology, healthy: int, timeout: float = 60.0) -> float:
    """Wait until Envoy's health check sees `healthy` upstreams pass `/readyz`."""
    from lab.procs import wait_until

    def ready() -> bool:
        stats = topology.envoy_stats()
        return any(name.endswith(".membership_healthy") and value >= healthy for name, value in stats.items())
    return wait_until(ready, timeout, f"Envoy to see {healthy} healthy replica(s) at {topology.admin_url}",
                      interval=0.2)
