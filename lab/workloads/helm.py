"""The one Helm runner: the lab's installs and the tests' all run helm through `run_helm`, with its
cache, config and data in a home of their own (never the user's), against the cluster the given
environment's KUBECONFIG names."""

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from lab.host import binaries
from lab.host.paths import CACHE

# Where helm keeps its repositories and plugins when the caller names no home: the repo's cache.
SHARED_HOME = CACHE / "helm"


class HelmFailed(RuntimeError):
    """helm exited non-zero; the message has its output."""

    def __init__(self, args, result: subprocess.CompletedProcess):
        self.args_, self.result = list(args), result
        super().__init__(f"helm {' '.join(map(str, args))} exited {result.returncode}:\n"
                         f"{result.stderr}{result.stdout}")


def run_helm(*args: str, env: Mapping[str, str] | None = None, home: Path = SHARED_HOME, timeout: float = 180.0,
             check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`helm ARGS` in `cwd` with `env` (default: this process's; a control plane's env() for its
    KUBECONFIG); HelmFailed when it exits non-zero and `check`."""
    full_env = {**(os.environ if env is None else env), "HELM_CACHE_HOME": str(home / "cache"),
                "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data")}
    result = subprocess.run([binaries.helm(), *args], capture_output=True, text=True, env=full_env, timeout=timeout,
                            stdin=subprocess.DEVNULL, cwd=cwd)
    if check and result.returncode != 0:
        raise HelmFailed(args, result)
    return result


def deep_merge(base: dict, overlay: dict) -> dict:
    """Helm's rule for `-f` files: maps merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged
