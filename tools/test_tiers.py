"""`make test`: the test tiers side by side. Most of the suite waits on processes and sockets
(63 % of 2 cores), so the real-node tier (tests/cluster/host/: its images, then its cluster) runs
beside everything else instead of after it.

    tools/test_tiers.py [--host auto|on|off] [PYTEST_ARGS...]

Tier `main` is every test but tests/cluster/host, on this terminal as it runs. Tier `host` first
runs `make host-cluster-tools` (the node's packages and `make images`), then its tests; each of
its lines is prefixed `[host]`. `--host auto` runs it where it can run (root on Linux). When both
tiers ran the demo table, the talk's table from the lab and from real Pods is printed side by side.
Exits 1 when either tier fails, and ends with one line counting both.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

from lab.host.paths import REPO_ROOT

HOST_TESTS = "tests/cluster/host"
REPORTS = REPO_ROOT / "test-artifacts"
# The demo table's results from the lab (tests/e2e/test_lab_demo.py, and test_autoscale.py for the
# autoscale case) and from real Pods (tests/cluster/host/test_demo_cases.py), printed side by side
# at the end; the lab's two files are joined into LAB_RESULTS for that.
LAB_PARTS = (REPORTS / "demo-lab" / "results.json", REPORTS / "demo-lab-autoscale" / "results.json")
LAB_RESULTS = REPORTS / "demo-lab-all.json"
CLUSTER_RESULTS = REPORTS / "demo-cluster" / "results.json"


def counts(junit: Path) -> tuple[int, int, int]:
    """passed, failed (failures and errors), skipped of one pytest run's JUnit report."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return 0, 0, 0
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    return total - failed - skipped, failed, skipped


def failures(junit: Path, width: int = 400) -> list[str]:
    """Each failed or erred test of one pytest run's JUnit report, with the start of its message:
    printed last, so the end of a long log still says what failed and why."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return []
    found = []
    for case in root.iter("testcase"):
        for problem in [*case.findall("failure"), *case.findall("error")]:
            message = " ".join((problem.get("message") or problem.text or "").split())
            found.append(f"{case.get('classname')}::{case.get('name')} ({problem.tag}): {message[:width]}")
    return found


def relay(proc: subprocess.Popen, prefix: str) -> None:
    for line in proc.stdout:
        sys.stdout.write(f"{prefix}{line}" if prefix else line)
        sys.stdout.flush()


def host_tier_possible() -> bool:
    return platform.system() == "Linux" and os.geteuid() == 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", choices=["auto", "on", "off"], default="auto")
    args, pytest_args = parser.parse_known_args(argv)
    host = args.host == "on" or (args.host == "auto" and host_tier_possible())
    REPORTS.mkdir(exist_ok=True)
    python = sys.executable
    tiers = {"main": [python, "-m", "pytest", "--ignore", HOST_TESTS, f"--junitxml={REPORTS / 'main.xml'}",
                      *pytest_args]}
    if host:
        tiers["host"] = ["bash", "-c", 'make host-cluster-tools && exec "$0" -m pytest "$@"', python, HOST_TESTS,
                         f"--junitxml={REPORTS / 'host.xml'}", *pytest_args]
    for name in tiers:
        (REPORTS / f"{name}.xml").unlink(missing_ok=True)
    for path in (*LAB_PARTS, LAB_RESULTS, CLUSTER_RESULTS):
        path.unlink(missing_ok=True)
    procs, relays = {}, []
    for name, argv_ in tiers.items():
        procs[name] = subprocess.Popen(argv_, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, stdin=subprocess.DEVNULL)
        thread = threading.Thread(target=relay, args=(procs[name], "" if name == "main" else f"[{name}] "))
        thread.start()
        relays.append(thread)
    codes = {name: proc.wait() for name, proc in procs.items()}
    for thread in relays:
        thread.join()
    passed = failed = skipped = 0
    for name, code in codes.items():
        p, f, s = counts(REPORTS / f"{name}.xml")
        print(f"tier {name}: exit {code}, {p} passed, {f} failed, {s} skipped")
        passed, failed, skipped = passed + p, failed + f, skipped + s
        if code != 0 and f == 0:
            failed += 1  # a tier that failed before or outside its tests (its set-up, a crash) still fails
    lab_parts = [path for path in LAB_PARTS if path.exists()]
    if lab_parts and CLUSTER_RESULTS.exists():
        LAB_RESULTS.write_text(json.dumps([record for path in lab_parts for record in json.loads(path.read_text())],
                                          indent=2) + "\n")
        print("\nThe demo table on both substrates (python -m lab demo compare):", flush=True)
        subprocess.run([python, "-m", "lab", "demo", "compare", str(LAB_RESULTS), str(CLUSTER_RESULTS)],
                       cwd=REPO_ROOT, check=False, timeout=60)
    for name in codes:
        for line in failures(REPORTS / f"{name}.xml"):
            print(f"FAILED [{name}] {line}")
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if any(codes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
