"""lab.supervisor against real replicas: `python -m http.server` processes on loopback (a tiny real
server), killed with real signals. Every wait is bounded; the `procs` fixture and the supervisor's
own stop() tear everything down, pass or fail."""

import os
import signal
import sys
import time

import pytest

from lab.procs import LOOPBACK, http_status, wait_until
from lab.supervisor import RESTARTING, RUNNING, STOPPED, Supervisor, read_state

RESTART_DELAY = 0.5


def http_server_starter(group, directory, wrap_in_shell=False):
    def start(name, port):
        argv = [sys.executable, "-m", "http.server", str(port), "--bind", LOOPBACK, "--directory", str(directory)]
        if wrap_in_shell:
            # The server becomes a child of the replica's main process, as gunicorn workers are.
            argv = ["sh", "-c", f'{" ".join(argv)} & wait']
        return group.start(name, argv)
    return start


@pytest.fixture
def make_supervisor(procs, tmp_path):
    supervisors = []

    def make(replicas=2, wrap_in_shell=False, **kwargs):
        kwargs.setdefault("restart_delay", RESTART_DELAY)
        sup = Supervisor(procs, http_server_starter(procs, tmp_path, wrap_in_shell), replicas,
                         tmp_path / "run" / "replicas.json", ready_path="/", **kwargs)
        supervisors.append(sup)
        return sup.start()

    yield make
    for sup in supervisors:
        sup.stop(grace=2)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_restart(sup, name, restarts, timeout=30):
    def restarted():
        record = next(r for r in read_state(sup.state_path) if r["name"] == name)
        return record["restarts"] == restarts and record["state"] == RUNNING
    wait_until(restarted, timeout, f"{name} to restart")
    replica = next(r for r in sup.replicas if r.name == name)
    wait_until(lambda: sup.replica_ready(replica), timeout, f"{name} to answer again")


def test_starts_named_replicas_on_their_own_ports_and_records_them(make_supervisor):
    sup = make_supervisor(replicas=3)
    sup.wait_ready(timeout=30)

    state = read_state(sup.state_path)
    assert [r["name"] for r in state] == ["webgatos-0", "webgatos-1", "webgatos-2"]
    assert len({r["port"] for r in state}) == 3
    assert sup.upstreams == [(LOOPBACK, r["port"]) for r in state]
    for record in state:
        assert record["state"] == RUNNING and record["restarts"] == 0
        assert pid_alive(record["pid"])
        assert http_status(f"http://{LOOPBACK}:{record['port']}/") == 200
    assert [e["event"] for e in sup.events()] == ["started"] * 3


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_restarts_a_killed_replica_on_the_same_port_after_the_delay(make_supervisor, signum):
    sup = make_supervisor(replicas=2)
    sup.wait_ready(timeout=30)
    victim = read_state(sup.state_path)[1]

    os.kill(victim["pid"], signum)
    wait_for_restart(sup, victim["name"], restarts=1)

    after = {r["name"]: r for r in read_state(sup.state_path)}
    assert after[victim["name"]]["port"] == victim["port"]
    assert after[victim["name"]]["pid"] != victim["pid"]
    assert after["webgatos-0"]["restarts"] == 0  # the other replica was left alone
    events = [e for e in sup.events() if e["name"] == victim["name"]]
    assert [e["event"] for e in events] == ["started", "exited", "restarted"]
    exited, restarted = events[1], events[2]
    assert exited["returncode"] == -signum and exited["pid"] == victim["pid"]
    assert restarted["epoch"] - exited["epoch"] >= RESTART_DELAY - 0.01


def test_restart_reclaims_the_port_from_a_dead_replicas_leftover_children(make_supervisor):
    """SIGKILL to a main process orphans its children (gunicorn workers) with the listening
    socket; the supervisor ends the whole process group so the restart can bind the port again."""
    sup = make_supervisor(replicas=1, wrap_in_shell=True)
    sup.wait_ready(timeout=30)
    victim = read_state(sup.state_path)[0]

    os.kill(victim["pid"], signal.SIGKILL)
    wait_for_restart(sup, victim["name"], restarts=1)

    assert read_state(sup.state_path)[0]["port"] == victim["port"]
    assert sup.replicas[0].proc.alive()


def test_a_replica_restarts_every_time_it_dies(make_supervisor):
    sup = make_supervisor(replicas=1, restart_delay=0.1)
    sup.wait_ready(timeout=30)
    for round_number in (1, 2, 3):
        os.kill(read_state(sup.state_path)[0]["pid"], signal.SIGKILL)
        wait_for_restart(sup, "webgatos-0", restarts=round_number)
    assert [e["event"] for e in sup.events()].count("exited") == 3


def test_a_failed_start_is_retried_and_reported(procs, tmp_path):
    real_start = http_server_starter(procs, tmp_path)
    calls = []

    def flaky_start(name, port):
        calls.append(name)
        if len(calls) == 1:
            raise OSError("no such program")
        return real_start(name, port)

    with Supervisor(procs, flaky_start, 1, tmp_path / "replicas.json", restart_delay=0.1, ready_path="/") as sup:
        sup.wait_ready(timeout=30)
        assert [e["event"] for e in sup.events()] == ["start-failed", "restarted"]
        assert sup.events()[0]["error"] == "no such program"


def test_stop_ends_every_replica_and_marks_the_state_file(make_supervisor, procs):
    sup = make_supervisor(replicas=2, wrap_in_shell=True)
    sup.wait_ready(timeout=30)
    pids = [r["pid"] for r in read_state(sup.state_path)]

    sup.stop(grace=2)

    assert not any(pid_alive(pid) for pid in pids)
    assert {(r["state"], r["pid"]) for r in read_state(sup.state_path)} == {(STOPPED, None)}
    assert procs.procs == []
    for port in sup.ports:
        assert http_status(f"http://{LOOPBACK}:{port}/", timeout=0.5) is None


def test_wait_ready_names_the_replicas_that_never_became_ready(procs, tmp_path):
    def start_silent(name, port):
        return procs.start(name, [sys.executable, "-c", "import time; time.sleep(60)"])

    with Supervisor(procs, start_silent, 2, tmp_path / "replicas.json", ready_path=None) as sup:
        began = time.monotonic()
        with pytest.raises(TimeoutError, match="webgatos-0.*webgatos-1"):
            sup.wait_ready(timeout=0.3)
        assert time.monotonic() - began < 10


def test_a_dead_replica_is_reported_as_restarting_until_it_is_back(procs, tmp_path):
    with Supervisor(procs, http_server_starter(procs, tmp_path), 1, tmp_path / "replicas.json",
                    restart_delay=30, ready_path="/") as sup:
        sup.wait_ready(timeout=30)
        os.kill(sup.replicas[0].pid, signal.SIGKILL)
        wait_until(lambda: read_state(sup.state_path)[0]["state"] == RESTARTING, 10, "the restarting state")
        assert read_state(sup.state_path)[0]["pid"] is None  # nothing may signal the dead pid
        with pytest.raises(TimeoutError, match=r"webgatos-0 \(restarting"):
            sup.wait_ready(timeout=0.2)


@pytest.mark.parametrize("kwargs, message", [
    ({"replicas": 0}, "replicas must be at least 1"),
    ({"replicas": 1, "restart_delay": -1}, "restart_delay must not be negative"),
    ({"replicas": 2, "ports": [1234]}, "got 1 ports for 2 replicas"),
])
def test_refuses_bad_arguments(procs, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Supervisor(procs, http_server_starter(procs, tmp_path), state_path=tmp_path / "s.json", **kwargs)
