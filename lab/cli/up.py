"""`python -m lab up`: start a lab topology, with a Prometheus scraping it and a Zipkin its gateway
and replicas report spans to, in the foreground and print their URLs; Ctrl-C stops it."""

import argparse
import math
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from lab.host import binaries
from lab.kube.cluster import LabCluster
from lab.kube.node.lifecycle import DEFAULT_RESTART_DELAY
from lab.observe.exporters import redis_exporter_binary
from lab.observe.lab_targets import watching
from lab.observe.prometheus import Prometheus, prometheus_binary
from lab.observe.zipkin import ZipkinServer, chart_values, register_in_mesh, zipkin_jar
from lab.workloads.helm import deep_merge
from lab.workloads.topology import MAX_REPLICAS, STORES, LabInputError, TopologySpec, running


def register(subparsers) -> None:
    parser = subparsers.add_parser("up", help=__doc__.split(": ", 1)[1],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--store", default="redis", help=f"session store: {', '.join(STORES)}")
    parser.add_argument("--replicas", default="2", help=f"webgatos replicas, 1 to {MAX_REPLICAS}")
    parser.add_argument("--scenario", default="retries", help="mesh scenario (a file in istio/scenarios/)")
    parser.add_argument("--port", type=int, default=8080,
                        help="the ingress gateway's listener on 127.0.0.1 (0: a free one)")
    parser.add_argument("--restart-delay", default=str(DEFAULT_RESTART_DELAY),
                        help="seconds a killed replica's container stays down before the lab's node restarts it")
    parser.set_defaults(func=run)


LAB_UP_CASE = "lab-up"  # the `case` label of every target this command's Prometheus scrapes


def prometheus_lines(url: str, store: str) -> list[str]:
    jobs = "webgatos, gateway, replicas" + (", redis" if store == "redis" else "")
    return [f"Prometheus (UI and query API; jobs {jobs}): {url}/",
            f"  e.g. {url}/graph?g0.expr=sum%20by%20(pod)%20(rate(http_requests_total%5B10s%5D))"]


@contextmanager
def traced(spec: TopologySpec, cluster: LabCluster) -> Iterator[tuple[TopologySpec, ZipkinServer]]:
    """Zipkin on the lab (istiod's `zipkin` provider), and `spec` with the values that trace it."""
    zipkin = ZipkinServer(cluster.group).start()
    try:
        register_in_mesh(cluster.plane, zipkin.port)
        yield replace(spec, values=deep_merge(spec.values, chart_values(zipkin.collector_url))), zipkin
    finally:
        zipkin.stop()


def parse_replicas(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LabInputError(f"bad replica count {text!r}: a whole number from 1 to {MAX_REPLICAS}") from None


def parse_restart_delay(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= 600:  # also refuses nan
        raise LabInputError(f"bad restart delay {text!r}: seconds from 0 to 600")
    return seconds


def run(args) -> int:
    try:
        spec = TopologySpec(store=args.store, replicas=parse_replicas(args.replicas), scenario=args.scenario,
                            port=args.port)
        restart_delay = parse_restart_delay(args.restart_delay)
        spec.validate()
        for program in ("kube-apiserver", "etcd", "pilot-discovery"):
            binaries.control_plane(program)
        prometheus_binary()
        zipkin_jar()
        if spec.store == "redis":
            redis_exporter_binary()
    except (LabInputError, binaries.MissingBinary) as error:
        print(f"lab up: {error}", file=sys.stderr)
        return 2
    # SIGTERM stops the lab as Ctrl-C does: an exception that unwinds the `with` blocks. (Blocking
    # the signals instead would leak the blocked mask into containers the node restarts later.)
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then never
    # installs its Ctrl-C handler.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        with tempfile.TemporaryDirectory(prefix="lab-up-") as tmp, \
                LabCluster(f"{tmp}/cluster", restart_delay=restart_delay) as cluster, \
                traced(spec, cluster) as (spec, zipkin), \
                running(spec, f"{tmp}/topology", cluster) as topology, \
                Prometheus(f"{tmp}/prometheus") as prometheus, \
                watching(prometheus, cluster, topology.release, case=LAB_UP_CASE,
                         redis_url=topology.store_address if spec.store == "redis" else ""):
            print("lab is up:", *topology.describe(), *prometheus_lines(prometheus.url, spec.store),
                  f"Zipkin (traces of the gateway and the replicas): {zipkin.url}/zipkin/",
                  "Ctrl-C stops everything.", sep="\n  ", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                # A second Ctrl-C must not cut the teardown short; nothing is spawned from here on.
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, signal.SIG_IGN)
                print("stopping the lab...", flush=True)
    except KeyboardInterrupt:
        print("interrupted while starting: stopped what had started.", flush=True)
    except (LabInputError, binaries.MissingBinary, RuntimeError, TimeoutError) as error:
        print(f"lab up: {error}", file=sys.stderr)
        return 1
    print("lab is down: every process stopped.", flush=True)
    return 0
