"""The Locust-free logic of the load tests (loadtests/loadlogic.py): option values, the color
check, the load profiles, the tally that travels from workers to the master, the quality gates
and the summary. Locust itself is exercised in tests/e2e/test_loadtests*.py."""

import argparse
import ast
import importlib.util
import socket
import sys
from pathlib import Path

import msgpack
import pytest

from lab.host.procs import LOOPBACK, free_port

LOADLOGIC_PATH = Path(__file__).resolve().parents[2] / "loadtests" / "loadlogic.py"


def _load_loadlogic():
    # loadtests/ is a folder of Locust files, not a package: load the module from its path, with
    # its folder on sys.path for its siblings (durations.py), as Locust runs it.
    if str(LOADLOGIC_PATH.parent) not in sys.path:
        sys.path.append(str(LOADLOGIC_PATH.parent))
    spec = importlib.util.spec_from_file_location("loadlogic", LOADLOGIC_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("loadlogic", module)
    spec.loader.exec_module(module)
    return module


logic = _load_loadlogic()


def test_loadlogic_imports_neither_locust_nor_gevent():
    # Importing locust monkey-patches the whole process with gevent; the unit tests must not.
    tree = ast.parse(LOADLOGIC_PATH.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"locust", "gevent"}


# --- option values -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [("100", 100.0), ("2.5", 2.5), (" 250 ", 250.0), ("off", None),
                                                ("OFF", None), (100.0, 100.0), (None, None)])
def test_p95_threshold_accepts_milliseconds_or_off(text, expected):
    assert logic.p95_threshold_ms(text) == expected


@pytest.mark.parametrize("text", ["abc", "0", "-5", "nan", "inf", "", "100ms"])
def test_p95_threshold_rejects_with_the_accepted_forms(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected milliseconds > 0 .* or 'off', got"):
        logic.p95_threshold_ms(text)


@pytest.mark.parametrize(("text", "expected"), [("0", 0.0), ("0.01", 0.01), ("1", 1.0), ("5%", 0.05),
                                                ("100%", 1.0), ("off", None), (0.25, 0.25)])
def test_error_rate_threshold_accepts_a_share_a_percentage_or_off(text, expected):
    value = logic.error_rate_threshold(text)
    assert value == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("text", ["2", "-0.1", "150%", "x", "%", "nan"])
def test_error_rate_threshold_rejects_out_of_range_values(text):
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a share 0\.\.1"):
        logic.error_rate_threshold(text)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("2m", 120), ("1m30s", 90), ("1h", 3600),
                                               ("0", 0), ("1.5", 1.5), (120.0, 120)])
def test_duration_seconds(text, seconds):
    assert logic.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "-5", "5x", "m"])
def test_duration_seconds_rejects_other_forms(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration like 90, 90s, 2m or 1m30s"):
        logic.duration_seconds(text)


@pytest.mark.parametrize(("parse", "bad"), [(logic.positive_int, "0"), (logic.positive_int, "1.5"),
                                            (logic.positive_int, "x"), (logic.positive_rate, "0"),
                                            (logic.positive_rate, "-1"), (logic.positive_rate, "fast")])
def test_counts_and_rates_reject_non_positive_values(parse, bad):
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        parse(bad)


# --- the target check ----------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), [
    (None, "no target: pass --host URL"),
    ("", "no target"),
    ("127.0.0.1:8080", "invalid target '127.0.0.1:8080': expected http://HOST[:PORT]"),
    ("ftp://127.0.0.1/", "invalid target"),
    ("http://127.0.0.1:99999/", "bad port"),
])
def test_target_problem_explains_bad_urls(url, message):
    assert message in logic.target_problem(url)


def test_target_problem_reports_a_refused_connection():
    port = free_port()
    assert logic.target_problem(f"http://{LOOPBACK}:{port}") == \
        f"cannot reach target http://{LOOPBACK}:{port}: connection refused"


def test_target_problem_is_none_when_something_listens():
    with socket.socket() as server:
        server.bind((LOOPBACK, 0))
        server.listen()
        assert logic.target_problem(f"http://{LOOPBACK}:{server.getsockname()[1]}/") is None


# --- the functional check ------------------------------------------------------------------


@pytest.mark.parametrize(("html", "color"), [
    ('<html><body data-color="#1a2b3c" data-replica="webgatos-0">', "#1a2b3c"),
    ("<body class='x' data-replica=r data-color='#ABCDEF'>", "#abcdef"),
    ('<BODY\n  data-color="#00ff00"\n>', "#00ff00"),
    ('<body data-replica="webgatos-0">', None),
    ('<body data-color="red">', None),
    ('<div data-color="#123456"></div>', None),
    ("", None),
    (None, None),
])
def test_page_color_reads_the_body_attribute(html, color):
    assert logic.page_color(html) == color


