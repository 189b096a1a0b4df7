"""The demo cases as data: lab/experiments/cases.toml, loaded and checked here.

One `[[case]]` per case (what it shows, the workload and store, the replicas, the mesh profile,
chaos, the load shape, the facts it must show, its steady-state hypothesis) and one `[groups]`
table naming sets of cases (the cluster demos' old make names: `make demo-istio`). Both
substrates (substrates/) and the docs (walkthrough.py) read this table; nothing else holds a
copy of it. A bad table raises CaseTableError naming the case and the field.
"""

import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lab.workloads.topology import load_scenario, scenario_names

TABLE = Path(__file__).with_name("cases.toml")

WORKLOADS = {"sessions": "webgatos", "autoscale": "sqrt"}  # workload -> the chart it installs
STORES = ("memory", "redis", "hazelcast", "-")
LOADS = ("arrival", "ramp")  # the talk's arrival profile (loadtests/arrival.py), the HPA's ramp (loadtests/ramp.py)
PHASES = ("baseline", "fault", "recovery")
OPS = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
       "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
PRESENT = "present"  # the metric was measured (not None)
CASE_KEYS = {"name", "shows", "workload", "store", "replicas", "mesh", "chaos", "load", "values", "facts",
             "hypothesis"}
FACT_KEYS = {"says", "metric", "op", "value", "case", "other"}
HYPOTHESIS_BOUNDS = {"availability": float, "p95_ms": float, "color_changes": int, "min_replicas": int}


class CaseTableError(ValueError):
    """The table itself is wrong (a developer's mistake, found by the unit tests)."""


@dataclass(frozen=True)
class Fact:
    """`metric` of case `subject`, compared by `op` with a constant (`value`), with the same metric
    of another case (`case`), or with another metric of the same record (`other`)."""
    subject: str
    says: str
    metric: str
    op: str
    value: float | int | bool | None = None
    case: str = ""
    other: str = ""

    @property
    def cases(self) -> tuple[str, ...]:
        """The cases whose records this fact reads."""
        return (self.subject, self.case) if self.case else (self.subject,)

    def operands(self, records: dict[str, dict]) -> tuple | None:
        """(left, right) from `records` by case name; None when a case it needs did not run."""
        if any(name not in records for name in self.cases):
            return None
        left = records[self.subject].get(self.metric)
        if self.op == PRESENT:
            return left, None
        if self.case:
            return left, records[self.case].get(self.metric)
        if self.other:
            return left, records[self.subject].get(self.other)
        return left, self.value

    def holds(self, records: dict[str, dict]) -> bool | None:
        """True or False from the records; None when a case it needs did not run."""
        operands = self.operands(records)
        if operands is None:
            return None
        left, right = operands
        if self.op == PRESENT:
            return left is not None
        if left is None or right is None:
            return False
        return bool(OPS[self.op](left, right))

    def compared(self) -> str:
        """What the fact compares, in words: `failed_requests < chaos-redis-1's`."""
        if self.op == PRESENT:
            return f"{self.metric} measured"
        right = f"{self.case}'s" if self.case else self.other or _literal(self.value)
        return f"{self.metric} {self.op} {right}"


@dataclass(frozen=True)
class Hypothesis:
    """The steady state Prometheus judges per phase (lab/experiments/slo.py); None: no bound."""
    availability: float | None = None  # min ratio of non-5xx responses at the entry point
    p95_ms: float | None = None  # max p95 latency
    color_changes: int | None = None  # max color changes (webgatos' own counter)
    min_replicas: int | None = None  # min ready replicas
    phases: tuple[str, ...] = PHASES  # which phases each bound applies to

    def bounds(self) -> dict[str, float | int]:
        return {key: getattr(self, key) for key in HYPOTHESIS_BOUNDS if getattr(self, key) is not None}


