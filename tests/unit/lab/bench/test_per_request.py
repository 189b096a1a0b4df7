"""The benchmark's judging arithmetic: ratios taken round by round, so a drift in the machine's
speed between rounds lands on both servers of a round alike."""

import pytest

from lab.bench import targets
from lab.bench.measure import Figures
from lab.bench.per_request import target_checks


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


def test_start_up_is_judged_against_the_flask_hello_in_the_same_rounds():
    hello = figures([1000.0, 1000.0, 1000.0], ready_runs=[0.15, 0.30, 0.15])  # round 2 slow for both
    redis = figures([500.0, 500.0, 500.0], ready_runs=[0.21, 0.42, 0.22])
    what, met = start_up_check(target_checks({"Flask hello": hello, "webgatos redis": redis}))
    assert met and "1.40x" in what  # round ratios 1.40, 1.40, 1.47: the median, within redis's 1.50x
    slower = figures([500.0, 500.0, 500.0], ready_runs=[0.24, 0.48, 0.25])
    what, met = start_up_check(target_checks({"Flask hello": hello, "webgatos redis": slower}))
    assert not met and "1.60x" in what


def test_the_targets_come_from_the_data_file(tmp_path):
    strict = tmp_path / "targets.toml"
    strict.write_text(targets.TARGETS_FILE.read_text().replace("ready_vs_flask_hello_at_most = 1.24",
                                                               "ready_vs_flask_hello_at_most = 1.0"))
    hello = figures([1000.0], ready_runs=[0.15])
    memory = {"Flask hello": hello, "webgatos memory": figures([700.0], [0.17])}
    what, met = start_up_check(target_checks(memory, targets.load(strict)))
    assert not met and "target <= 1.00x" in what
    what, met = start_up_check(target_checks(memory))
    assert met and "target <= 1.24x" in what


def test_the_targets_file_bounds_every_store():
    loaded = targets.load()
    assert set(loaded.stores) == {"memory", "redis", "hazelcast"}
    assert loaded.p95_ms_below > 0
    assert all(0 < store.share_of_flask_hello_at_least <= 1 for store in loaded.stores.values())
    assert all(store.rss_mib_at_most > 0 and store.ready_vs_flask_hello_at_most >= 1
               for store in loaded.stores.values())
