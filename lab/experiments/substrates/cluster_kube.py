"""kubectl and helm on one context of a kubeconfig, for the cluster substrate: each command
printed first as a person would type it (`kubectl --context C ...`), then run on a private copy
of the kubeconfig that holds only that context, so nothing reaches another cluster by accident."""

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import yaml

from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.workloads.helm import run_helm

HELM_TIMEOUT = 300


class KubeError(RuntimeError):
    """A kubectl or helm command of a case failed; the message has its output."""


def shown(path: Path) -> str:
    """A path as the printed command shows it: relative to the repo when inside it."""
    path = Path(path)
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def kubectl_binary() -> str:
    return binaries.find("kubectl", shutil.which("kubectl"), binaries.control_plane_dir("kube") / "kubectl",
                         missing="install kubectl, or run `make control-plane`")


class Kube:
    """kubectl and helm on one context of a kubeconfig, each command echoed first as a person
    would type it (`kubectl --context C ...`), run on a private copy holding only that context."""

    def __init__(self, context: str, pinned: Path, echo: Callable[[str], None] = print):
        self.context, self.pinned, self.echo = context, pinned, echo

    @classmethod
    def pin(cls, context: str, kubeconfig: Path | None, folder: Path) -> "Kube":
        folder.mkdir(parents=True, exist_ok=True)
        pinned = folder / "kubeconfig"
        argv = [kubectl_binary(), "config", "view", "--minify", "--flatten", "--context", context]
        result = subprocess.run(argv, capture_output=True, text=True, env=kubectl_env(kubeconfig), timeout=30,
                                stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise KubeError(f"kubectl config view --context {context}: {result.stderr.strip()}")
        pinned.write_text(result.stdout)
        pinned.chmod(0o600)
        return cls(context, pinned)

    def env(self) -> dict[str, str]:
        return kubectl_env(self.pinned)

    def config(self) -> dict:
        return yaml.safe_load(self.pinned.read_text())

    def kubectl(self, *args: str, quiet: bool = False, check: bool = True, timeout: float = 120,
                input_text: str | None = None) -> subprocess.CompletedProcess:
        if not quiet:
            self.echo(f"kubectl --context {self.context} {shlex.join(args)}")
        result = subprocess.run([kubectl_binary(), *args], capture_output=True, text=True, env=self.env(),
                                timeout=timeout, input=input_text, cwd=REPO_ROOT,
                                stdin=None if input_text is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise KubeError(f"kubectl {shlex.join(args)} exited {result.returncode}: {result.stderr}{result.stdout}")
        return result

    def get(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json", quiet=True).stdout)

    def helm(self, *args: str, timeout: float = HELM_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess:
        self.echo(f"helm --kube-context {self.context} {shlex.join(args)}")
        result = run_helm(*args, env=self.env(), timeout=timeout + 30, check=False, cwd=REPO_ROOT)
        if check and result.returncode != 0:
            raise KubeError(f"helm {shlex.join(args)} exited {result.returncode}: {result.stderr}{result.stdout}")
        return result

    def explain(self, namespace: str) -> str:
        """The namespace's Pods and its latest events: why a step did not finish."""
        pods = self.kubectl("get", "pods", "--namespace", namespace, "-o", "wide", quiet=True, check=False)
        events = self.kubectl("get", "events", "--namespace", namespace, "--sort-by", ".lastTimestamp",
                              quiet=True, check=False)
        return f"{pods.stdout}{pods.stderr}\n" + "\n".join(events.stdout.splitlines()[-15:])


def kubectl_env(kubeconfig: Path | None) -> dict[str, str]:
    """This process's environment, with KUBECONFIG = `kubeconfig` when given."""
    env = dict(os.environ)
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env
