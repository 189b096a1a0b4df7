"""The load tests check behaviour: Locust runs as a real subprocess (`.venv/bin/locust -f
loadtests/...`) against two real gunicorn replicas of webgatos behind the lab's Envoy, which
balances requests round-robin (the no-retries mesh scenario, so nothing masks an error).

Each run lasts a few seconds; every wait is bounded and every process is stopped by the `procs`
fixture, pass or fail.
"""

import json
import os
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from lab.host import balancer
from lab.host.paths import REPO_ROOT, VENV_BIN
from lab.host.procs import LOOPBACK, free_port, http_status, wait_until

LOADTESTS = REPO_ROOT / "loadtests"
# A breached gate ends with what the machine did meanwhile (loadlogic.describe_load).
MACHINE = r" \(the machine during the run: load average [\d.]+ on \d+ core\(s\), CPU [\d.]+ % busy, [\d.]+ % stolen\)"
LOCUSTFILE = LOADTESTS / "locustfile.py"
ARRIVAL = LOADTESTS / "arrival.py"
LOCUST_CONF = LOADTESTS / "locust.conf"
SQRT_GUNICORN_CONF = REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py"
# A run's own length plus Locust's start-up and shutdown on a busy machine.
RUN_TIMEOUT = 120
GATE_LINE = re.compile(r"quality gate.*$", re.MULTILINE)


@dataclass
class LocustRun:
    exit_code: int
    output: str
    summary_path: Path

    @property
    def gate_line(self) -> str:
        lines = GATE_LINE.findall(self.output)
        assert len(lines) == 1, f"expected one gate line:\n{self.output}"
        return lines[0]

    @property
    def summary(self) -> dict:
        return json.loads(self.summary_path.read_text())


@pytest.fixture
def locust(procs, tmp_path):
    """run(*args, env=None) -> LocustRun: Locust in tmp_path (so no locust.conf is picked up by
    accident), without the caller's LOCUST_* variables, writing its summary to tmp_path."""

    def run(*args, env: dict | None = None) -> LocustRun:
        name = f"locust-{uuid.uuid4().hex[:6]}"
        summary_path = tmp_path / f"{name}.json"
        clean = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        proc = procs.start(name, [str(VENV_BIN / "locust"), *args, "--summary-json", str(summary_path)],
                           env={**clean, **(env or {})}, cwd=tmp_path)
        try:
            exit_code = proc.popen.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"Locust did not finish within {RUN_TIMEOUT}s\n{proc.log_tail()}")
        return LocustRun(exit_code, proc.log_path.read_text(errors="replace"), summary_path)

    return run


@pytest.fixture
def front(procs, start_webgatos, tmp_path):
    """start(store, **replica_env) -> URL of an HTTP balancer in front of two ready webgatos replicas."""

    def start(store: str, **replica_env) -> str:
        urls = start_webgatos(store, replicas=2, **{k: str(v) for k, v in replica_env.items()})
        upstreams = [(LOOPBACK, int(url.rsplit(":", 1)[1])) for url in urls]
        url, _ = balancer.start(procs, tmp_path, upstreams)
        return url

    return start


def webgatos_users(url: str, users: int, *gate_args: str) -> list[str]:
    """The contract's command line: only WebgatosUser, a few seconds."""
    return ["-f", str(LOCUSTFILE), "WebgatosUser", "--headless", "-u", str(users), "-r", str(users),
            "-t", "3s", "--host", url, "--only-summary", *gate_args]


# --- the color check -----------------------------------------------------------------------


def test_memory_store_fails_the_color_check(front, locust):
    # One user: Envoy alternates the replicas on its connection, so its second page load reaches
    # the replica that does not know its session and gets a new color. Latency is not gated here.
    run = locust(*webgatos_users(front("memory"), 1, "--gate-p95-ms", "off"))
    summary = run.summary
    assert run.exit_code == 1, run.output
    assert run.gate_line.startswith("quality gate failed: error rate "), run.output
    assert "color changed" in run.gate_line
    assert "p95" not in run.gate_line
    assert summary["color_changes"] >= 1
    assert summary["users_failed_by_type"] == {"color changed": 1}
    assert set(summary["responses_by_replica"]) == {"webgatos-0", "webgatos-1"}


