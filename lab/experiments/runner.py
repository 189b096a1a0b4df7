"""The one runner of the demo cases (`python -m lab demo`, `make demo`, `make demo-<case>`): the
chosen cases of cases.toml, one after the other, on one substrate (substrates/), then the talk's
table, the table's facts checked against the records, results.json and the report.

Exit code: 0 when every case ran (or was skipped with a reason), every fact that could be checked
holds and every steady-state hypothesis Prometheus judged held; 1 when a case failed, a fact did
not hold or a hypothesis was broken or could not be judged (named with its phase and PromQL); 2 for
bad input the substrate found before changing anything."""

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.experiments import cases, report
from lab.experiments.cases import Case
from lab.experiments.substrates import CaseInputError, CaseSkipped, Substrate
from lab.host import binaries

CASE_ERRORS = (RuntimeError, TimeoutError, OSError, subprocess.SubprocessError, binaries.MissingBinary)


def echo(command: str) -> None:
    """The teaching flow: each command a substrate runs, as a reader would type it."""
    print(f"    $ {command}", flush=True)


def clear(out: Path) -> None:
    """What an earlier run left in `out`, so the report shows this run only."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "runs", ignore_errors=True)
    shutil.rmtree(out / "screenshots", ignore_errors=True)
    for name in cases.table().names:
        (out / f"{name}.svg").unlink(missing_ok=True)
        (out / f"{name}-slo.svg").unlink(missing_ok=True)
    for stale in ("results.json", "report.md", "report.html"):
        (out / stale).unlink(missing_ok=True)


def summary_line(record: dict) -> str:
    if record.get("kind") == "autoscale":
        return (f"replicas {record['min_replicas']} -> {record['max_replicas']} (first scale-up "
                f"{record['time_to_first_scale_up_s']} s), back to {record['min_replicas']} "
                f"{record['back_to_min_after_load_s']} s after the load; p95 {record['p95_before_ms']} ms on one "
                f"replica, {record['p95_after_ms']} ms scaled out")
    return (f"users {record['users_completed']}/{record['users_created']} completed, failed requests "
            f"{record['failed_requests']}, color changes {record['color_changes']}")


def run_cases(chosen: Sequence[Case], substrate: Substrate, seconds: float, out: Path,
              say: Callable[[str], None]) -> tuple[list[dict], list[str]]:
    """Each case on `substrate`: the records (skipped and failed ones as {name, store, skipped}),
    and the names of the cases that failed."""
    records, problems = [], []
    for index, case in enumerate(chosen, 1):
        label = f"{index}/{len(chosen)}"
        print(f"[{label}] {case.name}: {case.shows}", flush=True)
        try:
            record = report.derived(substrate.run(case, seconds, out / "runs" / case.name, say))
        except CaseSkipped as reason:
            print(f"[{label}] {case.name}: skipped ({reason})", flush=True)
            records.append({"name": case.name, "store": case.store, "skipped": str(reason)})
            continue
        except CASE_ERRORS as error:
            print(f"[{label}] {case.name}: FAILED: {error}", file=sys.stderr, flush=True)
            problems.append(case.name)
            records.append({"name": case.name, "store": case.store, "skipped": f"failed: {error}"})
            continue
        records.append(record)
        print(f"[{label}] {case.name}: {summary_line(record)}", flush=True)
    return records, problems


def run(chosen: Sequence[Case], substrate: Substrate, seconds: float, out: Path,
        say: Callable[[str], None] = echo) -> int:
    """Check, run and report `chosen` on `substrate`; the exit code (module docstring)."""
    try:
        try:
            substrate.check(list(chosen))
        except CaseInputError as error:
            print(f"lab demo: {error}", file=sys.stderr)
            return 2
        clear(out)
        notes = list(getattr(substrate, "notes", []))
        print(f"lab demo on {substrate.name}: {len(chosen)} case(s), {seconds:g} s of load each; report in {out}/",
              flush=True)
        for note in notes:
            print(f"  {note}", flush=True)
        records, problems = run_cases(chosen, substrate, seconds, out, say)
    finally:
        substrate.close()
    ran = [r for r in records if not r.get("skipped")]
    skipped = [r for r in records if r.get("skipped")]
    paths = report.write(ran, out, seconds=seconds, notes=notes, skipped=skipped, substrate=substrate.name)
    print("\n" + report.table(ran) + "\n", flush=True)
    names = {case.name for case in chosen}
    broken = []
    for fact, ok in report.fact_results(ran):
        if fact.subject in names:
            numbers = report.measured(fact, ran)
            print(f"  {report.mark(ok)}: {fact.subject}: {fact.says}" + (f" ({numbers})" if numbers else ""))
            if ok is False:
                broken.append(f"{fact.subject}: {fact.says}")
    unheld = []
    for name, verdict, misses in report.slo_verdicts(ran):
        print(f"  steady state of {name}: {verdict}")
        for miss in misses:
            print(f"    {miss}")
        if verdict != "held":
            unheld.append(f"{name} ({verdict})")
    print(f"\nresults: {paths['results']}\nreport:  {paths['markdown']} and {paths['html']}", flush=True)
    if problems:
        print(f"lab demo: {len(problems)} case(s) failed: {', '.join(problems)}", file=sys.stderr)
    if broken:
        print(f"lab demo: {len(broken)} fact(s) did not hold on {substrate.name}: {'; '.join(broken)}",
              file=sys.stderr)
    if unheld:
        print(f"lab demo: {len(unheld)} steady-state hypothesis(es) not held on {substrate.name}: "
              f"{', '.join(unheld)}", file=sys.stderr)
    return 1 if problems or broken or unheld else 0
