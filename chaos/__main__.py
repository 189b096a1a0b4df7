"""`python -m chaos k8s|local`: kill pods (Kubernetes) or lab replicas (local) on a schedule.

Exit codes: 0 done (rounds or duration over, or stopped by Ctrl-C/SIGTERM), 1 the target failed
(API error, no state file), 2 refused (bad or unsafe arguments).
"""

import argparse
import contextlib
import random
import signal
import sys
import threading
from pathlib import Path

from chaos.core import (
    DEFAULT_DENY_NAMESPACES,
    FORCE_FLAG,
    Plan,
    Refusal,
    check_namespace,
    check_selector,
    parse_count,
    parse_duration,
    run_rounds,
    write_summary,
)

EXIT_OK, EXIT_FAILED, EXIT_REFUSED = 0, 1, 2


class OneLineErrors(argparse.ArgumentParser):
    """Bad arguments exit 2 with one line on stderr, not argparse's usage block (--help shows it)."""

    def error(self, message: str):
        self.exit(EXIT_REFUSED, f"{self.prog}: error: {' '.join(message.splitlines())} (see --help)\n")

    def _get_values(self, action, arg_strings):
        # Python 3.11 turns `--opt=--` into an empty list that skips the option's type check.
        if arg_strings == ["--"] and action.option_strings and action.nargs is None:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_common(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--interval", default="15s",
                        help="time between rounds: 15s, 1m, 1m30s, 500ms or plain seconds; the first round "
                             "comes after one interval")
    parser.add_argument("--count", default="one",
                        help=f"{what} per round: one, a number (3), a percentage of the candidates (30%%, "
                             f"rounded up) or all")
    parser.add_argument("--grace-period", type=non_negative_int, default=None, metavar="SECONDS",
                        help="0 kills at once (SIGKILL, crash-like); N sends SIGTERM then SIGKILL after N "
                             "seconds; default: like kubectl delete, the victim's own grace period")
    end = parser.add_mutually_exclusive_group()
    end.add_argument("--duration", help="stop after this long (same forms as --interval)")
    end.add_argument("--rounds", type=positive_int, help="stop after this many rounds")
    parser.add_argument("--dry-run", action="store_true", help="list what would be killed; kill nothing")
    parser.add_argument("--seed", type=int, help="seed the victim choice (repeatable runs)")
    parser.add_argument("--summary-json", metavar="PATH",
                        help="also write the summary, every kill included, as JSON to PATH")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="python -m chaos", description=__doc__.splitlines()[0],
                           epilog="Every kill is one log line: TIME RESULT target=... victim=... "
                                  "signal=... round=...; a summary line ends the run.")
    targets = parser.add_subparsers(dest="target", required=True)

    k8s = targets.add_parser("k8s", help="delete pods matching a label selector in one namespace",
                             description="Delete Running pods that match --selector in --namespace, on a schedule.")
    k8s.add_argument("--namespace", "-n", help="the one namespace to act in (required)")
    k8s.add_argument("--selector", "-l", help="label selector of the pods to kill (required), e.g. "
                                              "app.kubernetes.io/name=webgatos")
    add_common(k8s, "pods")
    k8s.add_argument("--deny-namespace", action="append", default=[], metavar="NS",
                     help=f"refuse this namespace too (repeatable; always refused: "
                          f"{', '.join(DEFAULT_DENY_NAMESPACES)})")
    k8s.add_argument(FORCE_FLAG, dest="force", action="store_true",
                     help="allow a denied namespace such as kube-system (do not)")
    k8s.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config, "
                                          "else the in-cluster service account)")
    k8s.add_argument("--context", help="kubeconfig context to use")
    k8s.set_defaults(run=run_k8s)

    local = targets.add_parser("local", help="signal replicas (container processes) of the local lab",
                               description="Signal replicas listed in the lab's replica state file; "
                                           "the lab's node restarts them, as a kubelet restarts a container.")
    local.add_argument("--state", required=True, metavar="PATH",
                       help="the replica state file `make lab-up` prints")
    add_common(local, "replicas")
    local.add_argument("--signal", choices=["SIGTERM", "SIGKILL"],
                       help="shorthand: SIGKILL is --grace-period 0, SIGTERM the default")
    local.set_defaults(run=run_local)
    return parser


