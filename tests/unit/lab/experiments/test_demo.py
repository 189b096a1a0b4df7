"""The demo's matrix and its input checks (no process is started here)."""

import pytest

from lab.experiments import demo as experiment
from lab.workloads.topology import LabInputError


def test_matrix_covers_the_talks_scenarios():
    by_name = {s.name: s for s in experiment.MATRIX}
    sessions = [s for s in experiment.MATRIX if s.kind == "sessions"]
    assert {s.store for s in sessions if not s.chaos} == {"memory", "redis", "hazelcast"}
    assert [s.name for s in experiment.MATRIX if s.kind == "autoscale"] == ["autoscale"]
    trio = [(s.replicas, s.retries) for s in experiment.MATRIX if s.chaos and s.store == "redis"]
    assert trio == [(1, False), (2, False), (2, True)]
    assert by_name["chaos-redis-2-retries"].mesh_scenario == "retries"
    assert by_name["chaos-redis-2"].mesh_scenario == "no-retries"


@pytest.mark.parametrize("seconds, interval", [(120, 15), (45, 15), (30, 10), (20, 7.5), (16, 7.5), (8, 7.5)])
def test_chaos_interval_is_the_talks_or_scaled_to_short_runs(seconds, interval):
    assert experiment.chaos_interval(seconds) == pytest.approx(interval)


def test_every_allowed_duration_sees_a_kill():
    assert experiment.chaos_interval(experiment.MIN_SECONDS) <= experiment.MIN_SECONDS


@pytest.mark.parametrize("text", ["abc", "0", "-3", "7", "100000", "", "nan"])
def test_bad_demo_seconds_are_refused_naming_the_variable(text):
    with pytest.raises(LabInputError, match="DEMO_SECONDS"):
        experiment.parse_seconds(text)


def test_scenario_subset_keeps_the_order_given_and_refuses_unknown_names():
    assert [s.name for s in experiment.parse_scenarios("redis-2, memory-2")] == ["redis-2", "memory-2"]
    assert len(experiment.parse_scenarios("all")) == len(experiment.MATRIX)
    with pytest.raises(LabInputError, match="nosuch"):
        experiment.parse_scenarios("redis-2,nosuch")


def test_demo_refuses_bad_input_before_starting_anything(tmp_path, capsys):
    from lab.cli.main import main
    assert main(["demo", "--seconds", "abc", "--out", str(tmp_path)]) == 2
    assert "DEMO_SECONDS" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
