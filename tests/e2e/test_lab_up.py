"""`make lab-up`: a topology in the foreground that serves sessions through Envoy, survives a replica
kill (the lab's node restarts its container), and leaves no process behind after Ctrl-C (SIGINT to the
foreground process group, as a terminal sends it). Bad input stops it before anything starts."""

import contextlib
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from lab.host.paths import REPO_ROOT
from lab.host.procs import free_port, port_in_use, wait_until


def children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> set[int]:
    tree, found, todo = children_map(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class LabUp:
    """`make lab-up` in its own session, its output collected line by line."""

    def __init__(self, tmp_path: Path, *make_vars: str):
        self.log = tmp_path / "lab-up.out"
        with open(self.log, "w") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(["make", "-s", "lab-up", *make_vars], cwd=REPO_ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text()

    def interrupt(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def close(self) -> None:
        """After a failure: kill whatever is left, the lab's children (own sessions) included."""
        if self.proc.poll() is None:
            left = descendants(self.proc.pid)
            os.killpg(self.proc.pid, signal.SIGKILL)  # make and the lab first: nothing restarts after
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def lab_up(tmp_path):
    started = []

    def start(*make_vars):
        started.append(LabUp(tmp_path, *make_vars))
        return started[-1]
    yield start
    for lab in started:
        lab.close()


def test_lab_up_serves_restarts_and_leaves_nothing_after_ctrl_c(lab_up):
    port = free_port()
    lab = lab_up("STORE=redis", "REPLICAS=2", "SCENARIO=retries", f"LAB_PORT={port}")
    wait_until(lambda: "Ctrl-C stops everything" in lab.text() or lab.proc.poll() is not None, 180,
               "lab-up to print its URLs")
    text = lab.text()
    assert lab.proc.poll() is None, text
    assert f"http://127.0.0.1:{port}/" in text and ":15000/" in text  # the gateway and its Envoy's admin
    zipkin = next(line.split(": ", 1)[1].strip() for line in text.splitlines() if line.strip().startswith("Zipkin"))
    assert requests.get(zipkin.replace("/zipkin/", "/health"), timeout=5).status_code == 200
    replicas = [line.split(":", 1)[0].strip() for line in text.splitlines() if line.strip().startswith("webgatos-")]
    assert len(replicas) == 2, text

    # Sessions live in Redis: one user keeps one color across both replicas behind the gateway.
    answers = []
    with requests.Session() as user:
        def both_replicas_answered() -> bool:
            answers.append(user.get(f"http://127.0.0.1:{port}/api/session", timeout=5).json())
            return {a["hostname"] for a in answers} == set(replicas)
        wait_until(both_replicas_answered, 30, "both replicas to answer one user", interval=0.1)
    assert len({a["color"] for a in answers}) == 1, answers

    # Kill a replica the hard way; the lab's node restarts its container (so a restarted process
    # exists too).
    state_path = Path(next(line.split(": ", 1)[1] for line in text.splitlines() if "replica state" in line).strip())
    victim = json.loads(state_path.read_text())[0]
    os.kill(victim["pid"], signal.SIGKILL)

    def restarted() -> bool:
        replica = next(r for r in json.loads(state_path.read_text()) if r["name"] == victim["name"])
        return replica["restarts"] == 1 and replica["state"] == "running"
    wait_until(restarted, 60, "the lab's node to restart the container", interval=0.2)
    wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200, 60,
               "the mesh to serve again")

    everything = descendants(lab.proc.pid)
    # python, etcd, kube-apiserver, controller-manager, scheduler, istiod, the gateway's Envoy,
    # redis, two gunicorn masters (+ workers)
    assert len(everything) >= 10, everything
    lab.interrupt()
    # make itself dies of the SIGINT (as at a terminal) once its recipe, the lab, has stopped.
    assert lab.proc.wait(timeout=90) in (0, -signal.SIGINT), lab.text()
    assert "lab is down: every process stopped." in lab.text()
    wait_until(lambda: not any(alive(pid) for pid in everything), 10, "every lab process to be gone")
    assert not port_in_use(port)


@pytest.mark.parametrize("make_var, message", [
    ("STORE=mongodb", "unknown store 'mongodb'"),
    ("SCENARIO=nosuch", "unknown scenario 'nosuch'"),
    ("REPLICAS=0", "bad replica count 0"),
])
def test_lab_up_refuses_bad_input_before_starting_anything(lab_up, make_var, message):
    lab = lab_up(make_var, "LAB_PORT=0")
    assert lab.proc.wait(timeout=120) != 0
    assert message in lab.text()
    assert "lab is up" not in lab.text()
    assert not descendants(lab.proc.pid)


def test_lab_up_names_a_port_in_use(lab_up):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        lab = lab_up(f"LAB_PORT={port}")
        assert lab.proc.wait(timeout=120) != 0
    assert f"port {port} (gateway) on 127.0.0.1 is already in use" in lab.text()
