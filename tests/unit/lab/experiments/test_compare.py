"""A lab's and a cluster's results side by side: both numbers in each cell, each fact as holds on
both / one only / neither with both substrates' numbers, and the exit code `demo compare` gives."""

import json

import pytest

from lab.cli.main import main
from lab.experiments import compare


def rec(name: str, substrate: str, **fields) -> dict:
    base = {"name": name, "substrate": substrate, "store": "redis", "replicas": 2, "retries": False, "chaos": True,
            "kills": 2, "users_created": 200, "users_completed": 200, "requests": 1000, "failed_requests": 0,
            "color_changes": 0, "p95_ms": 20.0}
    return {**base, **fields}


LAB = [rec("chaos-redis-1", "lab", failed_requests=370), rec("chaos-redis-2", "lab", failed_requests=18),
       rec("chaos-redis-2-retries", "lab")]
CLUSTER = [rec("chaos-redis-1", "cluster:host", failed_requests=120),
           rec("chaos-redis-2", "cluster:host", failed_requests=130),
           rec("chaos-redis-2-retries", "cluster:host")]


def test_each_fact_is_said_for_both_substrates_with_both_numbers():
    text, agree = compare.side_by_side(LAB, CLUSTER)
    assert not agree
    assert ("holds on lab only: chaos-redis-2: under chaos, 2 replicas fail fewer requests than 1 "
            "(lab: failed_requests 18 < 370; cluster: failed_requests 130 < 120)") in text
    assert "holds on both: chaos-redis-2-retries: under chaos, 2 replicas with retries and Redis: zero failed" in text
    assert "memory-2" not in text  # ran on neither


def test_the_table_has_both_numbers_per_cell():
    table = compare.table(LAB, CLUSTER).splitlines()
    assert "failed requests (lab | cluster)" in table[0]
    row = next(line for line in table if line.startswith("chaos-redis-1 "))
    assert "370 | 120" in row


@pytest.mark.parametrize(("on_lab", "on_cluster", "words"), [
    (True, True, "holds on both"), (True, False, "holds on lab only"), (False, True, "holds on cluster only"),
    (False, False, "holds on NEITHER"), (True, None, "ran on lab only: holds"),
    (None, False, "ran on cluster only: MISSED"), (None, None, "not run")])
def test_verdicts(on_lab, on_cluster, words):
    assert compare.verdict(on_lab, on_cluster) == words


def test_the_command_exits_0_when_every_fact_holds_on_both_and_2_on_a_bad_file(tmp_path, capsys):
    lab, cluster = tmp_path / "lab.json", tmp_path / "cluster.json"
    lab.write_text(json.dumps(LAB))
    cluster.write_text(json.dumps([dict(r, failed_requests=min(r["failed_requests"], 5)) if r["name"] == "chaos-redis-2"
                                   else r for r in CLUSTER]))
    assert main(["demo", "compare", str(lab), str(cluster)]) == 0
    assert "holds on both: chaos-redis-2:" in capsys.readouterr().out
    assert main(["demo", "compare", str(lab), str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    cluster.write_text('{"not": "a list"}')
    assert main(["demo", "compare", str(lab), str(cluster)]) == 2
