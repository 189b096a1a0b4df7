"""`python -m lab demo`: the talk's experiments on loopback (a topology on the lab's Kubernetes and
Istio, Locust's arrival profile, the chaos tool), measured, then printed as a table and written as
results.json plus a report (lab/experiments/demo.py)."""

import argparse
import contextlib
import sys
from pathlib import Path

from lab.experiments import demo
from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.workloads.topology import LabInputError, TopologySpec


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help=__doc__.split(": ", 1)[1].split(" (")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", default="20", help="load duration of each scenario (the talk: 120)")
    parser.add_argument("--scenarios", default="all",
                        help=f"comma-separated subset of: {', '.join(demo.SCENARIOS)}")
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "demo"), help="report folder")
    parser.add_argument("--signal", default="SIGKILL", choices=["SIGKILL", "SIGTERM"],
                        help="how the chaos tool kills a replica")
    parser.add_argument("--no-screenshots", action="store_true", help="skip the browser's pictures")
    parser.set_defaults(func=run)


def run(args) -> int:
    try:
        seconds = demo.parse_seconds(args.seconds)
        scenarios = demo.parse_scenarios(args.scenarios)
        for scenario in (s for s in scenarios if s.kind == "sessions"):
            with contextlib.suppress(binaries.MissingBinary):  # no Hazelcast: skipped, with a message
                TopologySpec(store=scenario.store, replicas=scenario.replicas,
                             scenario=scenario.mesh_scenario).validate()
    except LabInputError as error:
        print(f"lab demo: {error}", file=sys.stderr)
        return 2
    return demo.run_demo(scenarios, seconds, Path(args.out), args.signal, screenshots=not args.no_screenshots)
