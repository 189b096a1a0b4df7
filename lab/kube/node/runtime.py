"""The lab node's container runtime: a Pod's container is a process group of the node's
ProcessGroup, in a CPU group of its own when the Pod has a CPU limit (lab/host/cgroups.py), with
a private /tmp that a restart empties."""

import os
import shutil

from lab.host import cgroups
from lab.host.paths import REPO_ROOT
from lab.host.procs import ProcessGroup
from lab.kube.node.pods import PodRun, Runner, image_repository
from lab.kube.node.status import now_rfc3339


class ProcessRuntime:
    def __init__(self, group: ProcessGroup, runners: dict[str, Runner], cpu_limits: bool):
        self.group, self.runners, self.cpu_limits = group, runners, cpu_limits

    def start(self, run: PodRun) -> None:
        """Start the run's container with the command line of its image's runner."""
        runner = self.runners[image_repository(run.image)]
        if run.tmp.exists():
            shutil.rmtree(run.tmp, ignore_errors=True)  # a container restart starts with an empty /tmp
        run.tmp.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(run.tmp),
               "TMPDIR": str(run.tmp), **run.env}
        argv = runner(run)
        if self.cpu_limits and run.cpu_limit:
            run.cgroup = cgroups.CpuGroup.create(f"{run.namespace}_{run.name}_{run.restarts}", run.cpu_limit)
            argv = run.cgroup.wrap(argv)
        run.proc = self.group.start(f"{run.namespace}_{run.name}", argv, env=env, cwd=REPO_ROOT)
        run.started_at = now_rfc3339()
        run.started = "startup" not in run.probes
        run.ready = False
        run.restart_at = None
        run.waiting_reason = ""

    def stop(self, run: PodRun, grace: float) -> None:
        """SIGTERM the container's process group, SIGKILL after `grace`; remove its CPU group."""
        if run.proc is not None:
            run.proc.stop(grace)
            # A dead container's process group is gone; keep the ProcessGroup from signalling its
            # id again at teardown, when the kernel may have handed it to someone else.
            if run.proc in self.group.procs:
                self.group.procs.remove(run.proc)
        if run.cgroup is not None:
            run.cgroup.remove()
            run.cgroup = None

    def reap(self, run: PodRun) -> int | None:
        """The container has exited: end what it left behind (gunicorn's workers), as a container
        runtime does, and keep its end in run.last_exit; its exit code."""
        code = run.proc.returncode()
        self.stop(run, grace=0)
        run.last_exit = {"exitCode": 128 - code if code is not None and code < 0 else code,
                         "reason": "Error" if code else "Completed", "startedAt": run.started_at,
                         "finishedAt": now_rfc3339(), **({"signal": -code} if code is not None and code < 0 else {})}
        run.proc, run.ready = None, False
        return code