def test_color_check_fails_a_changed_or_missing_color_and_follows_the_new_one():
    check = logic.ColorCheck()
    page = '<body data-color="{}">'.format
    assert check.observe(page("#111111")) is None
    assert check.observe(page("#111111")) is None
    assert check.observe(page("#222222")) == logic.COLOR_CHANGED
    assert check.observe(page("#222222")) is None  # compared with the last color seen
    assert check.observe("<body>") == logic.MISSING_COLOR
    assert check.observe(page("#222222")) is None


@pytest.mark.parametrize(("status", "exception", "error"), [
    (200, None, None), (302, None, None), (404, None, "HTTP 404"), (503, RuntimeError("x"), "HTTP 503"),
    (0, ConnectionRefusedError(), "ConnectionRefusedError"), (0, None, "no response"),
    (200, ConnectionResetError(), "ConnectionResetError"),
])
def test_response_error_names_the_kind_of_failure(status, exception, error):
    assert logic.response_error(status, exception) == error


# --- load profiles -------------------------------------------------------------------------


def test_arrival_profile_keeps_the_total_until_every_user_finished_or_the_drain_ends():
    profile = logic.ArrivalProfile(rate=10, seconds=120, drain_seconds=30)
    assert profile.total_users == 1200
    assert profile.tick(0, finished_users=0) == (1200, 10)
    assert profile.tick(119.9, finished_users=1100) == (1200, 10)
    assert profile.tick(121, finished_users=1199) == (1200, 10)  # one user still visiting
    assert profile.tick(121, finished_users=1200) is None
    assert profile.tick(150.1, finished_users=1199) is None  # the drain timed out


@pytest.mark.parametrize(("rate", "seconds", "total", "interval"), [
    (10, 120, 1200, 1.0), (2.5, 4, 10, 0.8), (0.5, 10, 5, 2.0), (0.1, 1, 1, 10.0)])
def test_arrival_profile_total_and_batch_interval(rate, seconds, total, interval):
    profile = logic.ArrivalProfile(rate=rate, seconds=seconds)
    assert profile.total_users == total
    assert profile.batch_interval == pytest.approx(interval)


def test_ramp_profile_goes_up_holds_and_comes_down():
    ramp = logic.RampProfile(users=50, up_seconds=10, hold_seconds=20, down_seconds=5)
    assert ramp.tick(0) == (50, 5.0)
    assert ramp.tick(29.9) == (50, 5.0)
    assert ramp.tick(30) == (0, 10.0)
    assert ramp.tick(35) is None
    assert logic.RampProfile(users=8, up_seconds=0, hold_seconds=5, down_seconds=0).tick(0) == (8, 8.0)


# --- the tally -----------------------------------------------------------------------------


def test_tally_counts_users_by_first_error_and_every_failed_request():
    tally = logic.Tally()
    for now in (100.2, 100.7, 101.1):
        tally.user_created(now)
    tally.request_failed(logic.COLOR_CHANGED, first_of_user=True)
    tally.request_failed("HTTP 503", first_of_user=False)
    tally.request_failed(logic.COLOR_CHANGED, first_of_user=False)
    tally.user_finished(failed=True)
    tally.user_finished(failed=False)
    assert tally.users_failed == 1
    assert tally.users_failed_by_type == {logic.COLOR_CHANGED: 1}
    assert tally.failed_requests_by_type == {logic.COLOR_CHANGED: 2, "HTTP 503": 1}
    assert tally.color_changes == 2
    assert (tally.users_completed, tally.users_finished) == (1, 2)
    assert tally.users_created_per_second == {100: 2, 101: 1}
    assert (tally.first_user_at, tally.last_user_at) == (100.2, 101.1)


def test_tally_snapshots_survive_msgpack_and_sum_on_the_master():
    # Workers send snapshots through Locust's msgpack channel; the master sums the latest ones.
    first, second = logic.Tally(), logic.Tally()
    first.user_created(100.5)
    first.request_failed("HTTP 503", first_of_user=True)
    first.responses_by_replica["webgatos-0"] += 3
    second.user_created(99.9)
    second.user_created(102.0)
    second.user_finished(failed=False)
    second.responses_by_replica["webgatos-0"] += 1
    wire = [msgpack.unpackb(msgpack.packb(t.snapshot()), strict_map_key=False) for t in (first, second)]
    total = logic.Tally.merged(wire)
    assert total.users_created == 3
    assert total.users_completed == 1
    assert total.users_failed_by_type == {"HTTP 503": 1}
    assert total.responses_by_replica == {"webgatos-0": 4}
    assert total.users_created_per_second == {99: 1, 100: 1, 102: 1}
    assert (total.first_user_at, total.last_user_at) == (99.9, 102.0)


