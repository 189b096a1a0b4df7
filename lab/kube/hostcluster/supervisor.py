"""What the host cluster's supervisor (`python -m lab host-cluster serve`, which owns every
process of the cluster) leaves for the other commands: its pid and its ready file."""

import json
from pathlib import Path

from lab.kube.hostcluster.layout import Layout


def daemon_pid(layout: Layout) -> int | None:
    """The supervisor's pid when it is alive."""
    try:
        pid = int(layout.daemon_pid.read_text())
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"host-cluster" in cmdline and b"serve" in cmdline else None


def ready_info(layout: Layout) -> dict | None:
    try:
        return json.loads(layout.ready_file.read_text())
    except (OSError, ValueError):
        return None
