"""`python -m chaos local` against real lab replicas: the chart's webgatos Pods, run by the lab's
node as gunicorn processes, killed by the chaos tool running as its own process. Kills come at the
interval, the node restarts every victim's container (restartCount in the Pod's status), and the
chaos summary lines up with the node's record."""

import json
import signal
import sys

import pytest

from chaos.local import read_state
from lab.host.procs import wait_until
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import TEST_RESTART_DELAY

INTERVAL = 2.0


@pytest.fixture
def replicas(topology):
    """Two webgatos replicas (memory store) on the lab's node, behind the gateway."""
    return topology("no-retries", drain_seconds=1)


def start_chaos(procs, topology, summary_path, *argv):
    return procs.start("chaos", [sys.executable, "-m", "chaos", "local", "--state", str(topology.state_path),
                                 "--summary-json", str(summary_path), *argv], cwd=REPO_ROOT)


def node_events(topology, kind: str) -> list[dict]:
    return [e for e in topology.node.events() if e["event"] == kind and e.get("namespace") == topology.namespace]


def assert_every_kill_was_restarted(topology, summary, returncodes):
    killed = [k for k in summary["kills"] if k["result"] == "killed"]
    wait_until(lambda: len(node_events(topology, "exited")) >= len(killed), 30, "the node to see every kill")
    wait_until(lambda: sum(r["restarts"] for r in read_state(topology.state_path)) == len(killed), 60,
               "a restart for every kill")
    wait_until(lambda: all(run.ready for run in topology.replicas()), 60, "every replica ready again")
    exits, restarts = node_events(topology, "exited"), node_events(topology, "restarted")
    for kill in killed:
        exited = next(e for e in exits if e["pod"] == kill["victim"] and e["epoch"] >= kill["epoch"] - 0.01)
        assert exited["returncode"] in returncodes, exited
        restart = next(r for r in restarts if r["pod"] == kill["victim"] and r["epoch"] >= exited["epoch"])
        assert restart["epoch"] - exited["epoch"] >= TEST_RESTART_DELAY - 0.01
    pods = {p["metadata"]["name"]: p for p in topology.cluster.plane.get(
        "pods", "--namespace", topology.namespace)["items"]}
    for name, count in ((n, sum(1 for k in killed if k["victim"] == n)) for n in {k["victim"] for k in killed}):
        assert pods[name]["status"]["containerStatuses"][0]["restartCount"] == count  # the API sees it too
    return killed


def test_sigkill_rounds_at_the_interval_are_all_restarted(procs, replicas, tmp_path):
    summary_path = tmp_path / "chaos-summary.json"
    chaos = start_chaos(procs, replicas, summary_path, "--interval", f"{INTERVAL:g}s", "--rounds", "3",
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

    assert_every_kill_was_restarted(replicas, summary, returncodes={-signal.SIGKILL})
    log = chaos.log_path.read_text().splitlines()
    assert sum(" killed target=local " in line and "signal=SIGKILL" in line for line in log) == 3
    assert "killed=3" in log[-1]


def test_sigterm_then_stopping_the_tool_midway_leaves_a_matching_summary(procs, replicas, tmp_path):
    summary_path = tmp_path / "chaos-summary.json"
    chaos = start_chaos(procs, replicas, summary_path, "--interval", "1s", "--signal", "SIGTERM")
    wait_until(lambda: sum(r["restarts"] for r in read_state(replicas.state_path)) >= 2, 60, "two restarts")
    chaos.signal(signal.SIGTERM)
    assert chaos.popen.wait(timeout=30) == 0, chaos.log_tail()

    summary = json.loads(summary_path.read_text())
    assert summary["stopped_by"] == "signal" and summary["killed"] >= 2
    # gunicorn drains and exits cleanly on SIGTERM, as a pod does within its grace period; a
    # replica hit while still starting (before gunicorn handles signals) dies of the SIGTERM.
    killed = assert_every_kill_was_restarted(replicas, summary, returncodes={0, -signal.SIGTERM})
    assert len(killed) == summary["killed"]