def test_the_first_failed_requests_are_kept_to_read_and_merged_in_time_order():
    worker, master = logic.Tally(), logic.Tally()
    for second in range(logic.FAILURE_SAMPLES_KEPT + 5):
        detail = logic.failure_detail(at=200.0 + second, status=503, elapsed_ms=1002.34, replica="webgatos-1",
                                      body="Session store unavailable.\n", exception=None)
        worker.request_failed("HTTP 503", first_of_user=False, detail=detail)
    master.request_failed("ConnectionResetError", first_of_user=True, detail=logic.failure_detail(
        at=150.0, status=0, elapsed_ms=None, replica=None, body=None, exception=ConnectionResetError("reset")))
    assert len(worker.failure_samples) == logic.FAILURE_SAMPLES_KEPT
    assert worker.failure_samples[0] == {"error": "HTTP 503", "at": 200.0, "status": 503, "ms": 1002.3,
                                         "replica": "webgatos-1", "said": "Session store unavailable."}
    wire = [msgpack.unpackb(msgpack.packb(t.snapshot()), strict_map_key=False) for t in (worker, master)]
    total = logic.Tally.merged(wire)
    assert len(total.failure_samples) == logic.FAILURE_SAMPLES_KEPT
    assert total.failure_samples[0] == {"error": "ConnectionResetError", "at": 150.0, "status": None, "ms": None,
                                        "replica": None, "said": "reset"}
    assert [f["at"] for f in total.failure_samples[1:]] == [200.0 + s for s in range(logic.FAILURE_SAMPLES_KEPT - 1)]


# --- gates and summary ---------------------------------------------------------------------


def test_gates_pass_within_thresholds():
    result = logic.Gates().evaluate(requests=100, failures=0, failures_by_type={}, p95_ms=100)
    assert result.passed and result.reasons == []
    assert result.line(logic.Gates()) == "quality gates passed (p95 <= 100 ms, error rate <= 0%)"


def test_gates_give_one_line_naming_each_breach():
    gates = logic.Gates(p95_ms=100, error_rate=0.05)
    result = gates.evaluate(requests=200, failures=30, failures_by_type={"HTTP 503": 20, "color changed": 10},
                            p95_ms=430)
    assert not result.passed
    assert result.line(gates) == ("quality gate failed: p95 430 ms > 100 ms; error rate 15% > 5% "
                                  "(30 of 200 requests failed: HTTP 503 20, color changed 10)")


def test_gates_off_ignore_their_measure_and_a_run_without_requests_fails():
    off = logic.Gates(p95_ms=None, error_rate=None)
    assert off.evaluate(requests=10, failures=10, failures_by_type={"HTTP 503": 10}, p95_ms=9000).passed
    assert off.evaluate(requests=0, failures=0, failures_by_type={}, p95_ms=None).reasons == ["no requests were made"]
    assert off.describe() == "p95 <= off, error rate <= off"


def test_gates_fail_when_the_load_test_code_raised():
    result = logic.Gates().evaluate(requests=5, failures=0, failures_by_type={}, p95_ms=1, code_exceptions=2)
    assert result.reasons == ["2 exception(s) in the load test code (see the log)"]


def test_summary_has_the_keys_the_lab_reads_and_a_gap_free_timeline():
    tally = logic.Tally()
    for now in (1000.4, 1000.6, 1003.2):
        tally.user_created(now)
    tally.request_failed(logic.COLOR_CHANGED, first_of_user=True)
    tally.user_finished(failed=True)
    tally.user_finished(failed=False)
    gates = logic.Gates()
    result = gates.evaluate(requests=6, failures=1, failures_by_type=tally.failed_requests_by_type, p95_ms=40)
    record = logic.summary(
        tally=tally, gates=gates, result=result, requests=6, failures=1, p50_ms=10, p95_ms=40,
        started_at=1000.2, ended_at=1004.0, target="http://127.0.0.1:1", user_classes=["ArrivalUser"],
        requests_per_second={1000: 2, 1001: 1, 1003: 3}, failures_per_second={1001: 1},
        arrival=logic.ArrivalProfile(rate=1, seconds=3))
    assert record["users_created"] == 3
    assert (record["users_completed"], record["users_failed"], record["users_unfinished"]) == (1, 1, 1)
    assert record["failed_requests"] == 1
    assert record["failed_requests_by_type"] == {"color changed": 1}
    assert record["failure_samples"] == [{"error": "color changed"}]
    assert record["color_changes"] == 1
    assert record["gates"] == {"passed": False, "reasons": result.reasons, "p95_ms_max": 100.0, "error_rate_max": 0.0}
    assert [row["second"] for row in record["timeline"]] == [0, 1, 2, 3]
    assert [row["requests"] for row in record["timeline"]] == [2, 1, 0, 3]
    assert [row["failed_requests"] for row in record["timeline"]] == [0, 1, 0, 0]
    assert [row["users_created"] for row in record["timeline"]] == [2, 0, 0, 1]
    assert record["arrival"] == {"rate": 1, "seconds": 3, "expected_users": 3, "first_user_s": 0.2,
                                 "last_user_s": 3.0}
