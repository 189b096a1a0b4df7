"""docs/demos/ from the case table (`python -m lab demo docs`, `make docs-demos`): an index, one
walkthrough per case and one page per group (the cluster demos' old make names). Nothing here is a
second copy of the matrix: every page is made from cases.toml, and a unit test fails when a
checked-in page differs from what this module makes."""

from pathlib import Path

from lab.experiments import cases
from lab.experiments.cases import Case, Group, Table
from lab.experiments.demo import ARRIVAL_RATE, PAGE_LOADS, TALK_CHAOS_INTERVAL
from lab.host.paths import REPO_ROOT

DOCS = REPO_ROOT / "docs" / "demos"
STAMP = ("<!-- Generated from lab/experiments/cases.toml by `make docs-demos` (python -m lab demo docs): "
         "edit the table, not this page. -->")
BOUND_WORDS = {"availability": ("availability (non-5xx responses at the entry point)", ">="),
               "p95_ms": ("p95 latency, ms", "<="), "color_changes": ("color changes", "<="),
               "min_replicas": ("ready replicas", ">=")}


def mesh_words(case: Case) -> str:
    if case.workload == "autoscale":
        return "none (the lab routes through sqrt's own Gateway; a cluster reaches the Service)"
    if not case.mesh:
        return ("none: on the lab its gateway without retries (`istio/scenarios/no-retries.yaml`), "
                "on a cluster the Service")
    return f"[`istio/scenarios/{case.mesh}.yaml`](../../istio/scenarios/{case.mesh}.yaml) (needs Istio on a cluster)"


def workload_words(case: Case) -> str:
    if case.workload == "autoscale":
        return "sqrt ([`charts/sqrt`](../../charts/sqrt)) and its HorizontalPodAutoscaler"
    return f"webgatos ([`charts/webgatos`](../../charts/webgatos)), sessions in {case.store}"


def load_words(case: Case) -> str:
    if case.load == "ramp":
        return "Locust's ramp of `SqrtUser`s (`loadtests/ramp.py`): up, held, down"
    return (f"the talk's arrival profile (`loadtests/arrival.py`): {ARRIVAL_RATE:g} new users a second for "
            f"`DEMO_SECONDS`, {PAGE_LOADS} page loads each")


def case_page(case: Case, table: Table) -> str:
    values = ", ".join(f"`{key}: {value}`" for key, value in case.values.items())
    rows = [("workload", workload_words(case)), ("replicas", str(case.replicas)), ("mesh", mesh_words(case)),
            ("chaos", f"a replica killed every {TALK_CHAOS_INTERVAL:g} s (shorter runs scale it down)"
             if case.chaos else "none"), ("load", load_words(case))]
    rows += [("chart values", values)] if values else []
    rows += [("groups", ", ".join(f"[{g}]({g}.md)" for g in case.groups))] if case.groups else []
    lines = [f"# {case.name}", "", STAMP, "", f"**Shows**: {case.shows}.", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    lines += ["", "## Run it", "", "```sh",
              f"make demo DEMO_CASES={case.name}        # the lab, on loopback",
              f"make demo-{case.name}                   # a cluster: CLUSTER=minikube|kind|host or KUBE_CONTEXT=...",
              f"make demo-{case.name}-clean             # remove what the cluster run left (KEEP=1 keeps it)",
              "```", "",
              "Each step prints the command it runs. Both write `results.json` and a report naming the substrate "
              "(`reports/demo/`, `reports/demo-NAME/`); `python -m lab demo compare` sets them side by side.",
              "", "## What it must show", ""]
    lines += [f"- {fact.says}: `{fact.compared()}`" for fact in case.facts] or ["- (no fact: it is shown, not checked)"]
    bounds = case.hypothesis.bounds()
    lines += ["", "## Steady-state hypothesis", "",
              f"Judged by Prometheus in the phases {', '.join(case.hypothesis.phases)} "
              "(baseline: before the first kill; fault: the kills and the recovery allowance; recovery: the rest).", ""]
    lines += [f"- {BOUND_WORDS[key][0]} {BOUND_WORDS[key][1]} {value:g}" for key, value in bounds.items()]
    return "\n".join(lines) + "\n"


def group_page(group: Group, table: Table) -> str:
    lines = [f"# demo-{group.name}", "", STAMP, "", f"**Shows**: {group.shows}.", "", "```sh",
             f"make demo-{group.name}          # on a cluster (CLUSTER, KUBE_CONTEXT)",
             f"make demo DEMO_CASES={group.name}  # on the lab", "```", "", "| case | shows |", "|---|---|"]
    lines += [f"| [{name}]({name}.md) | {table.by_name(name).shows} |" for name in group.cases]
    return "\n".join(lines) + "\n"


def index_page(table: Table) -> str:
    lines = ["# The talk's demos: one table, two substrates", "", STAMP, "",
             "Every demo is a case of `lab/experiments/cases.toml`. `make demo` runs them on the lab "
             "([../lab.md](../lab.md)); `make demo-CASE` or `make demo-GROUP` runs them on a cluster (minikube, kind "
             "or the host cluster: [cluster.md](cluster.md)); `make demo-all` runs every case there. Both write "
             "`results.json` and the same report, and check the same facts.", "",
             "| case | shows | store | replicas | mesh | chaos |", "|---|---|---|---|---|---|"]
    lines += [f"| [{c.name}]({c.name}.md) | {c.shows} | {c.store} | {c.replicas} | {c.mesh or '-'} | "
              f"{'yes' if c.chaos else 'no'} |" for c in table.cases]
    lines += ["", "| group (`make demo-GROUP`) | cases | shows |", "|---|---|---|"]
    lines += [f"| [{g.name}]({g.name}.md) | {', '.join(g.cases)} | {g.shows} |" for g in table.groups.values()]
    return "\n".join(lines) + "\n"


def pages(table: Table | None = None) -> dict[Path, str]:
    """Every generated page, by path."""
    table = table or cases.table()
    found = {DOCS / "README.md": index_page(table)}
    found.update({DOCS / f"{case.name}.md": case_page(case, table) for case in table.cases})
    found.update({DOCS / f"{group.name}.md": group_page(group, table) for group in table.groups.values()})
    return found


def stale() -> list[Path]:
    """Generated pages that are missing or differ on disk, and pages left by an earlier table."""
    made = pages()
    differ = [path for path, text in made.items() if not path.exists() or path.read_text() != text]
    leftover = [path for path in sorted(DOCS.glob("*.md")) if path not in made and STAMP in path.read_text()]
    return differ + leftover


def write() -> list[Path]:
    """Write every page; remove generated pages no case or group names any more."""
    made = pages()
    DOCS.mkdir(parents=True, exist_ok=True)
    for path in sorted(DOCS.glob("*.md")):
        if path not in made and STAMP in path.read_text():
            path.unlink()
    for path, text in made.items():
        path.write_text(text)
    return list(made)
