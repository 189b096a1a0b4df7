"""CPU time and memory of a process and its descendants, from /proc: a container's usage where no
cgroup accounts for it (cgroups.py), and a benchmarked server's."""

import psutil


def process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants; 0 when `pid` is gone."""
    try:
        root = psutil.Process(pid)
        total = sum(root.cpu_times()[:2])
        for child in root.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                continue
        return total
    except psutil.Error:
        return 0.0


def process_tree_rss_bytes(pid: int) -> int:
    """Resident memory of `pid` and its descendants (a container's working set, near enough)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total