def test_redis_store_passes_and_writes_the_reports(front, locust, tmp_path):
    # The p95 gate is loosened: this test is about sessions, and the machine is shared;
    # test_injected_delay_breaches_the_p95_gate covers latency.
    run = locust("--config", str(LOCUST_CONF), *webgatos_users(front("redis"), 4, "--gate-p95-ms", "2000"))
    summary = run.summary
    assert run.exit_code == 0, run.output
    assert run.gate_line == "quality gates passed (p95 <= 2000 ms, error rate <= 0%)"
    assert summary["requests"] >= 4
    assert summary["color_changes"] == summary["failed_requests"] == 0
    assert set(summary["responses_by_replica"]) == {"webgatos-0", "webgatos-1"}  # sessions did cross replicas
    assert summary["gates"] == {"passed": True, "reasons": [], "p95_ms_max": 2000.0, "error_rate_max": 0.0}
    assert sum(row["requests"] for row in summary["timeline"]) == summary["requests"]
    # locust.conf's report paths are relative to the working directory.
    reports = tmp_path / "reports" / "loadtest"
    assert (reports / "locust_stats.csv").read_text().count("\n") >= 2
    assert "<html" in (reports / "report.html").read_text()[:2000].lower()


# --- quality gates -------------------------------------------------------------------------


def test_injected_delay_breaches_the_p95_gate(front, locust):
    run = locust(*webgatos_users(front("redis", FAULT_DELAY_SECONDS=0.3), 2, "--gate-p95-ms", "150"))
    assert run.exit_code == 1, run.output
    match = re.fullmatch(r"quality gate failed: p95 (\d+) ms > 150 ms" + MACHINE, run.gate_line)
    assert match, run.gate_line
    assert int(match.group(1)) >= 300
    assert run.summary["p95_ms"] >= 300
    assert run.summary["failed_requests"] == 0


def test_injected_errors_breach_the_error_gate_and_a_looser_gate_lets_them_pass(front, locust):
    url = front("redis", FAULT_ERROR_RATE=1)
    run = locust(*webgatos_users(url, 2, "--gate-p95-ms", "off"))
    assert run.exit_code == 1, run.output
    match = re.fullmatch(
        r"quality gate failed: error rate 100% > 0% \((\d+) of (\d+) requests failed: HTTP 503 (\d+)\)" + MACHINE,
        run.gate_line)
    assert match and len(set(match.groups())) == 1, run.gate_line
    assert run.summary["failed_requests_by_type"] == {"HTTP 503": int(match.group(1))}

    # The gates decide the exit code, not Locust's "any failure exits 1".
    tolerant = locust(*webgatos_users(url, 2, "--gate-p95-ms", "off"), env={"LOCUST_GATE_ERROR_RATE": "100%"})
    assert tolerant.exit_code == 0, tolerant.output
    assert tolerant.gate_line == "quality gates passed (p95 <= off, error rate <= 100%)"


