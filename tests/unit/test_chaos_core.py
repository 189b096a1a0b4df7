"""chaos.core: the plain rules both targets share (parsing, refusals, victim choice) and the round
loop, driven here by a small in-memory target (a list of names), since the loop only needs
`candidates()` and `kill(victim)`."""

import io
import random
import threading
import time

import pytest

from chaos.core import (
    DEFAULT_DENY_NAMESPACES,
    FAILED,
    GONE,
    KILLED,
    Abort,
    Count,
    Plan,
    Refusal,
    Victim,
    check_namespace,
    check_selector,
    choose_victims,
    parse_count,
    parse_duration,
    run_rounds,
    split_selector,
)


@pytest.mark.parametrize("text, seconds", [
    ("15s", 15), ("1m", 60), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("15", 15), ("2.5", 2.5),
    (" 10S ", 10), ("0.5s", 0.5),
])
def test_parse_duration_reads_units_and_plain_seconds(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["0", "0s", "-5", "-1m", "0ms", "nan", "inf"])
def test_parse_duration_refuses_a_non_positive_interval(text):
    with pytest.raises(Refusal, match=r"--interval must be positive"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["", "fast", "15 s", "1d", "s", "1m-5s"])
def test_parse_duration_refuses_what_it_cannot_read(text):
    with pytest.raises(Refusal, match="--duration: cannot read"):
        parse_duration(text, "--duration")


@pytest.mark.parametrize("text, count", [
    ("one", Count("fixed", 1)), ("1", Count("fixed", 1)), ("3", Count("fixed", 3)), ("all", Count("all")),
    ("ALL", Count("all")), ("30%", Count("percent", 30)), ("100%", Count("percent", 100)),
    ("0.5%", Count("percent", 0.5)),
])
def test_parse_count_modes(text, count):
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["0%", "-10%", "101%", "150%"])
def test_parse_count_refuses_a_percentage_out_of_range(text):
    with pytest.raises(Refusal, match="percentage must be above 0% and at most 100%"):
        parse_count(text)


@pytest.mark.parametrize("text, message", [
    ("0", "at least 1"), ("-1", "use one, a whole number"), ("two", "use one, a whole number"),
    ("1.5", "use one, a whole number"), ("x%", "cannot read 'x%' as a percentage"),
])
def test_parse_count_refuses_other_bad_counts(text, message):
    with pytest.raises(Refusal, match=message):
        parse_count(text)


@pytest.mark.parametrize("count, candidates, victims", [
    (Count("fixed", 1), 3, 1), (Count("fixed", 5), 3, 3), (Count("fixed", 2), 0, 0),
    (Count("percent", 50), 3, 2), (Count("percent", 50), 4, 2), (Count("percent", 1), 2, 1),
    (Count("percent", 100), 5, 5), (Count("percent", 30), 0, 0), (Count("all"), 4, 4), (Count("all"), 0, 0),
])
def test_count_of_candidates(count, candidates, victims):
    assert count.of(candidates) == victims


def test_check_namespace_refuses_a_missing_namespace():
    for missing in (None, "", "   "):
        with pytest.raises(Refusal, match="--namespace is required"):
            check_namespace(missing)


@pytest.mark.parametrize("namespace", DEFAULT_DENY_NAMESPACES)
def test_check_namespace_refuses_the_default_deny_list(namespace):
    with pytest.raises(Refusal, match=rf"refusing namespace '{namespace}'.*--i-know-what-i-am-doing"):
        check_namespace(namespace)


def test_check_namespace_refuses_kube_system_even_with_an_empty_deny_list():
    with pytest.raises(Refusal, match="refusing namespace 'kube-system'"):
        check_namespace("kube-system", deny=[])


def test_check_namespace_refuses_an_added_deny_entry_and_yields_to_force():
    with pytest.raises(Refusal, match="refusing namespace 'prod'"):
        check_namespace("prod", deny=[*DEFAULT_DENY_NAMESPACES, "prod"])
    assert check_namespace("kube-system", force=True) == "kube-system"
    assert check_namespace(" demo ") == "demo"


