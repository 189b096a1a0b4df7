"""The benchmark's judging arithmetic: ratios taken round by round, so a drift in the machine's
speed between rounds lands on both servers of a round alike."""

import pytest

from lab.bench import BEFORE_ISSUE, Figures, services_before_issue, target_checks


def figures(saturation_runs, ready_runs) -> Figures:
    return Figures(saturation_runs=saturation_runs, cpu_ms=0.5, p95_runs=[1.0], rss_mib=60.0,
                   ready_runs=ready_runs, success=1.0)


def test_start_up_ratio_is_the_median_of_the_per_round_ratios():
    # The machine is twice as slow in round 2: both starts take twice as long there.
    hello = figures([1000.0, 500.0, 1000.0], ready_runs=[0.20, 0.40, 0.21])
    store = figures([500.0, 250.0, 500.0], ready_runs=[0.24, 0.48, 0.40])
    assert store.ready_ratio_to(hello.ready_runs) == pytest.approx(1.2)  # round ratios 1.2, 1.2, 1.9
    assert store.ready_seconds == pytest.approx(0.40)  # the shown start-up is still the median start
    assert store.ready_seconds / hello.ready_seconds == pytest.approx(1.9, abs=0.01)  # a ratio of medians


def test_share_of_the_hello_is_taken_round_by_round():
    hello = figures([1000.0, 500.0, 1000.0], ready_runs=[0.2, 0.2, 0.2])
    store = figures([600.0, 300.0, 700.0], ready_runs=[0.2, 0.2, 0.2])
    assert store.shares_of(hello) == pytest.approx([0.6, 0.6, 0.7])
    assert store.share_of(hello) == pytest.approx(0.6)


def test_rounds_must_pair_up():
    with pytest.raises(ValueError):
        figures([1.0], ready_runs=[0.2, 0.3]).ready_ratio_to([0.2])


def start_up_check(checks):
    matching = [(what, met) for what, met in checks if "start" in what]
    assert len(matching) == 1, checks
    return matching[0]


def test_start_up_is_judged_against_the_code_before_the_issue_in_the_same_rounds():
    hello = figures([1000.0, 1000.0, 1000.0], ready_runs=[0.15, 0.15, 0.15])
    redis = figures([500.0, 500.0, 500.0], ready_runs=[0.21, 0.42, 0.22])
    before = {f"webgatos redis, {BEFORE_ISSUE}": [0.25, 0.50, 0.21]}  # round 2 slow for both
    what, met = start_up_check(target_checks({"Flask hello": hello, "webgatos redis": redis}, before))
    assert met and "0.84x" in what  # round ratios 0.84, 0.84, 1.05: the median
    slower = {f"webgatos redis, {BEFORE_ISSUE}": [0.20, 0.40, 0.21]}
    what, met = start_up_check(target_checks({"Flask hello": hello, "webgatos redis": redis}, slower))
    assert not met and "1.05x" in what


def test_start_up_is_missed_when_the_code_before_the_issue_did_not_start():
    hello = figures([1000.0], ready_runs=[0.15])
    what, met = start_up_check(target_checks({"Flask hello": hello, "webgatos memory": figures([700.0], [0.17])}, {}))
    assert not met and "not compared" in what


def test_the_code_before_the_issue_comes_from_git(tmp_path):
    services = services_before_issue(tmp_path)
    conf = services / "webgatos" / "gunicorn.conf.py"
    assert conf.is_file() and (services / "common" / "service_common").is_dir()
    assert not (services / "webgatos" / "webgatos" / "redis_store.py").exists()  # came with the issue
