"""The SLO judge on real processes: Debian's Prometheus scraping webgatos under gunicorn while a
bounded loop of requests runs through three phases (baseline clean, an error fault on, recovery).
A fault left on past its window breaks the hypothesis, naming the phase and the query; the same
fault switched off in time holds it."""

import threading
import time

import pytest
import requests

from lab.experiments import slo
from lab.host.binaries import MissingBinary
from lab.host.procs import LOOPBACK, ProcessGroup, free_port, wait_until
from lab.observe import prometheus as prometheus_module
from lab.observe.prometheus import Prometheus
from lab.observe.promql import PromQL, PromQLError
from tests.conftest import ADMIN_AUTH, ADMIN_TOKEN, IN_CI, WEBGATOS_GUNICORN_CONF

BASELINE_S, FAULT_ON_S, ALLOWANCE_S, RECOVERY_S = 5.0, 4.0, 2.0, 6.0
HYPOTHESIS = {"availability": 0.95, "p95_ms": 2000, "color_changes": 0, "phases": ["baseline", "recovery"]}
USERS = 4
REQUEST_PAUSE_S = 0.02  # about 30 requests a second on a loaded machine: enough for every window


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """One webgatos replica (memory store) and a Prometheus scraping it every second."""
    try:
        prometheus_module.prometheus_binary()
    except MissingBinary as missing:  # it names `make prometheus`
        if IN_CI:
            raise
        pytest.skip(str(missing))
    workdir = tmp_path_factory.mktemp("prometheus-slo")
    with ProcessGroup(workdir / "logs") as group:
        port = free_port()
        group.gunicorn("webgatos:create_app()", port, {
            "SESSION_STORE": "memory", "SECRET_KEY": "test-secret-key", "SHUTDOWN_DRAIN_SECONDS": "0",
            "ADMIN_TOKEN": ADMIN_TOKEN, "REPLICA_NAME": "webgatos-0"}, name="webgatos-0",
            config=WEBGATOS_GUNICORN_CONF)
        server = Prometheus(workdir / "prometheus", group=group).start()
        server.set_targets("webgatos", [f"{LOOPBACK}:{port}"], labels={"case": "slo-test"})
        server.wait_scraped("webgatos", timeout=30)
        yield f"http://{LOOPBACK}:{port}", server


class Traffic:
    """A few users, each with its cookie jar, visiting /api/session in a bounded loop on a thread."""

    def __init__(self, url: str, max_seconds: float = 60.0):
        self.url, self.max_seconds = url, max_seconds
        self.stopping = threading.Event()
        self.sent = self.failed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        users = [requests.Session() for _ in range(USERS)]
        deadline = time.monotonic() + self.max_seconds
        while not self.stopping.is_set() and time.monotonic() < deadline:
            for user in users:
                try:
                    status = user.get(self.url + "/api/session", timeout=5).status_code
                except requests.RequestException:
                    status = 0
                self.sent += 1
                self.failed += status >= 500 or status == 0
            time.sleep(REQUEST_PAUSE_S)

    def __enter__(self) -> "Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        self.thread.join(timeout=15)


def set_faults(url: str, error_rate: float) -> None:
    response = requests.put(url + "/admin/faults", json={"error_rate": error_rate}, headers=ADMIN_AUTH, timeout=10)
    assert response.status_code == 200, response.text


def settle(server: Prometheus) -> None:
    """Two scrapes after now, so that a window starting now holds nothing from before."""
    after = time.time() + 2
    wait_until(lambda: server.client().last_scrape() >= after, 20, "two more scrapes", interval=0.2)


def run_phases(url: str, server: Prometheus, switch_off: bool) -> dict[str, list[float]]:
    """Baseline, fault (on for FAULT_ON_S plus an allowance), recovery; the fault is switched off
    at the end of its window only when `switch_off`."""
    set_faults(url, 0.0)
    settle(server)
    with Traffic(url) as traffic:
        t0 = time.time()
        time.sleep(BASELINE_S)
        t1 = time.time()
        set_faults(url, 0.5)
        time.sleep(FAULT_ON_S)
        if switch_off:
            set_faults(url, 0.0)
        time.sleep(ALLOWANCE_S)
        t2 = time.time()
        time.sleep(RECOVERY_S)
        t3 = time.time()
    set_faults(url, 0.0)
    assert traffic.failed > 0 and traffic.sent > 100, (traffic.sent, traffic.failed)
    return {"baseline": [t0, t1], "fault": [t1, t2], "recovery": [t2, t3]}


def test_a_fault_left_on_breaks_the_recovery_phase_naming_the_query(lab):
    url, server = lab
    phases = run_phases(url, server, switch_off=False)
    result = slo.judge(server.client(), HYPOTHESIS, phases, {"case": "slo-test"})
    assert result["verdict"] == "broken", result
    assert set(result["phases"]) == {"baseline", "recovery"}
    assert all(entry["ok"] for entry in result["phases"]["baseline"]), result["phases"]["baseline"]
    [broken] = [entry for entry in result["phases"]["recovery"] if not entry["ok"]]
    assert broken["check"] == "availability" and broken["value"] < 0.95
    assert 'status=~"5.."' in broken["promql"] and 'case="slo-test"' in broken["promql"]
    assert broken["reason"].startswith("availability ") and "is not >= 0.95" in broken["reason"]
    assert result["time_to_recover_s"] is None
    assert any("until the run's end" in note for note in result["notes"])
    assert result["error_budget_spent"] > 1


def test_a_fault_switched_off_in_time_holds(lab):
    url, server = lab
    phases = run_phases(url, server, switch_off=True)
    result = slo.judge(server.client(), HYPOTHESIS, phases, {"case": "slo-test"})
    assert result["verdict"] == "held", result
    values = {entry["check"]: entry["value"] for entry in result["phases"]["recovery"]}
    assert values["availability"] == 1 and values["color_changes"] == 0
    # Errors stopped when the fault did (FAULT_ON_S after the first "kill"), give or take the
    # judge's 3 s window and a scrape.
    assert FAULT_ON_S - 1.5 <= result["time_to_recover_s"] <= FAULT_ON_S + 4.5, result
    assert result["totals"]["failed"] > 0 and result["totals"]["requests"] > 100
    assert slo.disagreements({"failed_requests": 3, "color_changes": 0}, result) == []


def test_an_unreachable_prometheus_is_unknown_not_held():
    dead = PromQL(f"http://{LOOPBACK}:{free_port()}", timeout=1)
    now = time.time()
    result = slo.judge(dead, HYPOTHESIS, {"baseline": [now - 10, now - 5], "recovery": [now - 5, now]},
                       scrape_wait=0.5)
    assert result["verdict"] == "unknown"
    for entry in result["phases"]["recovery"]:
        assert not entry["ok"] and "unreachable" in entry["reason"] and entry["value"] is None
    with pytest.raises(PromQLError, match="unreachable"):
        dead.value("up")
