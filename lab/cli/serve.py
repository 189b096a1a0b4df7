"""`python -m lab serve`: one webgatos replica with the Redis store on loopback, until Ctrl-C."""

import argparse
import signal
import sys
import tempfile

from lab.host.paths import REPO_ROOT
from lab.host.procs import LOOPBACK, ProcessGroup, free_port, port_in_use

GUNICORN_CONF = REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"


def register(subparsers) -> None:
    parser = subparsers.add_parser("serve", help=__doc__.split(": ", 1)[1],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="port of webgatos on 127.0.0.1")
    parser.set_defaults(func=run)


def run(args) -> int:
    if not 0 < args.port < 65536:
        print(f"lab serve: --port {args.port} is not a port: use 1-65535", file=sys.stderr)
        return 2
    if port_in_use(args.port):
        print(f"port {args.port} on {LOOPBACK} is already in use: pick another with --port", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="webgatos-") as tmp, ProcessGroup(tmp) as group:
        redis_port = free_port()
        group.redis(redis_port)
        group.gunicorn("webgatos:create_app()", args.port,
                       {"SESSION_STORE": "redis", "REDIS_URL": f"redis://{LOOPBACK}:{redis_port}/0",
                        "REPLICA_NAME": "webgatos-0", "SHUTDOWN_DRAIN_SECONDS": "0"},
                       name="webgatos", config=GUNICORN_CONF)
        print(f"webgatos (Redis store) is ready: http://{LOOPBACK}:{args.port}/  (Ctrl-C stops it)", flush=True)
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # after the spawns: children keep defaults
        signal.sigwait(stop_signals)
    return 0
