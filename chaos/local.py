"""The local lab target: signal a replica (a container's process on the lab's node, lab/kube/node/),
which then restarts it the way a kubelet restarts a crashed container.

Victims come from the replica state file (replicas.json), whose format this module owns: the lab
writes it with `write_state`, the tool reads it with `read_state`. Only replicas in state `running`
whose pid is alive and still leads its own process group (every lab replica does; a recycled pid
almost never would) are candidates. The signal follows the grace period as in Kubernetes:
0 sends SIGKILL; otherwise SIGTERM, and with a grace period of N seconds a SIGKILL follows after N
seconds if that same process is still alive. Only the main process is signalled, as a kubelet
signals a container's PID 1.
"""

import json
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from chaos.core import GONE, KILLED, Abort, Victim, log_line

RUNNING = "running"
RESTARTING = "restarting"
STOPPED = "stopped"


@dataclass(frozen=True)
class ReplicaRecord:
    """One replica in the state file; pid is None unless running, so nothing signals a dead pid."""
    name: str
    pid: int | None
    address: str
    restarts: int
    state: str


def write_state(path: str | Path, records: list[ReplicaRecord]) -> None:
    """Readers (another process) see the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps([asdict(record) for record in records], indent=1) + "\n")
    os.replace(tmp, path)


def read_state(path: str | Path) -> list[dict]:
    """The replicas recorded in a state file (a JSON list of ReplicaRecord fields)."""
    records = json.loads(Path(path).read_text())
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of replicas")
    return records


def signal_for(grace_period: int | None) -> signal.Signals:
    return signal.SIGKILL if grace_period == 0 else signal.SIGTERM


def describe_grace(grace_period: int | None) -> str:
    if grace_period == 0:
        return "SIGKILL at once"
    if grace_period is None:
        return "SIGTERM, the replica shuts down in its own time"
    return f"SIGTERM, then SIGKILL after {grace_period}s"


def leads_own_group(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def candidates_from(records: list[dict]) -> list[Victim]:
    """Running replicas whose process is alive and a process-group leader."""
    victims = []
    for record in records:
        pid = record.get("pid")
        if (record.get("state") == RUNNING and isinstance(pid, int) and pid > 1 and pid != os.getpid()
                and leads_own_group(pid)):
            victims.append(Victim(record["name"], {"pid": pid, "address": record.get("address")}))
    return victims


class LocalTarget:
    def __init__(self, state_path: str | Path, grace_period: int | None, out: TextIO):
        self.state_path = Path(state_path)
        self.grace_period = grace_period
        self.signal = signal_for(grace_period)
        self.out = out
        self.escalations: list[dict] = []
        self._pending: list[tuple[float, Victim]] = []  # (monotonic deadline, victim) awaiting SIGKILL
        self._terminating: set[int] = set()  # pids signalled that the state file still lists

    def read(self) -> list[dict]:
        try:
            return read_state(self.state_path)
        except FileNotFoundError:
            raise Abort(f"no replica state file at {self.state_path}: is the lab running?") from None
        except ValueError as error:
            raise Abort(f"cannot read {self.state_path}: {error}") from None

    def candidates(self) -> list[Victim]:
        """As candidates_from, minus replicas already signalled and still shutting down (a
        SIGTERM'd gunicorn drains first): the local twin of skipping terminating pods."""
        records = self.read()
        self._terminating &= {record.get("pid") for record in records}
        return [victim for victim in candidates_from(records) if victim.details["pid"] not in self._terminating]

    def kill(self, victim: Victim) -> str:
        try:
            os.kill(victim.details["pid"], self.signal)
        except ProcessLookupError:
            return GONE
        self._terminating.add(victim.details["pid"])
        if self.grace_period:
            self._pending.append((time.monotonic() + self.grace_period, victim))
        return KILLED

    def escalate_due(self, now: float | None = None) -> None:
        """SIGKILL each SIGTERM'd victim whose grace period ran out and that is still the same
        running process (same pid, still recorded in the state file, still a group leader)."""
        now = time.monotonic() if now is None else now
        due = [(deadline, victim) for deadline, victim in self._pending if deadline <= now]
        if not due:
            return
        self._pending = [item for item in self._pending if item[0] > now]
        recorded = {r.get("name"): r.get("pid") for r in self.read()}
        for _, victim in due:
            pid = victim.details["pid"]
            if recorded.get(victim.name) != pid or not leads_own_group(pid):
                continue
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            line = log_line("escalated", target="local", victim=victim.name, signal="SIGKILL", pid=pid)
            self.escalations.append({"time": line.split(" ", 1)[0], "victim": victim.name, "pid": pid})
            print(line, file=self.out, flush=True)

    def finish(self, timeout: float) -> None:
        """Let pending escalations run (bounded by the grace period) before the summary."""
        end = time.monotonic() + timeout
        while self._pending and time.monotonic() < end:
            self.escalate_due()
            time.sleep(0.05)
