"""The talk's load and chaos as every substrate runs them, and `python -m lab demo`'s input checks
(no process is started here)."""

import pytest

from lab.cli.main import main
from lab.experiments import demo
from lab.workloads.topology import LabInputError


@pytest.mark.parametrize("seconds, interval", [(120, 15), (45, 15), (30, 10), (20, 7.5), (16, 7.5), (8, 7.5)])
def test_chaos_interval_is_the_talks_or_scaled_to_short_runs(seconds, interval):
    assert demo.chaos_interval(seconds) == pytest.approx(interval)


def test_every_allowed_duration_sees_a_kill():
    assert demo.chaos_interval(demo.MIN_SECONDS) <= demo.MIN_SECONDS


@pytest.mark.parametrize("text", ["abc", "0", "-3", "7", "100000", "", "nan"])
def test_bad_demo_seconds_are_refused_naming_the_variable(text):
    with pytest.raises(LabInputError, match="DEMO_SECONDS"):
        demo.parse_seconds(text)


def test_the_notes_say_when_the_chaos_interval_is_scaled_down():
    assert "scaled down" in demo.load_notes(20, "SIGKILL")[1]
    assert "scaled down" not in demo.load_notes(120, "SIGTERM")[1] and "SIGTERM" in demo.load_notes(120, "SIGTERM")[1]


def test_demo_refuses_bad_seconds_before_starting_anything(tmp_path, capsys):
    assert main(["demo", "--seconds", "abc", "--out", str(tmp_path)]) == 2
    assert "DEMO_SECONDS" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option", ["--cases", "--scenarios"])
def test_an_unknown_case_exits_2_with_one_line_listing_the_cases(tmp_path, capsys, option):
    assert main(["demo", option, "redis-2,nosuch", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'nosuch'" in err and "chaos-redis-2-retries" in err
    assert not any(tmp_path.iterdir())


def test_list_prints_the_cases_of_a_group(capsys):
    assert main(["demo", "--cases", "istio", "--list"]) == 0
    assert capsys.readouterr().out.split() == ["chaos-redis-2", "chaos-redis-2-retries"]


def test_a_bad_substrate_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--substrate", "moon"])
    assert exit_.value.code == 2 and "--substrate" in capsys.readouterr().err
