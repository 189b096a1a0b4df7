"""The replica state files `python -m chaos local --state` reads: one per namespace, listing the
node's runs there (pid, address, restarts), rewritten whenever a run starts, exits or goes."""

from pathlib import Path

from chaos import local as chaos_local
from lab.kube.node.pods import PodRun


class ReplicaState:
    def __init__(self, state_dir: str | Path | None):
        self.state_dir = Path(state_dir) if state_dir else None
        self._namespaces: set[str] = set()  # written last time: a namespace emptied since gets an empty file

    def path(self, namespace: str) -> Path:
        if self.state_dir is None:
            raise RuntimeError("this node keeps no replica state (no state_dir)")
        return self.state_dir / f"{namespace}.json"

    def write(self, runs: list[PodRun]) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for namespace in {run.namespace for run in runs} | self._namespaces:
            records = [chaos_local.ReplicaRecord(name=run.name, pid=run.pid, address=f"{run.address}:{run.port}",
                                                 restarts=run.restarts,
                                                 state=chaos_local.RUNNING if run.pid else chaos_local.RESTARTING)
                       for run in runs if run.namespace == namespace]
            chaos_local.write_state(self.path(namespace), records)
        self._namespaces = {run.namespace for run in runs}
