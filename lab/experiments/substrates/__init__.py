"""Where a demo case runs: the Substrate protocol that lab/experiments/runner.py drives.

Two substrates implement it: `lab` (substrates/lab.py: the lab's Kubernetes, istiod and node on
loopback) and `cluster:<context>` (substrates/cluster.py: Helm installs on a kubeconfig context,
Locust as a Job in the cluster, the chaos tool with its own RBAC). The runner calls, in order:

    substrate.check(cases)        once, before anything changes. Raise CaseInputError (one line) for
                                  input the substrate cannot run: an unknown or unreachable context
                                  (name it and the `make cluster-up` to run), a case whose mesh
                                  profile needs Istio where there is none (say so), a missing tool
                                  (name it and its make target). The runner exits 2.
    substrate.run(case, seconds, workdir, echo)
                                  once per case: install, load (and chaos), measure, remove. Return
                                  one record in results.json's schema (see RECORD_KEYS) with
                                  `substrate` = substrate.name and `phases`. `seconds` is the load's
                                  duration (autoscale: the ramp derives its own); `workdir` is the
                                  case's own folder for logs and summaries; every kubectl/helm
                                  command the substrate runs is passed to `echo` first (the
                                  teaching flow: a reader can repeat each step). Raise
                                  RuntimeError, TimeoutError, OSError or SubprocessError when the
                                  case could not be measured: the runner reports it as failed and
                                  goes on with the next case.
                                  Raise CaseSkipped when this substrate cannot run the case for a
                                  reason that is no failure (the lab without Java for Hazelcast).
    substrate.close()             once, at the end, also after a failure (a finally).

Construction (lab/cli/demo.py): `lab.LabSubstrate(workdir, signal_name, screenshot_dir, seconds)` and
`cluster.ClusterSubstrate(context, workdir)` (context: the kubeconfig context to pin every command
to; the Makefile passes KUBE_CONTEXT or the one `make cluster-up` creates for CLUSTER). Neither
constructor changes anything. Optional attribute `notes: list[str]`: how the load and chaos ran,
listed under the report's title. A cluster substrate puts case NAME in namespace
$DEMO_NS_PREFIX + NAME (default rl-NAME), which `make demo-NAME-clean` removes; KEEP=1 leaves it.

Record phases (epoch seconds): {"baseline": [t0, t1], "fault": [t1, t2], "recovery": [t2, t3]},
see phases(); the SLO judge (lab/experiments/slo.py) accepts any subset.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from lab.experiments.cases import Case

# What every measured session record holds (the lab's results.json schema): the talk's table reads
# these. autoscale records add min_replicas, max_replicas, back_to_min_after_load_s, ... (autoscale.py).
RECORD_KEYS = ("name", "kind", "store", "replicas", "retries", "chaos", "shows", "seconds", "substrate", "phases",
               "users_created", "users_completed", "users_failed", "requests", "failed_requests", "color_changes",
               "p95_ms", "kills", "kill_times_s", "series")
RECOVERY_ALLOWANCE_S = 10.0  # after the last kill, how long a replica takes to be back (restart, boot, readiness)


class CaseInputError(Exception):
    """Bad input found before any change: the runner prints it on one line and exits 2."""


class CaseSkipped(Exception):
    """This substrate cannot run the case here (say why, and how to fix it): reported, not failed."""


class Substrate(Protocol):
    name: str  # "lab" or "cluster:<context>"

    def check(self, cases: list[Case]) -> None: ...

    def run(self, case: Case, seconds: float, workdir: Path, echo: Callable[[str], None]) -> dict: ...

    def close(self) -> None: ...


def phases(start: float, end: float, kills: list[float], allowance: float = RECOVERY_ALLOWANCE_S) -> dict:
    """A run's phases in epoch seconds, from its load's start and end and its kills' epochs:
    baseline = start to the first kill, fault = first kill to the last kill + allowance, recovery =
    the rest. Without kills: baseline = the first third, recovery = the rest. A phase that would
    be empty (the fault lasting to the end) is left out."""
    start, end = round(start, 3), round(max(end, start), 3)
    if not kills:
        third = round(start + (end - start) / 3, 3)
        return {"baseline": [start, third], "recovery": [third, end]}
    first, last = round(min(kills), 3), round(min(max(kills) + allowance, end), 3)
    found = {"baseline": [start, max(start, first)], "fault": [max(start, first), max(start, first, last)]}
    if last < end:
        found["recovery"] = [last, end]
    return found
