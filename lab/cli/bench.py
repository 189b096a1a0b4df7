"""`python -m lab bench`: measure the services on loopback and write reports/bench/benchmarks.md
(lab/bench/)."""

import argparse
import sys
from pathlib import Path

from lab.bench.runner import DEFAULT_OUTPUT, SECTIONS, run_sections
from lab.host import binaries
from lab.host.paths import REPO_ROOT


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help=__doc__.split(": ", 1)[1].splitlines()[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--output", type=Path, default=None,
                        help=f"Markdown report to write (default: {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}; "
                             "with --only: standard output, so a partial run never replaces the report)")
    parser.add_argument("--rate", type=int, default=100, help="fixed request rate (requests/s) for latency")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of each load run")
    parser.add_argument("--repeats", type=positive(int), default=3,
                        help="fixed-rate runs per server and starts timed (medians shown)")
    parser.add_argument("--rounds", type=positive(int), default=10,
                        help="interleaved saturation rounds of the per-request section (medians shown)")
    parser.add_argument("--saturation-seconds", type=positive(float), default=5.0,
                        help="seconds of each saturation run of the per-request section")
    parser.add_argument("--starts", type=positive(int), default=10,
                        help="timed starts of each server of the per-request section, in rounds (medians shown)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections of the capacity run")
    parser.add_argument("--vegeta", default=None,
                        help="vegeta binary (default: VEGETA_BIN, LAB_ASSETS, .cache/vegeta-*, PATH)")
    parser.add_argument("--only", default=None, help="comma-separated section names to run (default: all)")
    parser.set_defaults(func=run)


def positive(kind: type):
    """An argparse type: a number of `kind` above zero."""
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its "invalid int value" message
    return parse


def run(args) -> int:
    try:
        vegeta = args.vegeta or binaries.vegeta()
    except binaries.MissingBinary as missing:
        print(missing, file=sys.stderr)
        return 2
    sections = SECTIONS
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        unknown = wanted - {section.__name__ for section in SECTIONS}
        if unknown:
            print(f"--only: unknown section(s) {', '.join(map(repr, sorted(unknown)))}; "
                  f"known: {', '.join(s.__name__ for s in SECTIONS)}", file=sys.stderr)
            return 2
        sections = [section for section in SECTIONS if section.__name__ in wanted]
    return run_sections(args, sections, vegeta)
