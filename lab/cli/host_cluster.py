"""`python -m lab host-cluster up|down|status|load-images`: the host cluster's command line
(`make cluster-up CLUSTER=host` and friends). `up` starts a detached supervisor (`serve`) that owns
every process of the cluster and tears it all down on SIGTERM, so the cluster outlives the make
command; `down` stops that supervisor and sweeps what a killed one left."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.host.procs import ProcessGroup
from lab.kube.hostcluster import host, preflight
from lab.kube.hostcluster.cluster import HostCluster
from lab.kube.hostcluster.kube_context import add_context, remove_context
from lab.kube.hostcluster.layout import DEFAULT_STATE_ROOT, Layout
from lab.kube.hostcluster.runtime import IMAGE_ARCHIVES, Containerd, image_archives
from lab.kube.hostcluster.supervisor import daemon_pid, ready_info

UP_TIMEOUT = 600.0
DOWN_TIMEOUT = 120.0


# Commands

def up(args) -> int:
    layout = Layout(args.name, Path(args.state_root))
    preflight.check_root()
    if daemon_pid(layout) and ready_info(layout):
        info = ready_info(layout)
        print(f"host cluster {layout.name} is running; reusing it (context {layout.context}, {info['server']})")
        add_context(info, layout)
        return 0
    layout.logs.mkdir(parents=True, exist_ok=True)
    with ProcessGroup(layout.logs) as group:
        leftovers = HostCluster(layout, group).sweep()
    if leftovers:
        print(f"host cluster: cleaned up after an earlier run: {', '.join(leftovers[:8])}")
    preflight.check_all()
    layout.ready_file.unlink(missing_ok=True)
    log_path = layout.logs / "supervisor.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "lab", "host-cluster", "serve", "--name", args.name, "--state-root",
             args.state_root, "--images", args.images], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT)
    layout.daemon_pid.write_text(str(daemon.pid))
    deadline = time.monotonic() + args.timeout
    printed = 0
    while time.monotonic() < deadline:
        lines = log_path.read_text(errors="replace").splitlines()
        for line in lines[printed:]:
            print(line, flush=True)
        printed = len(lines)
        if ready_info(layout):
            break
        if daemon.poll() is not None:
            errors = [line for line in lines if line.startswith("error:")]
            print(f"host-cluster up: {errors[-1][7:] if errors else f'the supervisor exited {daemon.returncode}'}"
                  f" (log: {log_path})", file=sys.stderr)
            return 1
        time.sleep(0.2)
    else:
        daemon.send_signal(signal.SIGTERM)
        print(f"host-cluster up: not ready after {args.timeout:.0f}s; stopping it (log: {log_path})", file=sys.stderr)
        return 1
    info = ready_info(layout)
    add_context(info, layout)
    print(f"host cluster {layout.name} ready: context {layout.context}, API server {info['server']}, "
          f"node {info['node']}, kubeconfig {info['kubeconfig']}")
    return 0


def serve(args) -> int:
    layout = Layout(args.name, Path(args.state_root))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for old in layout.logs.glob("*.log"):
        if old.name != "supervisor.log":
            old.unlink()
    with ProcessGroup(layout.logs) as group:
        cluster = HostCluster(layout, group, log=lambda line: print(line, flush=True))
        try:
            cluster.start(image_archives(Path(args.images)))
        except (preflight.PreflightError, host.HostError, binaries.MissingBinary, RuntimeError, TimeoutError) as error:
            print(f"error: {str(error).splitlines()[0]}", flush=True)
            print(str(error), flush=True)
            return 1
        layout.ready_file.write_text(json.dumps(cluster.describe(), indent=1))
        print(f"host cluster: ready ({', '.join(f'{k} {v}s' for k, v in cluster.timings.items())})", flush=True)
        while not stop.wait(1.0):
            pass
        layout.ready_file.unlink(missing_ok=True)
        print(f"host cluster: stopped; restored {', '.join(cluster.stop()) or 'nothing left'}", flush=True)
    return 0


def down(args) -> int:
    layout = Layout(args.name, Path(args.state_root))
    preflight.check_root()
    pid = daemon_pid(layout)
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + DOWN_TIMEOUT
        while daemon_pid(layout) and time.monotonic() < deadline:
            time.sleep(0.2)
        if daemon_pid(layout):
            os.kill(pid, signal.SIGKILL)
    with ProcessGroup(layout.logs) as group:
        leftovers = HostCluster(layout, group).sweep()
    layout.ready_file.unlink(missing_ok=True)
    layout.daemon_pid.unlink(missing_ok=True)
    remove_context(layout)
    print(f"host cluster {layout.name}: {'stopped' if pid else 'was not running'}"
          f"{'; cleaned up ' + ', '.join(leftovers) if leftovers else ''}")
    return 0


def status(args) -> int:
    layout = Layout(args.name, Path(args.state_root))
    info = ready_info(layout) if daemon_pid(layout) else None
    if not info:
        print(f"host cluster {layout.name}: not running")
        return 1
    print(json.dumps(info, indent=1))
    return 0


def load_images(args) -> int:
    layout = Layout(args.name, Path(args.state_root))
    if not (daemon_pid(layout) and ready_info(layout)):
        print(f"host-cluster load-images: host cluster {layout.name} is not running: make cluster-up CLUSTER=host",
              file=sys.stderr)
        return 1
    archives = image_archives(Path(args.images))
    if not archives:
        print(f"host-cluster load-images: no image archives in {args.images}: run `make images`", file=sys.stderr)
        return 1
    added = Containerd(layout, None).import_archives(archives)
    print(f"imported {len(archives)} archives into the node's containerd; new: {', '.join(added) or 'none'}")
    return 0


def one_line_errors(func):
    """A host that cannot run the cluster: one line naming the cause, exit 1."""
    def wrapper(args) -> int:
        try:
            return func(args)
        except (preflight.PreflightError, host.HostError, binaries.MissingBinary) as error:
            print(f"host-cluster {args.verb}: {error}", file=sys.stderr)
            return 1
    return wrapper


def register(subparsers) -> None:
    parser = subparsers.add_parser("host-cluster", help="a one-node Kubernetes on this machine (root)")
    verbs = parser.add_subparsers(dest="verb", required=True)
    for name, func, help_text in (("up", up, "create the cluster, or reuse the running one"),
                                  ("down", down, "stop the cluster and restore the host"),
                                  ("status", status, "print the running cluster's facts"),
                                  ("load-images", load_images, "import `make images`' archives into the node"),
                                  ("serve", serve, "(internal) the supervisor that `up` starts")):
        verb = verbs.add_parser(name, help=help_text)
        verb.add_argument("--name", default=os.environ.get("CLUSTER_NAME", "resilience-lab"))
        verb.add_argument("--state-root", default=str(DEFAULT_STATE_ROOT))
        verb.add_argument("--images", default=str(IMAGE_ARCHIVES))
        verb.add_argument("--timeout", type=float, default=UP_TIMEOUT)
        verb.set_defaults(func=one_line_errors(func))
