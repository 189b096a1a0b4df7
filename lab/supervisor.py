"""The local lab's replica supervisor: N replicas of one command, each restarted on its own port
after it dies, the way a ReplicaSet replaces a deleted pod.

    with ProcessGroup(log_dir) as group:
        def start(name, port):   # must return at once; readiness is waited for separately
            return group.gunicorn("webgatos:create_app()", port, {"REPLICA_NAME": name},
                                  name=name, config=GUNICORN_CONF, wait=False)
        with Supervisor(group, start, replicas=3, state_path=run_dir / "replicas.json") as sup:
            sup.wait_ready(timeout=60)
            ...  # Envoy's static upstreams: sup.upstreams; chaos: `python -m chaos local --state ...`

A replica keeps its name (webgatos-0, ...) and port for its whole life, so Envoy's static upstream
list stays valid across restarts. The state file (`replicas.json`, a list of
`{name, pid, port, restarts, state}`, rewritten atomically on every change) is what
`python -m chaos local` reads to pick a victim. `events()` lists exits and restarts with wall-clock
timestamps, so reports can line them up with client errors.

One monitor thread in the lab process does the watching: the lab already owns the processes
through a ProcessGroup, so a separate supervisor daemon would only add a second owner to keep in
sync. Restarts use a fixed delay (a ReplicaSet replaces a deleted pod at once; the delay stands
for scheduling and container start), not the kubelet's crash-loop back-off.
"""

import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab.procs import LOOPBACK, Proc, ProcessGroup, free_port, http_status, tcp_accepts

RUNNING = "running"
RESTARTING = "restarting"
STOPPED = "stopped"

DEFAULT_RESTART_DELAY = 1.5

Starter = Callable[[str, int], Proc]


def utc_timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Replica:
    name: str
    port: int
    proc: Proc | None = None
    restarts: int = 0
    state: str = STOPPED
    restart_at: float = 0.0  # monotonic time of the next start while RESTARTING

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.popen is not None else None

    def record(self) -> dict:
        """The state file's entry; pid is null unless running, so nothing signals a dead pid."""
        return {"name": self.name, "pid": self.pid if self.state == RUNNING else None, "port": self.port,
                "restarts": self.restarts, "state": self.state}


def write_json_atomically(path: Path, data) -> None:
    """Readers (another process) see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def read_state(path: str | Path) -> list[dict]:
    """The replicas recorded in a supervisor's state file."""
    records = json.loads(Path(path).read_text())
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of replicas")
    return records