# --- the arrival profile -------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "seconds"), [(4, 3), (2.5, 2)], ids=["4-per-s-for-3s", "2.5-per-s-for-2s"])
def test_arrival_profile_creates_rate_times_duration_users(front, locust, rate, seconds):
    """The count is exact: the shape holds Locust's target at rate x seconds until every user has
    finished, so the dispatcher neither stops nor restarts one. The timing has a tolerance: Locust
    starts floor(rate) users every floor(rate)/rate s (the batch interval) and each ArrivalUser
    waits a random part of that interval, so the last one arrives in [T - interval, T); on a
    shared, loaded machine gevent's timers can fire late, hence 1.5 s of slack above."""
    run = locust("-f", str(ARRIVAL), "--headless", "--host", front("redis"), "--arrival-rate", str(rate),
                 "--arrival-seconds", str(seconds), "--page-loads", "2", "--gate-p95-ms", "off", "--only-summary")
    summary = run.summary
    expected = round(rate * seconds)
    interval = max(1, int(rate)) / rate
    assert run.exit_code == 0, run.output
    assert summary["user_classes"] == ["ArrivalUser"]
    assert summary["arrival"]["expected_users"] == expected
    assert summary["users_created"] == summary["users_completed"] == expected
    assert summary["users_failed"] == summary["users_unfinished"] == 0
    assert summary["requests"] == 2 * expected
    assert 0 <= summary["arrival"]["first_user_s"] <= interval + 1.5
    assert seconds - interval - 0.1 <= summary["arrival"]["last_user_s"] <= seconds + 1.5
    assert sum(row["users_created"] for row in summary["timeline"]) == expected


def test_arrival_profile_counts_color_changes_with_several_page_loads(front, locust):
    run = locust("-f", str(ARRIVAL), "--headless", "--host", front("memory"), "--arrival-rate", "2",
                 "--arrival-seconds", "2", "--page-loads", "4", "--gate-p95-ms", "off", "--only-summary")
    summary = run.summary
    assert run.exit_code == 1, run.output
    assert summary["users_created"] == 4
    assert summary["requests"] == 16
    assert summary["color_changes"] >= 1
    assert summary["color_changes"] == summary["failed_requests_by_type"]["color changed"]
    assert summary["users_failed_by_type"]["color changed"] == summary["users_failed"] >= 1
    assert summary["users_completed"] + summary["users_failed"] == 4


def test_arrival_profile_over_worker_processes_adds_up_their_users(front, locust):
    # Master and workers (as in the cluster): each worker's tally reaches the master's summary.
    # Its own master port on loopback: on Locust's default (5557) a second run beside this one
    # took this run's workers (seen with two `make test` side by side: 4 workers here, none there).
    port = free_port()
    run = locust("-f", str(ARRIVAL), "--headless", "--processes", "2", "--host", front("redis"),
                 "--master-bind-host", LOOPBACK, "--master-bind-port", str(port),
                 "--master-host", LOOPBACK, "--master-port", str(port),
                 "--arrival-rate", "4", "--arrival-seconds", "2", "--gate-p95-ms", "off", "--only-summary")
    assert run.exit_code == 0, run.output
    summary = run.summary
    assert summary["workers"] == 2
    assert summary["users_created"] == summary["users_completed"] == summary["requests"] == 8


# --- bad input: one clear line, no stack trace ---------------------------------------------


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--gate-p95-ms", "abc"], {},
     "locust: error: argument --gate-p95-ms: expected milliseconds > 0 (e.g. 100) or 'off', got 'abc' "
     "(from the flag or LOCUST_GATE_P95_MS)"),
    (["--gate-error-rate", "2"], {},
     "locust: error: argument --gate-error-rate: expected a share 0..1 (e.g. 0.01), a percentage (1%) or 'off', "
     "got '2' (from the flag or LOCUST_GATE_ERROR_RATE)"),
    ([], {"LOCUST_GATE_P95_MS": "-1"}, "argument --gate-p95-ms: expected milliseconds > 0"),
    ([], {"LOCUST_GATE_ERROR_RATE": "lots"}, "argument --gate-error-rate: expected a share 0..1"),
    (["--arrival-rate", "0"], {}, "argument --arrival-rate: expected users per second > 0"),
], ids=["p95-flag", "error-rate-flag", "p95-env", "error-rate-env", "arrival-rate"])
def test_bad_thresholds_and_values_stop_with_one_line(locust, args, env, message):
    run = locust("-f", str(LOCUSTFILE), "WebgatosUser", "--headless", "-t", "2s",
                 "--host", f"http://{LOOPBACK}:{free_port()}", *args, env=env)
    assert run.exit_code == 2, run.output
    assert message in run.output
    assert "Traceback" not in run.output


