"""Istio on a cluster, for the demo runner and the host tier: is the pinned Istio there, and install
it with the very steps of `make istio-install` (the make target: its charts from the pinned module,
then scripts/cluster/istio.sh), printing the command as the demos print theirs."""

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.kube.mesh.istiod import ISTIO_NAMESPACE

INSTALL_COMMAND = ("make", "--no-print-directory", "istio-install")
INSTALL_TIMEOUT = 900.0  # four charts, each waited on (istio.sh: ISTIO_TIMEOUT, 5 minutes per chart)


class IstioInstallFailed(RuntimeError):
    """`make istio-install` exited non-zero; the message has the end of its output."""


def tool_path(env: Mapping[str, str]) -> str:
    """PATH with the pinned kubectl and helm first (istio.sh finds its tools on PATH)."""
    folders = [str(Path(binaries.control_plane("kubectl")).parent), str(Path(binaries.helm()).parent)]
    return os.pathsep.join([*dict.fromkeys(folders), env.get("PATH", os.defpath)])


def installed(kubectl_env: Mapping[str, str], timeout: float = 30.0) -> bool:
    """Whether istiod runs (one replica available) on the cluster `kubectl_env`'s KUBECONFIG names
    (its current context)."""
    result = subprocess.run(
        [binaries.control_plane("kubectl"), "get", "deployment", "istiod", "--namespace", ISTIO_NAMESPACE,
         "--ignore-not-found", "-o", "jsonpath={.status.availableReplicas}"],
        capture_output=True, text=True, env=dict(kubectl_env), timeout=timeout, stdin=subprocess.DEVNULL)
    return result.returncode == 0 and result.stdout.strip().isdigit() and int(result.stdout) >= 1


def install(env: Mapping[str, str], echo: Callable[[str], None] = print,
            timeout: float = INSTALL_TIMEOUT) -> None:
    """`make istio-install` with `env` (its KUBECONFIG, KUBE_CONTEXT or CLUSTER/CLUSTER_NAME pick
    the cluster; ISTIO_CNI_VALUES the node's CNI folders), its output passed line by line to
    `echo`. IstioInstallFailed when it fails."""
    echo("$ " + " ".join(INSTALL_COMMAND))
    run_env = {**env, "PATH": tool_path(env)}
    tail: list[str] = []
    with subprocess.Popen(INSTALL_COMMAND, cwd=REPO_ROOT, env=run_env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                          start_new_session=True) as proc:
        # The output is read to its end; the timer bounds that by ending the whole process group.
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            for line in proc.stdout:
                echo(line.rstrip("\n"))
                tail = (tail + [line.rstrip("\n")])[-30:]
            proc.wait(timeout=30)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            timer.cancel()
    if proc.returncode != 0:
        why = "timed out" if proc.returncode == -signal.SIGKILL else f"exited {proc.returncode}"
        raise IstioInstallFailed(f"{' '.join(INSTALL_COMMAND)} {why}:\n" + "\n".join(tail))


def sidecar_names(pod: dict) -> list[str]:
    """The names of a Pod's sidecars: its containers, and its init containers that keep running
    (Kubernetes' native sidecars, how istiod injects `istio-proxy` on Kubernetes 1.29+)."""
    spec = pod["spec"]
    return [c["name"] for c in spec.get("containers", [])] + [
        c["name"] for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]


def has_istio_proxy(pod: dict) -> bool:
    """Whether istiod's webhook injected the `istio-proxy` sidecar into this Pod (a Pod object as
    `kubectl get -o json` gives it)."""
    return "istio-proxy" in sidecar_names(pod)
