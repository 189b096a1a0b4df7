"""The local target: victims from the lab's replica state file, real signals to real processes
(small Python programs started through the `procs` fixture, so all of them are torn down)."""

import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

import chaos.__main__ as cli
from chaos.core import GONE, KILLED, Victim
from chaos.local import LocalTarget, ReplicaRecord, candidates_from, describe_grace, signal_for, write_state
from lab.host.procs import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
# Ignores SIGTERM, like a process stuck in shutdown: only SIGKILL ends it.
STUBBORN = [sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(120)"]


def record(name, proc, state="running", address="127.0.0.1:8000"):
    return {"name": name, "pid": proc.pid if proc is not None else None, "address": address, "restarts": 0,
            "state": state}


def write_json_atomically(path, records):
    write_state(path, [ReplicaRecord(**r) for r in records])


def test_candidates_are_running_replicas_that_lead_their_process_group(procs):
    alive = procs.start("alive", SLEEPER)
    restarting = procs.start("restarting", SLEEPER)
    dead = procs.start("dead", SLEEPER)
    dead.stop(grace=1)
    records = [record("webgatos-0", alive), record("webgatos-1", restarting, state="restarting"),
               record("webgatos-2", dead), record("webgatos-3", None),
               {"name": "self", "pid": os.getpid(), "address": "127.0.0.1:1", "restarts": 0, "state": "running"},
               {"name": "init", "pid": 1, "address": "127.0.0.1:1", "restarts": 0, "state": "running"}]
    assert candidates_from(records) == [Victim("webgatos-0")]
    assert candidates_from(records)[0].details == {"pid": alive.pid, "address": "127.0.0.1:8000"}


def test_a_process_that_does_not_lead_its_group_is_never_a_candidate(procs):
    parent = procs.start("parent", ["sh", "-c", f"{' '.join(SLEEPER[:2])} '{SLEEPER[2]}' & wait"])
    child_pid = None

    def child_started():
        nonlocal child_pid
        children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
        child_pid = int(children[0]) if children else None
        return child_pid is not None

    wait_until(child_started, 10, "the child process")
    assert candidates_from([{"name": "child", "pid": child_pid, "state": "running"}]) == []


def test_signal_follows_the_grace_period():
    assert signal_for(0) == signal.SIGKILL
    assert signal_for(None) == signal.SIGTERM and signal_for(5) == signal.SIGTERM
    assert describe_grace(5) == "SIGTERM, then SIGKILL after 5s"


@pytest.mark.parametrize("grace, returncode", [(0, -signal.SIGKILL), (None, -signal.SIGTERM)])
def test_kill_signals_the_replica(procs, tmp_path, grace, returncode):
    proc = procs.start("replica", SLEEPER)
    state = tmp_path / "replicas.json"
    write_json_atomically(state, [record("webgatos-0", proc)])
    target = LocalTarget(state, grace, io.StringIO())
    assert target.kill(target.candidates()[0]) == KILLED
    proc.popen.wait(timeout=10)
    assert proc.returncode() == returncode
    assert target.kill(Victim("webgatos-0", {"pid": proc.pid})) == GONE


def test_a_replica_still_shutting_down_is_not_picked_again(procs, tmp_path):
    stubborn, other = procs.start("stubborn", STUBBORN), procs.start("other", SLEEPER)
    wait_until(lambda: "ready" in stubborn.log_path.read_text(), 10, "the stubborn process")
    state = tmp_path / "replicas.json"
    write_json_atomically(state, [record("webgatos-0", stubborn), record("webgatos-1", other)])
    target = LocalTarget(state, None, io.StringIO())
    target.kill(Victim("webgatos-0", {"pid": stubborn.pid}))
    assert stubborn.alive()  # ignores SIGTERM: still "running" in the state file
    assert [v.name for v in target.candidates()] == ["webgatos-1"]
    replacement = procs.start("replacement", SLEEPER)  # the lab's node restarted it under a new pid
    write_json_atomically(state, [record("webgatos-0", replacement), record("webgatos-1", other)])
    assert [v.name for v in target.candidates()] == ["webgatos-0", "webgatos-1"]
    stubborn.stop(grace=0.1)


def test_sigterm_escalates_to_sigkill_after_the_grace_period(procs, tmp_path):
    proc = procs.start("stubborn", STUBBORN)
    wait_until(lambda: "ready" in proc.log_path.read_text(), 10, "the stubborn process")
    state = tmp_path / "replicas.json"
    write_json_atomically(state, [record("webgatos-0", proc)])
    out = io.StringIO()
    target = LocalTarget(state, 1, out)

    began = time.monotonic()
    target.kill(target.candidates()[0])
    target.escalate_due()
    assert proc.alive()  # SIGTERM ignored, grace period not over yet
    target.finish(timeout=10)
    proc.popen.wait(timeout=10)

    assert proc.returncode() == -signal.SIGKILL
    assert time.monotonic() - began >= 1
    assert [e["victim"] for e in target.escalations] == ["webgatos-0"]
    assert " escalated target=local victim=webgatos-0 signal=SIGKILL" in out.getvalue()


def test_no_escalation_once_the_node_replaced_the_process(procs, tmp_path):
    proc = procs.start("stubborn", STUBBORN)
    replacement = procs.start("replacement", SLEEPER)
    wait_until(lambda: "ready" in proc.log_path.read_text(), 10, "the stubborn process")
    state = tmp_path / "replicas.json"
    write_json_atomically(state, [record("webgatos-0", proc)])
    target = LocalTarget(state, 1, io.StringIO())
    target.kill(target.candidates()[0])
    write_json_atomically(state, [record("webgatos-0", replacement)])
    target.escalate_due(now=time.monotonic() + 5)
    assert proc.alive() and replacement.alive() and target.escalations == []
    proc.stop(grace=0.1)  # it ignores SIGTERM: skip the fixture's 10 s grace


def run_local(*argv):
    out = io.StringIO()
    return cli.main(["local", *argv], out=out), out.getvalue()


def test_cli_without_a_state_file_fails_with_one_line(tmp_path, capsys):
    code, out = run_local("--state", str(tmp_path / "missing.json"), "--rounds", "1")
    assert code == 1 and out == ""
    err = capsys.readouterr().err.strip()
    assert err == f"chaos local: no replica state file at {tmp_path / 'missing.json'}: is the lab running?"


@pytest.mark.parametrize("argv, message", [
    (["--signal", "SIGKILL", "--grace-period", "3"], "use --signal or --grace-period, not both"),
    (["--interval", "0"], "--interval must be positive"),
    (["--count", "0%"], "percentage must be above 0%"),
])
def test_cli_refusals(tmp_path, capsys, argv, message):
    state = tmp_path / "replicas.json"
    state.write_text("[]")
    code, _ = run_local("--state", str(state), *argv)
    assert code == 2 and message in capsys.readouterr().err


def test_cli_signal_shorthand_and_dry_run(procs, tmp_path):
    proc = procs.start("replica", SLEEPER)
    state = tmp_path / "replicas.json"
    write_json_atomically(state, [record("webgatos-0", proc)])
    summary_path = tmp_path / "summary.json"
    code, out = run_local("--state", str(state), "--signal", "SIGKILL", "--interval", "50ms", "--rounds", "2",
                          "--dry-run", "--summary-json", str(summary_path))
    assert code == 0 and proc.alive()
    summary = json.loads(summary_path.read_text())
    assert summary["would_kill"] == 2 and summary["killed"] == 0 and summary["signal"] == "SIGKILL"
    assert out.splitlines()[0].startswith("chaos local: DRY RUN, would kill 1 of the running replicas")