def test_unreachable_target_stops_with_one_line(locust):
    port = free_port()
    run = locust("-f", str(LOCUSTFILE), "WebgatosUser", "--headless", "-u", "1", "-t", "2s",
                 "--host", f"http://{LOOPBACK}:{port}")
    assert run.exit_code == 2, run.output
    assert f"locust: error: cannot reach target http://{LOOPBACK}:{port}: connection refused" in run.output
    assert "Traceback" not in run.output
    assert not run.summary_path.exists()


def test_no_user_class_named_stops_with_one_line(locust):
    run = locust("-f", str(LOCUSTFILE), "--headless", "-t", "2s", "--host", f"http://{LOOPBACK}:{free_port()}")
    assert run.exit_code == 2, run.output
    assert "locust: error: name the user class to run (ArrivalUser | SqrtUser | WebgatosUser)" in run.output
    assert "Traceback" not in run.output


# --- the web UI ----------------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_web_ui_listens_on_loopback_and_runs_a_chosen_user_class(front, procs, tmp_path):
    url = front("redis")
    web_port = free_port()
    summary_path = tmp_path / "ui-summary.json"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    proc = procs.start("locust-ui", [str(VENV_BIN / "locust"), "--config", str(LOCUST_CONF),
                                     "-f", f"{LOCUSTFILE},{ARRIVAL},{LOADTESTS / 'ramp.py'}", "--host", url,
                                     "--web-port", str(web_port), "--summary-json", str(summary_path)],
                       env=clean, cwd=tmp_path)
    ui = f"http://{LOOPBACK}:{web_port}"
    wait_until(lambda: http_status(ui + "/") == 200, 60, "Locust's web UI", proc=proc)
    assert listening_addresses(web_port) == {"0100007F"}  # 127.0.0.1 only (locust.conf's web-host)

    started = requests.post(ui + "/swarm", timeout=10, data={
        "user_count": 2, "spawn_rate": 2, "host": url, "user_classes": "WebgatosUser", "shape_class": "Default"})
    assert started.json()["success"] is True, started.text

    def requests_made() -> int:
        stats = requests.get(ui + "/stats/requests", timeout=5).json()
        return next(s["num_requests"] for s in stats["stats"] if s["name"] == "Aggregated")

    wait_until(lambda: requests_made() >= 4, 60, "the UI-started run to make requests", proc=proc)
    proc.stop()  # SIGTERM: Locust shuts down, runs its quitting hooks and writes the summary
    summary = json.loads(summary_path.read_text())
    assert summary["user_classes"] == ["WebgatosUser"]
    assert summary["requests"] >= 4
    assert summary["color_changes"] == summary["failed_requests"] == 0


# --- the ramp for HPA demos ----------------------------------------------------------------


def test_ramp_drives_sqrt_up_and_down_and_ends_by_itself(procs, locust):
    port = free_port()
    procs.gunicorn("sqrt:create_app()", port, {}, name="sqrt", config=SQRT_GUNICORN_CONF)
    run = locust("-f", str(LOADTESTS / "ramp.py"), "--headless", "--host", f"http://{LOOPBACK}:{port}",
                 "--ramp-users", "3", "--ramp-up", "1s", "--ramp-hold", "1s", "--ramp-down", "1s",
                 "--sqrt-iterations", "1000", "--gate-p95-ms", "off", "--only-summary")
    summary = run.summary
    assert run.exit_code == 0, run.output
    assert "Shape test completed" in run.output  # the shape ended the run, no --run-time needed
    assert summary["user_classes"] == ["SqrtUser"]
    assert summary["users_created"] == 3
    assert summary["requests"] > 3
    assert summary["failed_requests"] == 0
    assert 3 <= summary["duration_s"] <= 3 + 5  # up + hold + down, then Locust's own stop