@dataclass(frozen=True)
class Case:
    name: str
    shows: str
    workload: str  # "sessions" (webgatos) or "autoscale" (sqrt and its HPA)
    store: str
    replicas: int
    mesh: str  # "" (no mesh policy) or an istio/scenarios/<mesh>.yaml profile
    chaos: bool
    load: str
    values: dict = field(default_factory=dict)  # more chart values, e.g. {"faults": {"errorRate": 0.3}}
    facts: tuple[Fact, ...] = ()
    hypothesis: Hypothesis = Hypothesis()
    groups: tuple[str, ...] = ()  # the groups that name this case

    @property
    def chart(self) -> str:
        return WORKLOADS[self.workload]

    @property
    def retries(self) -> bool:
        """The mesh profile turns the gateway's retries on."""
        if not self.mesh:
            return False
        retries = load_scenario(self.mesh).get("istio", {}).get("virtualService", {}).get("retries", {})
        return bool(retries.get("enabled"))

    @property
    def lab_mesh(self) -> str:
        """The profile the lab's gateway runs: the lab always routes through istiod's gateway, so
        "no mesh policy" is its gateway without retries."""
        return self.mesh or "no-retries"


@dataclass(frozen=True)
class Group:
    """A name for a set of cases (`make demo-istio`), with what the set shows."""
    name: str
    shows: str
    cases: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    cases: tuple[Case, ...]
    groups: dict[str, Group]

    @property
    def names(self) -> list[str]:
        return [case.name for case in self.cases]

    def by_name(self, name: str) -> Case:
        return next(case for case in self.cases if case.name == name)

    def facts(self) -> list[Fact]:
        return [fact for case in self.cases for fact in case.facts]

    def select(self, text: str) -> list[Case]:
        """Cases by a comma-separated list of case and group names, or "all" (in table order).
        Raises UnknownCase listing the choices."""
        wanted: set[str] = set()
        words = [word.strip() for word in text.split(",") if word.strip()] or ["all"]
        unknown = []
        for word in words:
            if word == "all":
                wanted.update(self.names)
            elif word in self.groups:
                wanted.update(self.groups[word].cases)
            elif word in self.names:
                wanted.add(word)
            else:
                unknown.append(word)
        if unknown:
            raise UnknownCase(f"unknown case(s) {', '.join(map(repr, unknown))}: choose from "
                              f"{', '.join(self.names)}; groups: {', '.join(self.groups)}; or all")
        return [case for case in self.cases if case.name in wanted]


class UnknownCase(ValueError):
    """A user named a case or group the table does not have (exit 2)."""


def _literal(value) -> str:
    return str(value).lower() if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)


def _fact(subject: str, raw: dict, names: set[str]) -> Fact:
    where = f"case {subject!r}, fact {raw.get('says', raw)!r}"
    if not isinstance(raw, dict) or set(raw) - FACT_KEYS or not {"says", "metric", "op"} <= set(raw):
        raise CaseTableError(f"{where}: a fact is {{says, metric, op, value|case|other}}")
    operands = [key for key in ("value", "case", "other") if key in raw]
    if raw["op"] == PRESENT:
        if operands:
            raise CaseTableError(f"{where}: op {PRESENT!r} takes no value, case or other")
    elif raw["op"] not in OPS:
        raise CaseTableError(f"{where}: op {raw['op']!r}: one of {', '.join(OPS)}, {PRESENT}")
    elif len(operands) != 1:
        raise CaseTableError(f"{where}: exactly one of value, case, other")
    if "case" in raw and raw["case"] not in names:
        raise CaseTableError(f"{where}: no case {raw['case']!r}")
    if "value" in raw and not isinstance(raw["value"], int | float | bool):
        raise CaseTableError(f"{where}: value must be a number or a boolean")
    return Fact(subject=subject, says=raw["says"], metric=raw["metric"], op=raw["op"], value=raw.get("value"),
                case=raw.get("case", ""), other=raw.get("other", ""))


def _hypothesis(name: str, raw: dict) -> Hypothesis:
    unknown = set(raw) - set(HYPOTHESIS_BOUNDS) - {"phases"}
    if unknown:
        raise CaseTableError(f"case {name!r}: hypothesis keys {sorted(unknown)}: "
                             f"choose from {', '.join(HYPOTHESIS_BOUNDS)}, phases")
    for key, kind in HYPOTHESIS_BOUNDS.items():
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or (kind is int and not isinstance(value, int)) or value < 0
                                  or not math.isfinite(value)):
            raise CaseTableError(f"case {name!r}: hypothesis.{key} = {value!r}: a {kind.__name__} >= 0")
    if raw.get("availability") is not None and raw["availability"] > 1:
        raise CaseTableError(f"case {name!r}: hypothesis.availability is a ratio (0 to 1)")
    phases = tuple(raw.get("phases", PHASES))
    if not phases or set(phases) - set(PHASES):
        raise CaseTableError(f"case {name!r}: hypothesis.phases {list(phases)}: a subset of {', '.join(PHASES)}")
    return Hypothesis(availability=raw.get("availability"), p95_ms=raw.get("p95_ms"),
                      color_changes=raw.get("color_changes"), min_replicas=raw.get("min_replicas"), phases=phases)


