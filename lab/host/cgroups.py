"""CPU limits and CPU accounting for the lab node's containers, from the kernel's cgroups.

A container with `resources.limits.cpu` gets a group of its own with a CFS quota, as a kubelet
gives it: cgroup v2 `cpu.max` where the cpu controller is on the unified hierarchy, cgroup v1
`cpu.cfs_quota_us` (plus cpuacct for usage) where it is not. Where neither is writable (no root,
a read-only /sys/fs/cgroup), `available()` is False and the node runs containers without a limit;
CPU usage then comes from /proc (proctree.py), which the metrics still report.
"""

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
GROUP_PREFIX = "resilience-lab"


def _v2_root() -> Path | None:
    for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        controllers = root / "cgroup.controllers"
        if controllers.is_file() and "cpu" in controllers.read_text().split():
            return root
    return None


def _v1_roots() -> tuple[Path, Path] | None:
    cpu, cpuacct = CGROUP_ROOT / "cpu", CGROUP_ROOT / "cpuacct"
    if (cpu / "cpu.cfs_quota_us").is_file() and (cpuacct / "cpuacct.usage").is_file():
        return cpu, cpuacct
    return None


def available() -> bool:
    """True when this process may create CPU-limited groups."""
    try:
        group = CpuGroup.create(f"probe-{os.getpid()}", 1.0)
    except OSError:
        return False
    group.remove()
    return True


@dataclass
class CpuGroup:
    """One container's CPU group: a quota of `cpus` and the CPU time its processes used."""
    paths: tuple[Path, ...]
    version: int

    @classmethod
    def create(cls, name: str, cpus: float) -> "CpuGroup":
        quota = max(1000, int(cpus * PERIOD_US))
        leaf = f"{GROUP_PREFIX}-{name}"
        if (root := _v2_root()) is not None:
            parent = root / GROUP_PREFIX
            parent.mkdir(exist_ok=True)
            subtree = parent / "cgroup.subtree_control"
            if "cpu" not in subtree.read_text().split():
                subtree.write_text("+cpu")
            path = parent / leaf
            path.mkdir(exist_ok=True)
            (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            return cls((path,), 2)
        if (roots := _v1_roots()) is not None:
            cpu, cpuacct = (root / leaf for root in roots)
            cpu.mkdir(exist_ok=True)
            cpuacct.mkdir(exist_ok=True)
            (cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (cpu / "cpu.cfs_quota_us").write_text(str(quota))
            return cls((cpu, cpuacct), 1)
        raise OSError("no writable cgroup cpu controller")

    @property
    def procs_files(self) -> list[Path]:
        return [path / "cgroup.procs" for path in self.paths]

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` started inside this group from its first instruction (no fork escapes it)."""
        joins = " && ".join(f'echo $$ > "{path}"' for path in self.procs_files)
        return ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh", *argv]

    def cpu_seconds(self) -> float:
        if self.version == 2:
            for line in (self.paths[0] / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
            return 0.0
        return int((self.paths[1] / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        for path in self.paths:
            try:
                leftover = (path / "cgroup.procs").read_text().split()
            except OSError:
                leftover = []
            for pid in leftover:  # move stragglers out so the group can go
                with contextlib.suppress(OSError):
                    (path.parent / "cgroup.procs").write_text(pid)
            try:
                path.rmdir()
            except OSError:
                shutil.rmtree(path, ignore_errors=True)
