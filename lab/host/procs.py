"""Process plumbing shared by the lab and the tests: free ports, bounded readiness polling, and
child processes that always die with their whole process group.

Every child runs in its own session (process group), logs to a file, and is stopped with
SIGTERM to the group, then SIGKILL after a bounded wait. A ProcessGroup stops everything it
started when its `with` block ends, whatever happened inside it, and again at interpreter exit.
"""

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.host import binaries
from lab.host.paths import VENV_BIN

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free right now on `host` (picked by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05,
               proc: "Proc | None" = None) -> float:
    """Poll `predicate` until true; return the seconds it took. Raise TimeoutError after `timeout`,
    or RuntimeError at once when `proc` dies meanwhile (both messages carry the log's tail)."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.returncode()} while waiting for {what}\n"
                               f"{proc.log_tail()}")
        if time.monotonic() - start > timeout:
            tail = f"\n{proc.log_tail()}" if proc is not None else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)


def wait_for_value(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.25,
                   explain: Callable[[], str] | None = None):
    """Poll `predicate` until it returns something truthy; return that. On a timeout the error
    carries `explain()`: what a person needs to see why it never came."""
    found = []

    def check() -> bool:
        value = predicate()
        if value:
            found.append(value)
        return bool(value)
    try:
        wait_until(check, timeout, what, interval=interval)
    except TimeoutError as error:
        if explain is None:
            raise
        raise TimeoutError(f"{error}\n{explain()}") from None
    return found[-1]


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


class Proc:
    """One child process in its own process group, logging to `log_path`."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict | None = None,
                 cwd: str | Path | None = None):
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = env
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.cwd, start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def signal(self, signum: int) -> None:
        """Signal the main process only (as a kubelet signals PID 1 of a container)."""
        if self.alive():
            os.kill(self.pid, signum)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the whole group, wait up to `grace` seconds, then SIGKILL the group."""
        if self.popen is None:
            return
        for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure no straggler of its group survives it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            break

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return f"[{self.name}: no log at {self.log_path}]"
        return "\n".join(f"[{self.name}] {line}" for line in text[-lines:])


class ProcessGroup:
    """Owns the processes started through it; stops them all, newest first, on exit."""

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self.procs: list[Proc] = []
        atexit.register(self.stop_all)

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop_all()

    def start(self, name: str, argv: Sequence[str], env: dict | None = None,
              cwd: str | Path | None = None) -> Proc:
        proc = Proc(name, argv, self.log_dir / f"{name}.log", env=env, cwd=cwd).start()
        self.procs.append(proc)
        return proc

    def stop_all(self, grace: float = 10.0) -> None:
        while self.procs:
            self.procs.pop().stop(grace)

    # Starters for the lab's real components. Each returns once the component is ready.

    def redis(self, port: int, name: str = "redis", timeout: float = 20.0) -> Proc:
        workdir = self.log_dir / name
        workdir.mkdir(parents=True, exist_ok=True)
        proc = self.start(name, [binaries.redis_server(), "--port", str(port), "--bind", LOOPBACK,
                                 "--save", "", "--appendonly", "no", "--dir", str(workdir)])
        wait_until(lambda: redis_pings(port), timeout, f"{name} on port {port}", proc=proc)
        return proc

    def hazelcast_member(self, port: int, member_ports: Sequence[int], cluster_name: str,
                         name: str | None = None, timeout: float = 90.0, wait: bool = True) -> Proc:
        """A Hazelcast member on loopback that joins the members at `member_ports` over TCP.
        Readiness is Hazelcast's own health endpoint (/hazelcast/health/ready)."""
        name = name or f"hazelcast-{port}"
        members = ",".join(f"{LOOPBACK}:{p}" for p in member_ports)
        java, jar = binaries.hazelcast_member()
        argv = [java, "-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dhazelcast.phone.home.enabled=false",
                f"-Dhazelcast.local.localAddress={LOOPBACK}",
                f"-Dhz.cluster-name={cluster_name}",
                f"-Dhz.network.port.port={port}",
                "-Dhz.network.port.auto-increment=false",
                "-Dhz.network.join.multicast.enabled=false",
                "-Dhz.network.join.tcp-ip.enabled=true",
                f"-Dhz.network.join.tcp-ip.members={members}",
                "-Dhz.network.rest-api.enabled=true",
                "-Dhz.network.rest-api.endpoint-groups.HEALTH_CHECK.enabled=true",
                "-cp", jar, "com.hazelcast.core.server.HazelcastMemberStarter"]
        proc = self.start(name, argv)
        if wait:
            wait_hazelcast_ready(port, timeout, proc)
        return proc

    def hazelcast_cluster(self, ports: Sequence[int], cluster_name: str, timeout: float = 120.0) -> list[Proc]:
        """Start every member at once (they join each other), then wait for each to be ready."""
        procs = [self.hazelcast_member(p, ports, cluster_name, wait=False) for p in ports]
        for port, proc in zip(ports, procs, strict=True):
            wait_hazelcast_ready(port, timeout, proc, cluster_size=len(ports))
        return procs

    def gunicorn(self, app: str, port: int, env: dict, name: str, config: str | Path | None = None,
                 ready_path: str = "/readyz", timeout: float = 30.0, wait: bool = True) -> Proc:
        """A gunicorn server for `app` (e.g. "webgatos:create_app()") on loopback `port`.
        `env` is added to this process's environment; readiness is `ready_path` answering 200."""
        argv = [str(VENV_BIN / "gunicorn"), "--bind", f"{LOOPBACK}:{port}"]
        if config is not None:
            argv += ["--config", str(config)]
        proc = self.start(name, argv + [app], env={**os.environ, **env})
        if wait:
            url = f"http://{LOOPBACK}:{port}{ready_path}"
            wait_until(lambda: http_status(url) == 200, timeout, f"{name} at {url}", proc=proc)
        return proc

    def envoy(self, config_path: str | Path, admin_port: int, name: str = "envoy",
              timeout: float = 30.0, extra_args: Sequence[str] = ()) -> Proc:
        """Envoy with a bootstrap file (plus `extra_args`, e.g. --concurrency 1); ready when its
        admin /ready says LIVE."""
        proc = self.start(name, [binaries.envoy(), "-c", str(config_path), "--disable-hot-restart",
                                 "--log-level", "warning", *extra_args])
        url = f"http://{LOOPBACK}:{admin_port}/ready"
        wait_until(lambda: http_status(url) == 200, timeout, f"{name} admin at {url}", proc=proc)
        return proc


def redis_pings(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def hazelcast_health(port: int) -> dict | None:
    import json
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/hazelcast/health", timeout=1.0) as response:
            return json.load(response)
    except (OSError, ValueError):
        return None


def wait_hazelcast_ready(port: int, timeout: float, proc: Proc | None = None, cluster_size: int = 1) -> float:
    """Wait until the member is ACTIVE in a cluster of `cluster_size` that is also safe (no partition
    migration under way): a cluster that has just formed still moves partitions to the new member,
    and short-TTL entries written meanwhile were seen to vanish."""
    def ready() -> bool:
        health = hazelcast_health(port)
        return bool(health and health.get("nodeState") == "ACTIVE"
                    and health.get("clusterSize", 0) >= cluster_size
                    and health.get("clusterSafe") is True and health.get("migrationQueueSize") == 0)
    return wait_until(ready, timeout, f"Hazelcast member on port {port} (cluster size {cluster_size})",
                      interval=0.2, proc=proc)