class Supervisor:
    """Runs `replicas` copies of what `start(name, port)` starts, restarting each one that exits
    after `restart_delay` seconds, on the same port and under the same name."""

    def __init__(self, group: ProcessGroup, start: Starter, replicas: int, state_path: str | Path,
                 name_prefix: str = "webgatos", restart_delay: float = DEFAULT_RESTART_DELAY,
                 ports: Sequence[int] | None = None, ready_path: str | None = "/readyz",
                 poll_interval: float = 0.05):
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        if restart_delay < 0:
            raise ValueError(f"restart_delay must not be negative, got {restart_delay}")
        if ports is not None and len(ports) != replicas:
            raise ValueError(f"got {len(ports)} ports for {replicas} replicas")
        self.group = group
        self.start_replica = start
        self.state_path = Path(state_path)
        self.restart_delay = restart_delay
        self.ready_path = ready_path
        self.poll_interval = poll_interval
        ports = list(ports) if ports is not None else [free_port() for _ in range(replicas)]
        self.replicas = [Replica(f"{name_prefix}-{index}", port) for index, port in enumerate(ports)]
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None

    # Life cycle

    def __enter__(self) -> "Supervisor":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> "Supervisor":
        """Start every replica (without waiting for readiness) and the monitor thread."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        for replica in self.replicas:
            self._start(replica, event="started")
        self._write_state()
        self._monitor = threading.Thread(target=self._watch, name="replica-supervisor", daemon=True)
        self._monitor.start()
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop watching, then stop every replica (whole process groups)."""
        self._stopping.set()
        if self._monitor is not None:
            self._monitor.join(timeout=30)
        for replica in self.replicas:
            if replica.proc is not None:
                replica.proc.stop(grace)
                self._forget(replica.proc)
            replica.state = STOPPED
        self._write_state()

    # What the lab and the tests read

    @property
    def ports(self) -> list[int]:
        return [replica.port for replica in self.replicas]

    @property
    def upstreams(self) -> list[tuple[str, int]]:
        return [(LOOPBACK, replica.port) for replica in self.replicas]

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [replica.record() for replica in self.replicas]

    def events(self) -> list[dict]:
        """Every start, exit and restart so far: `{time, epoch, event, name, pid, port, ...}`;
        an exit carries `returncode` (negative: killed by that signal number)."""
        with self._lock:
            return [dict(event) for event in self._events]

    def replica_ready(self, replica: Replica) -> bool:
        if replica.state != RUNNING or not replica.proc.alive():
            return False
        if self.ready_path is None:
            return tcp_accepts(replica.port)
        return http_status(f"http://{LOOPBACK}:{replica.port}{self.ready_path}") == 200

    def wait_ready(self, timeout: float = 60.0, interval: float = 0.1) -> float:
        """Block until every replica answers `ready_path` with 200 (or accepts TCP when
        `ready_path` is None); return the seconds it took. TimeoutError names the laggards."""
        start = time.monotonic()
        while True:
            laggards = [replica for replica in self.replicas if not self.replica_ready(replica)]
            if not laggards:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                tails = "\n".join(r.proc.log_tail(10) for r in laggards if r.proc is not None)
                names = ", ".join(f"{r.name} ({r.state}, port {r.port})" for r in laggards)
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for replicas to be ready: "
                                   f"{names}\n{tails}")
            time.sleep(interval)

    # Internals

    def _record(self, event: str, replica: Replica, **details) -> None:
        now = time.time()
        entry = {"time": utc_timestamp(now), "epoch": round(now, 3), "event": event, "name": replica.name,
                 "pid": replica.pid, "port": replica.port, "restarts": replica.restarts, **details}
        with self._lock:
            self._events.append(entry)

    def _start(self, replica: Replica, event: str) -> None:
        try:
            proc = self.start_replica(replica.name, replica.port)
        except Exception as error:  # a failed start is retried like a crash, and reported
            replica.proc, replica.state = None, RESTARTING
            replica.restart_at = time.monotonic() + self.restart_delay
            self._record("start-failed", replica, error=str(error))
            return
        with self._lock:
            replica.proc, replica.state = proc, RUNNING
        self._record(event, replica)

    def _forget(self, proc: Proc) -> None:
        # A dead replica's process group is gone; keep the ProcessGroup from signalling its id
        # again at teardown, when the kernel may have handed that id to someone else.
        if proc in self.group.procs:
            self.group.procs.remove(proc)

    def _watch(self) -> None:
        while not self._stopping.wait(self.poll_interval):
            try:
                self._check_replicas()
            except Exception as error:  # keep supervising; the report shows what went wrong
                with self._lock:
                    self._events.append({"time": utc_timestamp(time.time()), "epoch": round(time.time(), 3),
                                         "event": "monitor-error", "error": repr(error)})

    def _check_replicas(self) -> None:
        changed = False
        for replica in self.replicas:
            if self._stopping.is_set():
                return
            if replica.state == RUNNING and not replica.proc.alive():
                returncode = replica.proc.returncode()
                # Like a container runtime, end every process the replica left behind (for
                # gunicorn: workers still holding the listening socket the restart needs).
                replica.proc.stop(grace=0)
                self._forget(replica.proc)
                self._record("exited", replica, returncode=returncode)
                with self._lock:
                    replica.state = RESTARTING
                    replica.restart_at = time.monotonic() + self.restart_delay
                changed = True
            elif replica.state == RESTARTING and time.monotonic() >= replica.restart_at:
                replica.restarts += 1
                self._start(replica, event="restarted")
                changed = True
        if changed:
            self._write_state()

    def _write_state(self) -> None:
        write_json_atomically(self.state_path, self.snapshot())