@pytest.mark.parametrize("namespace", ["Demo", "demo_ns", "-demo", "a" * 64, "demo/x"])
def test_check_namespace_refuses_malformed_names(namespace):
    with pytest.raises(Refusal, match="is not a valid namespace name"):
        check_namespace(namespace)


@pytest.mark.parametrize("selector", [
    "app=webapp", "app==webapp", "app.kubernetes.io/name=webgatos,app.kubernetes.io/instance=demo",
    "tier in (web, api)", "app", "app=webgatos,tier!=db", "app=x,!canary", "env notin (prod),app=web",
])
def test_check_selector_accepts_selectors_with_a_positive_requirement(selector):
    assert check_selector(selector) == selector


@pytest.mark.parametrize("selector", [None, "", "  "])
def test_check_selector_refuses_an_empty_selector(selector):
    with pytest.raises(Refusal, match="--selector is required and must not be empty"):
        check_selector(selector)


@pytest.mark.parametrize("selector", ["app!=db", "!canary", "env notin (prod)", "app!=db,!canary"])
def test_check_selector_refuses_a_selector_that_only_excludes(selector):
    with pytest.raises(Refusal, match="only excludes pods"):
        check_selector(selector)


@pytest.mark.parametrize("selector", ["app=", "=x", "app=web app", "app=x,,tier=y", "app in web", "a b"])
def test_check_selector_refuses_malformed_requirements(selector):
    if selector == "app=":  # an empty value is legal in Kubernetes: app= selects label app with value ""
        assert check_selector(selector) == selector
        return
    with pytest.raises(Refusal, match="cannot read requirement"):
        check_selector(selector)


def test_split_selector_keeps_set_values_together():
    assert split_selector("tier in (web, api),app=x") == ["tier in (web, api)", "app=x"]


def victims(*names):
    return [Victim(name) for name in names]


def test_choose_victims_picks_the_counted_number_from_the_candidates():
    pods = victims("a", "b", "c", "d")
    for count, expected in ((Count("fixed", 1), 1), (Count("fixed", 3), 3), (Count("percent", 50), 2),
                            (Count("all"), 4)):
        chosen = choose_victims(pods, count, random.Random(1))
        assert len(chosen) == expected and len(set(chosen)) == expected
        assert set(chosen) <= set(pods)
    assert choose_victims([], Count("all"), random.Random(1)) == []


def test_choose_victims_is_repeatable_with_a_seed_whatever_the_listing_order():
    pods = victims("a", "b", "c", "d", "e")
    first = choose_victims(pods, Count("fixed", 2), random.Random(42))
    again = choose_victims(list(reversed(pods)), Count("fixed", 2), random.Random(42))
    assert first == again


def test_choose_victims_spreads_over_all_candidates():
    rng = random.Random(7)
    seen = {choose_victims(victims("a", "b", "c"), Count("fixed", 1), rng)[0].name for _ in range(60)}
    assert seen == {"a", "b", "c"}


class ListTarget:
    """Candidates are names in a list; a kill appends to `killed`. `results` scripts kill outcomes."""

    def __init__(self, names, results=None):
        self.names = list(names)
        self.results = list(results or [])
        self.killed: list[tuple[float, str]] = []

    def candidates(self):
        return victims(*self.names)

    def kill(self, victim):
        self.killed.append((time.monotonic(), victim.name))
        return self.results.pop(0) if self.results else KILLED


def plan(**kwargs):
    kwargs.setdefault("interval", 0.1)
    kwargs.setdefault("count", Count("fixed", 1))
    return Plan("test", "test victims", "SIGTERM", **kwargs)


def test_run_rounds_kills_once_per_round_at_the_interval():
    target, out = ListTarget(["a", "b"]), io.StringIO()
    began = time.monotonic()
    summary = run_rounds(plan(rounds=3, interval=0.2), target.candidates, target.kill, threading.Event(), out,
                         random.Random(0))
    assert summary["rounds"] == 3 and summary["killed"] == 3 and summary["stopped_by"] == "rounds"
    times = [t for t, _ in target.killed]
    # Round k fires no earlier than k intervals after the start.
    for k, t in enumerate(times, start=1):
        assert t - began >= k * 0.2 - 0.01
    lines = out.getvalue().splitlines()
    assert [line.split(" ")[1] for line in lines] == ["killed"] * 3 + ["summary"]
    assert all("target=test" in line and "signal=SIGTERM" in line for line in lines[:3])
    assert [k["round"] for k in summary["kills"]] == [1, 2, 3]
    assert [k["victim"] for k in summary["kills"]] == [name for _, name in target.killed]


