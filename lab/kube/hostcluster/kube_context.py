"""The user's kubeconfig: one context per host cluster, as kind adds kind-NAME."""

import contextlib
import subprocess
from pathlib import Path

from lab.host import binaries
from lab.kube.hostcluster.layout import Layout


def _kubectl_config(*args: str) -> None:
    subprocess.run([binaries.control_plane("kubectl"), "config", *args], check=True, capture_output=True,
                   timeout=30, stdin=subprocess.DEVNULL)


def add_context(info: dict, layout: Layout) -> None:
    pki = Path(info["kubeconfig"]).parent / "pki"
    context = layout.context
    _kubectl_config("set-cluster", context, f"--server={info['server']}", f"--certificate-authority={pki / 'ca.crt'}",
                    "--embed-certs=true")
    _kubectl_config("set-credentials", context, f"--client-certificate={pki / 'admin.crt'}",
                    f"--client-key={pki / 'admin.key'}", "--embed-certs=true")
    _kubectl_config("set-context", context, f"--cluster={context}", f"--user={context}")
    _kubectl_config("use-context", context)


def remove_context(layout: Layout) -> None:
    for what in ("delete-context", "delete-cluster", "delete-user"):
        with contextlib.suppress(subprocess.CalledProcessError, binaries.MissingBinary):
            _kubectl_config(what, layout.context)
