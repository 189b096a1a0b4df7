"""`make cluster-up CLUSTER=host` and `cluster-down` as a user runs them (the CLI behind them):
a second `up` reuses the running cluster; a run whose supervisor was killed is cleaned up by the
next `up`, which works; `down` leaves the host as it was; bad input says why in one line and
changes nothing. These run before the tier's own cluster starts (conftest orders them first)."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from lab.host.paths import REPO_ROOT
from lab.kube.hostcluster.layout import API_PORT, NODE_BRIDGE, Layout
from lab.kube.hostcluster.supervisor import daemon_pid
from tests.cluster.host.conftest import host_state, require_host_cluster

NAME = "pytest-cli"


def lab(*args: str, env: dict | None = None, timeout: float = 400, user: str | None = None):
    argv = [sys.executable, "-m", "lab", "host-cluster", *args, "--name", NAME]
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def cli_env(tmp_path):
    require_host_cluster()
    # The CLI adds its context to the user's kubeconfig: here a throwaway one.
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig")}
    yield env
    lab("down", env=env)


def kubectl(env: dict, *args: str) -> subprocess.CompletedProcess:
    from lab.host import binaries
    return subprocess.run([binaries.control_plane("kubectl"), "--context", f"host-{NAME}", *args],
                          capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)


def test_up_reuse_killed_run_and_down_leave_the_host_as_it_was(cli_env):
    before = host_state()
    first = lab("up", env=cli_env)
    assert first.returncode == 0, first.stderr + first.stdout
    assert f"context host-{NAME}" in first.stdout
    nodes = kubectl(cli_env, "get", "nodes", "-o", "name")
    assert nodes.stdout.strip() == f"node/{NAME}-node", nodes.stderr

    again = lab("up", env=cli_env, timeout=60)
    assert again.returncode == 0 and "reusing" in again.stdout, again.stderr

    # A killed run: the supervisor dies without tearing anything down.
    pid = daemon_pid(Layout(NAME))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while daemon_pid(Layout(NAME)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert os.path.exists(f"/sys/class/net/{NODE_BRIDGE}")  # the killed run's leftovers are there

    after_kill = lab("up", env=cli_env)
    assert after_kill.returncode == 0, after_kill.stderr + after_kill.stdout
    assert "cleaned up after an earlier run" in after_kill.stdout
    assert kubectl(cli_env, "get", "nodes", "-o", "name").returncode == 0

    down = lab("down", env=cli_env, timeout=200)
    assert down.returncode == 0 and "stopped" in down.stdout, down.stderr
    assert host_state() == before
    assert kubectl(cli_env, "get", "nodes").returncode != 0  # the context is gone with the cluster

    twice = lab("down", env=cli_env, timeout=60)
    assert twice.returncode == 0 and "was not running" in twice.stdout


def test_a_taken_port_is_named_and_nothing_is_made(cli_env):
    before = host_state()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", API_PORT))
        holder.listen()
        result = lab("up", env=cli_env, timeout=120)
    assert result.returncode == 1
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1 and f"port {API_PORT}" in error_lines[0], result.stderr
    assert host_state() == before


def test_without_root_it_says_so_in_one_line(cli_env):
    result = lab("up", env=cli_env, user="65534", timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "needs root" in result.stderr
