"""The case table (lab/experiments/cases.toml) and its loader: the talk's cases are there, every
fact and hypothesis is well formed, groups keep the old make names, and a bad table is refused
naming the case and the field."""

import re
import tomllib

import pytest

from lab.experiments import cases
from lab.experiments.cases import CaseTableError, Fact, UnknownCase
from lab.experiments.substrates import RECORD_KEYS
from lab.host.paths import REPO_ROOT

TALK_CASES = ["memory-2", "redis-2", "hazelcast-2", "chaos-memory-1", "chaos-memory-2", "chaos-memory-2-retries",
              "chaos-redis-1", "chaos-redis-2", "chaos-redis-2-retries", "autoscale"]
OLD_MAKE_DEMOS = ["scale", "hpa", "nonscalable", "redis", "hazelcast", "loadtest", "chaos", "istio", "fault"]
# What a fact may read: the record keys both substrates write, the autoscaling case's, the derived ones.
METRICS = set(RECORD_KEYS) | {"requests", "min_replicas", "max_replicas", "back_to_min_after_load_s",
                              "time_to_first_scale_up_s", "failed_ratio", "replicas_answered"}


def table_data() -> dict:
    with open(cases.TABLE, "rb") as handle:
        return tomllib.load(handle)


def test_the_table_holds_the_talks_cases_in_order():
    names = cases.table().names
    assert [name for name in names if name in TALK_CASES] == TALK_CASES
    redis_chaos = [(c.replicas, c.retries) for c in cases.load() if c.chaos and c.store == "redis"]
    assert redis_chaos == [(1, False), (2, False), (2, True)]
    assert cases.by_name("chaos-redis-2-retries").lab_mesh == "retries"
    assert cases.by_name("chaos-redis-2").lab_mesh == "no-retries"  # no mesh policy: the lab's gateway, no retries
    assert {c.store for c in cases.load() if c.workload == "sessions" and not c.chaos} >= {"memory", "redis",
                                                                                           "hazelcast"}
    assert [c.name for c in cases.load() if c.workload == "autoscale"] == ["autoscale"]


def test_the_old_make_demos_are_groups_and_no_name_is_twice():
    table = cases.table()
    assert set(OLD_MAKE_DEMOS) <= set(table.groups)
    assert not set(table.groups) & set(table.names)
    for group in table.groups.values():
        assert group.shows and group.cases
    assert "istio" in cases.by_name("chaos-redis-2-retries").groups


def test_every_case_names_what_it_teaches_and_the_facts_it_must_show():
    for case in cases.load():
        assert case.shows and not case.shows.endswith("."), case.name
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", case.name)
        assert case.facts, f"{case.name} checks nothing"
        for fact in case.facts:
            assert fact.metric in METRICS and (not fact.other or fact.other in METRICS), fact


def test_the_talks_facts_are_in_the_table():
    facts = {(f.subject, f.metric, f.op, f.value, f.case) for f in cases.table().facts()}
    assert ("memory-2", "color_changes", ">", 0, "") in facts
    assert ("redis-2", "color_changes", "==", 0, "") in facts
    assert ("hazelcast-2", "color_changes", "==", 0, "") in facts
    assert ("chaos-redis-1", "failed_requests", ">", 0, "") in facts
    assert ("chaos-redis-2", "failed_requests", "<", None, "chaos-redis-1") in facts
    assert ("chaos-redis-2-retries", "failed_requests", "==", 0, "") in facts
    assert ("chaos-redis-2-retries", "color_changes", "==", 0, "") in facts


def test_every_case_has_a_hypothesis_for_the_slo_judge():
    for case in cases.load():
        bounds = case.hypothesis.bounds()
        assert bounds, case.name
        assert set(case.hypothesis.phases) <= set(cases.PHASES)
        assert bounds.get("availability", 1) <= 1
    # A bound broken on purpose is left out: in-memory sessions lose colors.
    assert cases.by_name("memory-2").hypothesis.color_changes is None
    assert cases.by_name("redis-2").hypothesis.color_changes == 0


def test_a_mesh_profile_is_a_file_and_retries_follow_from_it():
    for case in cases.load():
        if case.mesh:
            assert (REPO_ROOT / "istio" / "scenarios" / f"{case.mesh}.yaml").is_file()
    assert [c.name for c in cases.load() if c.retries] == ["chaos-memory-2-retries", "chaos-redis-2-retries",
                                                           "app-faults-retries"]