def _case(raw: dict, names: set[str], groups: dict[str, Group]) -> Case:
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("-", "").isalnum() or name != name.lower():
        raise CaseTableError(f"case name {name!r}: lower-case letters, digits and dashes (a make target)")
    if set(raw) - CASE_KEYS:
        raise CaseTableError(f"case {name!r}: unknown keys {sorted(set(raw) - CASE_KEYS)}")
    missing = {"shows", "workload", "store", "replicas", "chaos", "load"} - set(raw)
    if missing:
        raise CaseTableError(f"case {name!r}: missing {sorted(missing)}")
    if raw["workload"] not in WORKLOADS:
        raise CaseTableError(f"case {name!r}: workload {raw['workload']!r}: one of {', '.join(WORKLOADS)}")
    if raw["store"] not in STORES or (raw["store"] == "-") != (raw["workload"] == "autoscale"):
        raise CaseTableError(f"case {name!r}: store {raw['store']!r}: one of {', '.join(STORES[:-1])} "
                             "for sessions, - for autoscale")
    if isinstance(raw["replicas"], bool) or not isinstance(raw["replicas"], int) or not 1 <= raw["replicas"] <= 8:
        raise CaseTableError(f"case {name!r}: replicas {raw['replicas']!r}: 1 to 8")
    mesh = raw.get("mesh", "")
    if mesh and mesh not in scenario_names():
        raise CaseTableError(f"case {name!r}: mesh {mesh!r}: one of istio/scenarios/: {', '.join(scenario_names())}")
    if not isinstance(raw["chaos"], bool):
        raise CaseTableError(f"case {name!r}: chaos is true or false")
    if raw["load"] not in LOADS or (raw["load"] == "ramp") != (raw["workload"] == "autoscale"):
        raise CaseTableError(f"case {name!r}: load {raw['load']!r}: arrival for sessions, ramp for autoscale")
    if not isinstance(raw.get("values", {}), dict):
        raise CaseTableError(f"case {name!r}: values is a table of chart values")
    return Case(name=name, shows=raw["shows"], workload=raw["workload"], store=raw["store"],
                replicas=raw["replicas"], mesh=mesh, chaos=raw["chaos"], load=raw["load"],
                values=raw.get("values", {}), facts=tuple(_fact(name, f, names) for f in raw.get("facts", [])),
                hypothesis=_hypothesis(name, raw.get("hypothesis", {})),
                groups=tuple(group.name for group in groups.values() if name in group.cases))


def parse(data: dict) -> Table:
    """The table from TOML data; raises CaseTableError naming what is wrong."""
    raws = data.get("case", [])
    names = [raw.get("name") for raw in raws]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CaseTableError(f"case names twice: {', '.join(duplicates)}")
    groups = {}
    for group, raw in data.get("groups", {}).items():
        if group in names or group == "all":
            raise CaseTableError(f"group {group!r} has a case's name (or all)")
        if not isinstance(raw, dict) or set(raw) != {"shows", "cases"}:
            raise CaseTableError(f"group {group!r}: a group is {{shows, cases}}")
        if not raw["cases"] or set(raw["cases"]) - set(names):
            raise CaseTableError(f"group {group!r}: unknown cases {sorted(set(raw['cases']) - set(names))}")
        groups[group] = Group(name=group, shows=raw["shows"], cases=tuple(raw["cases"]))
    return Table(cases=tuple(_case(raw, set(names), groups) for raw in raws), groups=groups)


@cache
def table() -> Table:
    with open(TABLE, "rb") as handle:
        return parse(tomllib.load(handle))


def load() -> list[Case]:
    return list(table().cases)


def by_name(name: str) -> Case:
    return table().by_name(name)