def test_run_rounds_stops_when_the_duration_is_over():
    target = ListTarget(["a"])
    began = time.monotonic()
    summary = run_rounds(plan(interval=0.1, duration=0.35), target.candidates, target.kill, threading.Event(),
                         io.StringIO(), random.Random(0))
    assert time.monotonic() - began >= 0.35
    assert summary["stopped_by"] == "duration" and summary["rounds"] == 3 and summary["killed"] == 3


def test_run_rounds_stops_cleanly_when_asked_and_still_sums_up():
    target, stop = ListTarget(["a"]), threading.Event()

    def kill_then_stop_after_two(victim):
        result = target.kill(victim)
        if len(target.killed) == 2:
            stop.set()  # as the SIGTERM handler does
        return result

    out = io.StringIO()
    summary = run_rounds(plan(interval=0.05), target.candidates, kill_then_stop_after_two, stop, out,
                         random.Random(0))
    assert summary["stopped_by"] == "signal"
    assert summary["killed"] == len(target.killed) == summary["rounds"] == 2
    assert out.getvalue().splitlines()[-1].endswith("stopped_by=signal")


def test_run_rounds_stops_in_the_middle_of_a_round_after_the_current_kill():
    target, stop = ListTarget(["a", "b", "c"]), threading.Event()

    def kill_then_interrupt(victim):
        stop.set()
        return target.kill(victim)

    summary = run_rounds(plan(rounds=3, count=Count("all")), target.candidates, kill_then_interrupt, stop,
                         io.StringIO(), random.Random(0))
    assert len(target.killed) == 1 and summary["killed"] == 1
    assert summary["stopped_by"] == "signal" and summary["rounds"] == 1


def test_run_rounds_dry_run_kills_nothing_but_says_what_it_would():
    target, out = ListTarget(["a", "b", "c"]), io.StringIO()
    summary = run_rounds(plan(rounds=2, count=Count("all"), dry_run=True), target.candidates, target.kill,
                         threading.Event(), out, random.Random(0))
    assert target.killed == []
    assert summary["killed"] == 0 and summary["would_kill"] == 6
    assert out.getvalue().count(" would-kill ") == 6


def test_run_rounds_counts_empty_rounds_and_kill_outcomes():
    target = ListTarget(["a", "b"], results=[KILLED, GONE, FAILED, KILLED])
    summary = run_rounds(plan(rounds=2, count=Count("all")), target.candidates, target.kill, threading.Event(),
                         io.StringIO(), random.Random(0))
    assert (summary["killed"], summary["gone"], summary["failed"]) == (2, 1, 1)
    empty = ListTarget([])
    out = io.StringIO()
    summary = run_rounds(plan(rounds=2), empty.candidates, empty.kill, threading.Event(), out, random.Random(0))
    assert summary["empty_rounds"] == 2 and summary["killed"] == 0
    assert out.getvalue().count(" no-candidates ") == 2


def test_run_rounds_stops_with_the_error_when_the_target_aborts():
    def candidates():
        raise Abort("403 Forbidden")

    out = io.StringIO()
    summary = run_rounds(plan(rounds=5), candidates, lambda v: KILLED, threading.Event(), out, random.Random(0))
    assert summary["stopped_by"] == "error" and summary["error"] == "403 Forbidden" and summary["rounds"] == 1
    assert ' error target=test round=1 reason="403 Forbidden"' in out.getvalue()


def test_the_plan_says_what_will_happen():
    text = plan(rounds=4, interval=15, count=Count("percent", 50)).announce()
    assert text.startswith("chaos test: will kill 50% of test victims every 15s, 4 round(s)")
    assert "DRY RUN, would kill 1 of" in plan(dry_run=True).announce()
    assert "until stopped" in plan().announce() and "for 60s" in plan(duration=60).announce()
