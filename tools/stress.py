"""`make test-stress`: the end-to-end (lab) tests, RUNS times over, with every core kept busy by a
CPU hog, and the pass rate of each test. A test that does not pass every run is flaky, and a
flaky test is a failing test.

    tools/stress.py --runs 5 --out reports/stress tests/e2e   # STRESS_TESTS in the Makefile

Each run is a fresh `pytest` (its own control plane, its own stores); the hogs are one busy loop
per core at normal priority, started before the first run and killed after the last one, whatever
happened. Writes reports/stress/results.md (and .json) and exits 1 unless every test passed
every run.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from lab.host.paths import REPO_ROOT

HOG = "while True: pass"


@contextlib.contextmanager
def cpu_hogs(count: int):
    hogs = [subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True) for _ in range(count)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(hog.pid, signal.SIGKILL)
            hog.wait()


def outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed | failed | error | skipped, from one pytest junit report."""
    results = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        results[name] = ("failed" if "failure" in kinds else "error" if "error" in kinds
                         else "skipped" if "skipped" in kinds else "passed")
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "stress")
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 1, help="busy loops (default: one per core)")
    parser.add_argument("paths", nargs="*", default=["tests/e2e"])
    args = parser.parse_args(argv)
    if args.runs < 1 or args.hogs < 0:
        parser.error("--runs must be at least 1 and --hogs not negative")
    args.out.mkdir(parents=True, exist_ok=True)
    runs, loads = [], []
    started = time.monotonic()
    with cpu_hogs(args.hogs):
        for run in range(1, args.runs + 1):
            junit = args.out / f"run-{run}.xml"
            begin = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                     f"--junitxml={junit}", *args.paths], cwd=REPO_ROOT)
            loads.append(os.getloadavg()[0])
            runs.append(outcomes(junit) if junit.exists() else {})
            print(f"stress: run {run}/{args.runs}: pytest exited {result.returncode} in "
                  f"{time.monotonic() - begin:.0f} s, load average {loads[-1]:.1f}", flush=True)
    tally: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for results in runs:
        for name, outcome in results.items():
            tally[name][outcome] += 1
    flaky = {name: dict(counts) for name, counts in tally.items() if counts.get("passed", 0) != args.runs
             and counts.get("skipped", 0) != args.runs}
    summary = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
               "runs": args.runs, "hogs": args.hogs, "paths": args.paths, "tests": len(tally),
               "minutes": round((time.monotonic() - started) / 60, 1), "load_average_after_runs": loads,
               "all_passed_every_run": not flaky, "not_every_run": flaky}
    (args.out / "results.json").write_text(json.dumps(summary, indent=1) + "\n")
    lines = [f"# Stress: {args.runs} runs with {args.hogs} CPU hog(s), {summary['date']}", "",
             f"{len(tally)} tests ({', '.join(args.paths)}) on {summary['machine']}, {summary['minutes']} min; "
             f"load average after each run: {', '.join(f'{x:.1f}' for x in loads)}.", ""]
    if flaky:
        lines += ["| test | passed | failed | error | skipped |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {c.get('passed', 0)} | {c.get('failed', 0)} | {c.get('error', 0)} | "
                  f"{c.get('skipped', 0)} |" for name, c in sorted(flaky.items())]
    else:
        lines.append(f"Every test passed {args.runs}/{args.runs}.")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if not flaky else 1


if __name__ == "__main__":
    sys.exit(main())
