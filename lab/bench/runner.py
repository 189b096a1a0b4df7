"""The benchmark's report: the sections it runs (SECTIONS; each gets a BenchContext and returns
its Markdown), the header that says on what machine, and the report under reports/bench/. To add a benchmark,
write such a function and append it to SECTIONS. Figures are measured, never assumed: a section
that cannot run (e.g. no Java for Hazelcast) says why instead of printing numbers."""

import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from lab.bench.lab_recovery import lab_kill_recovery
from lab.bench.measure import BenchContext, Section
from lab.bench.per_request import webgatos_per_request
from lab.bench.services import sqrt_cpu, store_round_trips, worker_models
from lab.bench.tracing import tracing_overhead
from lab.host.paths import REPO_ROOT
from lab.host.procs import ProcessGroup

DEFAULT_OUTPUT = REPO_ROOT / "reports" / "bench" / "benchmarks.md"
SECTIONS: list[Section] = [webgatos_per_request, store_round_trips, worker_models, sqrt_cpu, tracing_overhead,
                           lab_kill_recovery]


def run_sections(args, sections: list[Section], vegeta: str) -> int:
    """Run `sections` with the options of `python -m lab bench` (lab/cli/bench.py); write or print
    the report."""
    command = " ".join(["python -m lab bench", *sys.argv[2:]]) if sys.argv[1:2] == ["bench"] else "make bench"
    parts = [header(command, vegeta)]
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for section in sections:
            with ProcessGroup(Path(tmp) / section.__name__) as group:
                context = BenchContext(procs=group, vegeta=vegeta, concurrency=args.concurrency, rounds=args.rounds,
                                       saturation_seconds=args.saturation_seconds, rate=args.rate,
                                       duration=args.duration, repeats=args.repeats, starts=args.starts)
                print(f"bench: {section.__name__} ...", flush=True)
                parts.append(section(context))
    report = "\n\n".join(part.strip() for part in parts) + "\n"
    output = args.output or (None if args.only else DEFAULT_OUTPUT)
    if output is None:
        print(report)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report)
    print(f"bench: wrote {output}")
    return 0


def header(command: str, vegeta: str) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"""# Benchmarks

Written by `{command}`; `make bench` regenerates it (overwriting this file). Figures are
from one run on the machine below, everything on loopback. The machine is shared with other
jobs (see the load average), so expect noise, mostly in the tail latencies.

| | |
|---|---|
| date (UTC) | {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} |
| machine | {cpu}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM |
| system | {platform.system()} {platform.release()}, Python {platform.python_version()} |
| load average at start (1/5/15 min) | {load} |
| load generator | {vegeta_version(vegeta)}, constant rate, keep-alive connections |

Each section states its method; the targets are next to the figures they judge."""


def vegeta_version(vegeta: str) -> str:
    """The module version `go install` recorded in the binary (vegeta -version is empty then)."""
    go = shutil.which("go")
    if go:
        try:
            out = subprocess.run([go, "version", "-m", vegeta], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        for line in out.splitlines():
            fields = line.split()
            if fields[:1] == ["mod"] and len(fields) >= 3:
                return f"{fields[1]} {fields[2]}"
    return "version unknown"
