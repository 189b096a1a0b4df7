"""`python -m chaos local` against real lab replicas: webgatos under gunicorn, kept alive by
lab.supervisor, killed by the chaos tool running as its own process. Kills come at the interval,
the supervisor restarts every victim, and the chaos summary lines up with the supervisor's record.
Everything runs through the `procs` fixture and is torn down, pass or fail."""

import json
import signal
import sys

import pytest

from lab.procs import wait_until
from lab.supervisor import Supervisor, read_state
from tests.conftest import REPO_ROOT, WEBGATOS_GUNICORN_CONF

RESTART_DELAY = 0.5
INTERVAL = 2.0


@pytest.fixture
def webgatos_replicas(procs, tmp_path):
    """Two webgatos replicas (memory store) under the supervisor; yields it."""
    env = {"SESSION_STORE": "memory", "SECRET_KEY": "test-secret-key", "SHUTDOWN_DRAIN_SECONDS": "0.2"}

    def start(name, port):
        return procs.gunicorn("webgatos:create_app()", port, {**env, "REPLICA_NAME": name}, name=name,
                              config=WEBGATOS_GUNICORN_CONF, wait=False)

    sup = Supervisor(procs, start, replicas=2, state_path=tmp_path / "replicas.json", restart_delay=RESTART_DELAY)
    with sup:
        sup.wait_ready(timeout=60)
        yield sup


def start_chaos(procs, sup, summary_path, *argv):
    return procs.start("chaos", [sys.executable, "-m", "chaos", "local", "--state", str(sup.state_path),
                                 "--summary-json", str(summary_path), *argv], cwd=REPO_ROOT)


def exits_by_pid(sup):
    return {e["pid"]: e for e in sup.events() if e["event"] == "exited"}


def assert_every_kill_was_restarted(sup, summary, returncodes):
    killed = [k for k in summary["kills"] if k["result"] == "killed"]
    wait_until(lambda: all(k["pid"] in exits_by_pid(sup) for k in killed), 30, "the supervisor to see every kill")
    wait_until(lambda: sum(r["restarts"] for r in read_state(sup.state_path)) == len(killed), 60,
               "a restart for every kill")
    sup.wait_ready(timeout=60)
    exits = exits_by_pid(sup)
    restarts = [e for e in sup.events() if e["event"] == "restarted"]
    for kill in killed:
        exited = exits[kill["pid"]]
        assert exited["name"] == kill["victim"] and exited["returncode"] in returncodes
        assert exited["epoch"] >= kill["epoch"] - 0.01
        restart = next(r for r in restarts if r["name"] == kill["victim"] and r["epoch"] >= exited["epoch"])
        assert restart["epoch"] - exited["epoch"] >= RESTART_DELAY - 0.01
        assert restart["port"] == exited["port"]
    return killed


def test_sigkill_rounds_at_the_interval_are_all_restarted(procs, webgatos_replicas, tmp_path):
    sup, summary_path = webgatos_replicas, tmp_path / "chaos-summary.json"
    chaos = start_chaos(procs, sup, summary_path, "--interval", f"{INTERVAL:g}s", "--rounds", "3",
                        "--grace-period", "0", "--seed", "5")
    assert chaos.popen.wait(timeout=60) == 0, chaos.log_tail()

    summary = json.loads(summary_path.read_text())
    assert summary["rounds"] == 3 and summary["killed"] == 3 and summary["stopped_by"] == "rounds"
    assert summary["signal"] == "SIGKILL"
    # Round k is due k intervals after the start and never fires early (a late round does not
    # delay the next one, so only the lower bounds are fixed).
    for round_number, kill in enumerate(summary["kills"], start=1):
        assert kill["round"] == round_number
        assert kill["epoch"] - summary["started_epoch"] >= round_number * INTERVAL - 0.05

    assert_every_kill_was_restarted(sup, summary, returncodes={-signal.SIGKILL})
    log = chaos.log_path.read_text().splitlines()
    assert sum(" killed target=local " in line and "signal=SIGKILL" in line for line in log) == 3
    assert "killed=3" in log[-1]


def test_sigterm_then_stopping_the_tool_midway_leaves_a_matching_summary(procs, webgatos_replicas, tmp_path):
    sup, summary_path = webgatos_replicas, tmp_path / "chaos-summary.json"
    chaos = start_chaos(procs, sup, summary_path, "--interval", "1s", "--signal", "SIGTERM")
    wait_until(lambda: sum(r["restarts"] for r in read_state(sup.state_path)) >= 2, 60, "two restarts")
    chaos.signal(signal.SIGTERM)
    assert chaos.popen.wait(timeout=30) == 0, chaos.log_tail()

    summary = json.loads(summary_path.read_text())
    assert summary["stopped_by"] == "signal" and summary["killed"] >= 2
    # gunicorn drains and exits cleanly on SIGTERM, as a pod does within its grace period; a
    # replica hit while still starting (before gunicorn handles signals) dies of the SIGTERM.
    killed = assert_every_kill_was_restarted(sup, summary, returncodes={0, -signal.SIGTERM})
    assert len(killed) == summary["killed"] == len(exits_by_pid(sup))