def test_no_explicit_make_target_shadows_a_case_or_group():
    """`make demo-NAME` must reach the pattern rule for every case and group."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    explicit = set(re.findall(r"^(demo-[a-z0-9-]+):", makefile, flags=re.MULTILINE))
    names = set(cases.table().names) | set(cases.table().groups)
    assert explicit == {"demo-all"}, explicit
    assert "all" not in names
    assert re.search(r"^demo-%: ", makefile, flags=re.MULTILINE) and re.search(r"^demo-%-clean: ", makefile,
                                                                                flags=re.MULTILINE)


def test_selection_by_case_group_and_all_keeps_the_table_order():
    table = cases.table()
    assert [c.name for c in table.select("redis-2, memory-2")] == ["memory-2", "redis-2"]
    assert [c.name for c in table.select("istio,chaos-redis-1")] == ["chaos-redis-1", "chaos-redis-2",
                                                                     "chaos-redis-2-retries"]
    assert len(table.select("all")) == len(table.cases) == len(table.select(""))


def test_an_unknown_name_lists_the_cases_and_groups():
    with pytest.raises(UnknownCase) as raised:
        cases.table().select("redis-2,nosuch")
    message = str(raised.value)
    assert "'nosuch'" in message and "\n" not in message
    assert all(name in message for name in cases.table().names) and "istio" in message


def record(name, **metrics):
    return {"name": name, **metrics}


@pytest.mark.parametrize(("fact", "records", "expected"), [
    (Fact("a", "x", "failed_requests", "==", value=0), {"a": record("a", failed_requests=0)}, True),
    (Fact("a", "x", "failed_requests", "==", value=0), {"a": record("a", failed_requests=1)}, False),
    (Fact("a", "x", "failed_requests", "==", value=0), {}, None),
    (Fact("a", "x", "failed_requests", "<", case="b"),
     {"a": record("a", failed_requests=3), "b": record("b", failed_requests=40)}, True),
    (Fact("a", "x", "failed_requests", "<", case="b"), {"a": record("a", failed_requests=3)}, None),
    (Fact("a", "x", "max_replicas", ">", other="min_replicas"), {"a": record("a", max_replicas=4, min_replicas=1)},
     True),
    (Fact("a", "x", "max_replicas", ">", other="min_replicas"), {"a": record("a", max_replicas=1, min_replicas=1)},
     False),
    (Fact("a", "x", "back", "present"), {"a": record("a", back=42.0)}, True),
    (Fact("a", "x", "back", "present"), {"a": record("a", back=None)}, False),
    (Fact("a", "x", "p95_ms", ">=", value=1000), {"a": record("a", p95_ms=None)}, False),  # not measured
])
def test_a_fact_compares_a_value_another_case_or_another_metric(fact, records, expected):
    assert fact.holds(records) is expected


def minimal(**overrides) -> dict:
    case = {"name": "x-1", "shows": "s", "workload": "sessions", "store": "redis", "replicas": 2, "chaos": False,
            "load": "arrival", "facts": [{"says": "s", "metric": "failed_requests", "op": "==", "value": 0}],
            "hypothesis": {"availability": 0.99}}
    return {"case": [{**case, **overrides}]}


def test_the_minimal_table_parses():
    table = cases.parse(minimal())
    assert table.names == ["x-1"] and table.cases[0].hypothesis.phases == cases.PHASES


@pytest.mark.parametrize(("overrides", "message"), [
    ({"store": "mongo"}, "store 'mongo'"),
    ({"workload": "batch"}, "workload 'batch'"),
    ({"replicas": 0}, "replicas 0"),
    ({"replicas": True}, "replicas True"),
    ({"mesh": "no-such-profile"}, "mesh 'no-such-profile'"),
    ({"chaos": "yes"}, "chaos is true or false"),
    ({"load": "ramp"}, "load 'ramp'"),
    ({"colour": 1}, "unknown keys"),
    ({"name": "Bad Name"}, "case name"),
    ({"facts": [{"says": "s", "metric": "m", "op": "~", "value": 1}]}, "op '~'"),
    ({"facts": [{"says": "s", "metric": "m", "op": "==", "value": 1, "other": "n"}]}, "exactly one of"),
    ({"facts": [{"says": "s", "metric": "m", "op": "<", "case": "nosuch"}]}, "no case 'nosuch'"),
    ({"facts": [{"says": "s", "metric": "m", "op": "==", "value": "1 + 1"}]}, "a number or a boolean"),
    ({"facts": [{"says": "s", "metric": "m", "op": "present", "value": 1}]}, "takes no value"),
    ({"hypothesis": {"availability": 1.5}}, "ratio"),
    ({"hypothesis": {"p95_ms": -1}}, "hypothesis.p95_ms"),
    ({"hypothesis": {"min_replicas": 1.5}}, "hypothesis.min_replicas"),
    ({"hypothesis": {"phases": ["during"]}}, "hypothesis.phases"),
    ({"hypothesis": {"latency": 1}}, "hypothesis keys"),
])
def test_a_bad_case_is_refused_naming_the_field(overrides, message):
    with pytest.raises(CaseTableError, match=re.escape(message)):
        cases.parse(minimal(**overrides))


def test_bad_groups_and_duplicate_names_are_refused():
    twice = minimal()
    twice["case"].append(dict(twice["case"][0]))
    with pytest.raises(CaseTableError, match="twice"):
        cases.parse(twice)
    for groups, message in (({"x-1": {"shows": "s", "cases": ["x-1"]}}, "has a case's name"),
                            ({"g": {"shows": "s", "cases": ["nosuch"]}}, "unknown cases"),
                            ({"g": ["x-1"]}, "a group is")):
        with pytest.raises(CaseTableError, match=message):
            cases.parse({**minimal(), "groups": groups})


def test_the_checked_in_table_parses_as_loaded():
    assert cases.parse(table_data()).names == cases.table().names