def common_settings(args) -> dict:
    return {"interval": parse_duration(args.interval, "--interval"), "count": parse_count(args.count),
            "rounds": args.rounds, "dry_run": args.dry_run,
            "duration": parse_duration(args.duration, "--duration") if args.duration is not None else None}


@contextlib.contextmanager
def stop_on_signals():
    """Ctrl-C and SIGTERM end the run after the current kill, with the summary. The previous
    handlers come back afterwards (main() also runs inside other programs, e.g. the tests)."""
    stop = threading.Event()
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in signums}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def finish(args, summary: dict) -> int:
    if args.summary_json:
        write_summary(args.summary_json, summary)
    return EXIT_FAILED if summary["stopped_by"] == "error" else EXIT_OK


def run_k8s(args, out, stop: threading.Event) -> int:
    from chaos import k8s

    namespace = check_namespace(args.namespace, [*DEFAULT_DENY_NAMESPACES, *args.deny_namespace], args.force)
    selector = check_selector(args.selector)
    settings = common_settings(args)
    grace = ("SIGTERM, the pod's own grace period" if args.grace_period is None
             else "grace period 0s: SIGKILL" if args.grace_period == 0
             else f"SIGTERM, grace period {args.grace_period}s")
    plan = Plan("k8s", f"the Running pods matching {selector!r} in namespace {namespace!r} ({grace})",
                k8s.signal_for(args.grace_period), **settings)
    try:
        target = k8s.KubernetesTarget(connect(args), namespace, selector, args.grace_period, out)
        now = target.candidates(strict=True)
    except ConnectionError as error:
        print(f"chaos k8s: cannot reach the cluster: {error}", file=sys.stderr)
        return EXIT_FAILED
    except k8s.ChaosApiError as error:
        print(f"chaos k8s: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(plan.announce(), file=out, flush=True)
    print(f"chaos k8s: {len(now)} pod(s) match now: {', '.join(v.name for v in now) or 'none'}", file=out, flush=True)
    summary = run_rounds(plan, target.candidates, target.kill, stop, out, random.Random(args.seed))
    summary.update(namespace=namespace, selector=selector, grace_period=args.grace_period, api_errors=target.errors)
    return finish(args, summary)


def connect(args):
    """A CoreV1Api from --kubeconfig/--context, $KUBECONFIG or ~/.kube/config, else in-cluster."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import ENV_KUBECONFIG_PATH_SEPARATOR, KUBE_CONFIG_DEFAULT_LOCATION

    # $KUBECONFIG may list several files; the client merges them.
    default_files = KUBE_CONFIG_DEFAULT_LOCATION.split(ENV_KUBECONFIG_PATH_SEPARATOR)
    try:
        if args.kubeconfig or args.context or any(Path(f).expanduser().is_file() for f in default_files if f):
            config.load_kube_config(config_file=args.kubeconfig, context=args.context)
        else:
            config.load_incluster_config()
    except (ConfigException, OSError) as error:
        raise ConnectionError(f"no usable kubeconfig or in-cluster service account ({error})") from None
    return client.CoreV1Api()


def run_local(args, out, stop: threading.Event) -> int:
    from chaos import local

    if args.signal is not None:
        if args.grace_period is not None:
            raise Refusal("use --signal or --grace-period, not both")
        args.grace_period = 0 if args.signal == "SIGKILL" else None
    settings = common_settings(args)
    target = local.LocalTarget(args.state, args.grace_period, out)
    plan = Plan("local", f"the running replicas in {args.state} ({local.describe_grace(args.grace_period)})",
                local.signal_for(args.grace_period).name, **settings)
    try:
        now = target.candidates()
    except local.Abort as error:
        print(f"chaos local: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(plan.announce(), file=out, flush=True)
    print(f"chaos local: {len(now)} replica(s) running now: {', '.join(v.name for v in now) or 'none'}",
          file=out, flush=True)
    summary = run_rounds(plan, target.candidates, target.kill, stop, out, random.Random(args.seed),
                         on_idle=target.escalate_due)
    if not stop.is_set() and args.grace_period:
        target.finish(timeout=args.grace_period + 1)
    summary.update(state=str(args.state), grace_period=args.grace_period, escalations=target.escalations)
    return finish(args, summary)


def main(argv=None, out=None) -> int:
    out = out or sys.stdout
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with stop_on_signals() as stop:
            return args.run(args, out, stop)
    except Refusal as refusal:
        print(f"chaos {args.target}: refused: {refusal}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
