"""`python -m lab demo`: the talk's demo cases (lab/experiments/cases.toml) on a substrate, the lab
on loopback or a cluster's kubeconfig context, measured, then printed as the talk's table and
written as results.json plus a report (lab/experiments/runner.py). `demo compare` sets a lab's
results beside a cluster's; `demo docs` writes the walkthroughs of docs/demos/ from the table."""

import argparse
import sys
from pathlib import Path

from lab.experiments import cases, compare, demo, runner, walkthrough
from lab.host.paths import REPO_ROOT
from lab.workloads.topology import LabInputError

SUBSTRATES = ("lab", "cluster")


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help=__doc__.split(": ", 1)[1].split(" (")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cases", "--scenarios", dest="cases", default="all",
                        help=f"comma-separated cases or groups, or all; cases: {', '.join(cases.table().names)}; "
                             f"groups: {', '.join(cases.table().groups)}")
    parser.add_argument("--substrate", default="lab", choices=SUBSTRATES,
                        help="lab: the lab on loopback; cluster: the kubeconfig context --context")
    parser.add_argument("--context", default="", help="the cluster's kubeconfig context (--substrate cluster; "
                                                      "default: the current one)")
    parser.add_argument("--keep", action="store_true", help="leave each case's namespace on the cluster")
    parser.add_argument("--namespace-prefix", default="rl-", help="case NAME runs in namespace PREFIX+NAME (cluster)")
    parser.add_argument("--seconds", default="20", help="load duration of each case (the talk: 120)")
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "demo"), help="report folder")
    parser.add_argument("--signal", default="SIGKILL", choices=["SIGKILL", "SIGTERM"],
                        help="how the lab's chaos tool kills a replica")
    parser.add_argument("--no-screenshots", action="store_true", help="skip the browser's pictures (lab)")
    parser.add_argument("--list", action="store_true", help="print the chosen cases' names and exit")
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", required=False)
    side_by_side = actions.add_parser("compare", help="a lab's and a cluster's results.json side by side, "
                                                      "each fact on both (exit 1 when one misses on either)")
    side_by_side.add_argument("lab_results", type=Path)
    side_by_side.add_argument("cluster_results", type=Path)
    side_by_side.set_defaults(func=run_compare)
    docs = actions.add_parser("docs", help="write docs/demos/ from the case table")
    docs.add_argument("--check", action="store_true", help="only say whether docs/demos/ is up to date (exit 1)")
    docs.set_defaults(func=run_docs)


def substrate_for(args, seconds: float):
    out = Path(args.out)
    if args.substrate == "cluster":
        from lab.experiments.substrates.cluster import ClusterSubstrate
        return ClusterSubstrate(args.context, out / "runs", keep=args.keep, namespace_prefix=args.namespace_prefix,
                                seconds=seconds)
    from lab.experiments.substrates.lab import LabSubstrate
    return LabSubstrate(out / "runs" / "cluster", signal_name=args.signal, seconds=seconds,
                        screenshot_dir=None if args.no_screenshots else out / "screenshots")


def run(args) -> int:
    try:
        chosen = cases.table().select(args.cases)
        seconds = demo.parse_seconds(args.seconds)
    except (cases.UnknownCase, LabInputError) as error:
        print(f"lab demo: {error}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(case.name for case in chosen))
        return 0
    return runner.run(chosen, substrate_for(args, seconds), seconds, Path(args.out))


def run_compare(args) -> int:
    try:
        lab_records, cluster_records = compare.read(args.lab_results), compare.read(args.cluster_results)
    except compare.ResultsError as error:
        print(f"lab demo compare: {error}", file=sys.stderr)
        return 2
    text, agree = compare.side_by_side(lab_records, cluster_records)
    print(text)
    return 0 if agree else 1


def run_docs(args) -> int:
    stale = walkthrough.stale()
    if args.check:
        for path in stale:
            print(f"lab demo docs: {path.relative_to(REPO_ROOT)} differs from the case table: run `make docs-demos`",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in walkthrough.write():
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0
