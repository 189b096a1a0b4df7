"""The substrate protocol's shared parts: the phases of a run, and the lab substrate's checks
before anything starts (no process is started here)."""

import pytest

from lab.experiments import cases
from lab.experiments.cases import Case
from lab.experiments.substrates import RECOVERY_ALLOWANCE_S, CaseInputError, phases
from lab.experiments.substrates.lab import LabSubstrate


def test_a_run_without_kills_is_a_baseline_third_and_a_recovery():
    assert phases(100.0, 130.0, []) == {"baseline": [100.0, 110.0], "recovery": [110.0, 130.0]}


def test_kills_make_the_fault_phase_with_the_recovery_allowance():
    found = phases(100.0, 160.0, [115.0, 130.0])
    assert found == {"baseline": [100.0, 115.0], "fault": [115.0, 130.0 + RECOVERY_ALLOWANCE_S],
                     "recovery": [130.0 + RECOVERY_ALLOWANCE_S, 160.0]}


def test_a_fault_lasting_to_the_end_leaves_no_recovery_and_phases_never_run_backwards():
    found = phases(100.0, 120.0, [108.0, 116.0])
    assert found == {"baseline": [100.0, 108.0], "fault": [108.0, 120.0]}
    for start, end in found.values():
        assert start <= end


def test_the_lab_refuses_a_case_it_cannot_install_before_anything_starts(tmp_path):
    bad = Case(name="x", shows="s", workload="sessions", store="mongo", replicas=2, mesh="", chaos=False,
               load="arrival")
    substrate = LabSubstrate(tmp_path / "cluster")
    with pytest.raises(CaseInputError, match="case x: unknown store 'mongo'"):
        substrate.check([cases.by_name("redis-2"), bad])
    substrate.close()
    assert not any(tmp_path.iterdir())


def test_the_lab_states_its_name_and_how_load_and_chaos_run(tmp_path):
    substrate = LabSubstrate(tmp_path, seconds=120, signal_name="SIGTERM")
    substrate.check(cases.load())
    assert substrate.name == "lab"
    assert any("SIGTERM to a random replica every 15 s" in note for note in substrate.notes)
