"""Bad command lines for `python -m chaos` and `python -m lab` (demo, up, bench, serve): whatever else
the arguments hold, a command line with one bad argument exits with code 2 and one line on stderr,
never a traceback, and nothing starts (what would start a process or reach a cluster is replaced by
a tripwire). Hypothesis drives main(argv) in this process; a few real subprocesses prove the exit
code and stderr of the commands as users run them."""

import io
import subprocess
import sys
from contextlib import ExitStack, redirect_stderr, redirect_stdout
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import chaos.__main__ as chaos_cli
import lab.cli.main as lab_cli
from lab.workloads.topology import MAX_REPLICAS
from tests.conftest import REPO_ROOT, fuzz_examples

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests

# Any text an argument can hold (NUL and surrogates aside: the OS cannot pass them), and text that
# no parser accepts: none of the durations, counts, numbers, names or choices starts with "x".
ANY_ARG = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20)
NOT_ANYTHING = ANY_ARG.map(lambda text: "x" + text)
UNKNOWN_FLAG = st.text("abcdefghijklmnopqrstuvwxyz-", max_size=10).map(lambda text: "--zz-" + text)
NOT_AN_INT = st.one_of(NOT_ANYTHING, st.sampled_from(["1.5", "", " ", "1e3", "0x10", "--"]))


def valid_or_any(*valid: str):
    return st.one_of(st.sampled_from(valid), ANY_ARG)


def outside(low: int, high: int):
    return st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1)).map(str)


@st.composite
def command_line(draw, head: list[str], options: dict, poisons: dict, flags: tuple[str, ...] = ()):
    """`head` then some of `options` (each at most once, in any order, `--opt=value` or `--opt value`),
    with one of `poisons` (a bad value, or an unknown flag) among them."""
    chosen = draw(st.lists(st.sampled_from(sorted(options)), unique=True)) if options else []
    values = {name: draw(options[name]) for name in chosen}
    values.update(dict.fromkeys(draw(st.lists(st.sampled_from(flags), unique=True)) if flags else []))
    poison = draw(st.sampled_from(sorted(poisons)))
    if poison == "unknown flag":
        values[draw(UNKNOWN_FLAG)] = None
    else:
        values[poison] = draw(poisons[poison])
    argv = list(head)
    for name in draw(st.permutations(sorted(values))):
        value = values[name]
        if value is None:
            argv.append(name)
        elif draw(st.booleans()):
            argv.append(f"{name}={value}")
        else:
            argv += [name, value]
    return argv


BAD_DURATION = st.one_of(NOT_ANYTHING, st.sampled_from(["0", "-1s", "0ms", "nan", "inf", "-inf", "1e999", "", "15 s",
                                                        "1m-", "1h1", "-"]))
CHAOS_COMMON = {"--interval": valid_or_any("15s", "1m30s", "500ms", "2"),
                "--count": valid_or_any("one", "3", "30%", "all"), "--grace-period": valid_or_any("0", "10"),
                "--seed": valid_or_any("1", "42"), "--summary-json": st.just("/nonexistent/summary.json")}
CHAOS_END = {"--duration": valid_or_any("1m", "30s"), "--rounds": valid_or_any("1", "3")}
CHAOS_POISONS = {
    "--interval": BAD_DURATION, "--duration": BAD_DURATION,
    "--count": st.one_of(NOT_ANYTHING, st.sampled_from(["0", "0%", "101%", "-1", "1.5", "%", "nan%", "two", ""])),
    "--rounds": st.one_of(NOT_AN_INT, st.sampled_from(["0", "-1"])),
    "--grace-period": st.one_of(NOT_AN_INT, st.just("-1")),
    "--seed": NOT_AN_INT, "unknown flag": st.none(),
}
chaos_k8s = command_line(
    ["k8s"], {**CHAOS_COMMON, **CHAOS_END, "--namespace": valid_or_any("demo", "rl-chaos"),
              "--selector": valid_or_any("app=x", "app.kubernetes.io/name=webgatos,tier in (web)"),
              "--deny-namespace": ANY_ARG, "--context": ANY_ARG},
    {**CHAOS_POISONS,
     "--namespace": st.one_of(NOT_ANYTHING.map(str.upper), st.sampled_from(
         ["", " ", "kube-system", "istio-system", "kube-public", "UPPER", "-a", "a-", "a" * 64, "a_b", "a.b"])),
     "--selector": st.one_of(ANY_ARG.map(lambda text: "=" + text), st.sampled_from(
         ["", " ", "app!=x", "!app", "app notin (a)", "=x", "a==", "a in (b", "a,", ",", "a=b=c", "a b"]))},
    flags=("--dry-run",))
chaos_local = command_line(
    ["local"], {**CHAOS_COMMON, **CHAOS_END, "--state": st.just("/nonexistent/replicas.json"),
                "--signal": st.sampled_from(["SIGTERM", "SIGKILL"])},
    {**CHAOS_POISONS, "--signal": NOT_ANYTHING}, flags=("--dry-run",))
chaos_argv = st.one_of(chaos_k8s, chaos_local, st.lists(ANY_ARG, max_size=3).filter(
    lambda argv: not argv or argv[0] not in ("k8s", "local", "-h", "--help") and not argv[0].startswith("--h")))

lab_demo = command_line(
    ["demo"], {"--seconds": valid_or_any("20", "8", "3600"), "--scenarios": valid_or_any("all", "redis-2,memory-2"),
               "--signal": st.sampled_from(["SIGKILL", "SIGTERM"])},
    {"--seconds": st.one_of(NOT_ANYTHING, st.sampled_from(["1", "7.99", "3600.5", "nan", "inf", "-inf", "1e999", "",
                                                           "-20", "0"])),
     "--scenarios": NOT_ANYTHING, "--signal": NOT_ANYTHING, "unknown flag": st.none()},
    flags=("--no-screenshots",))
lab_up = command_line(
    ["up"], {"--store": valid_or_any("memory", "redis"), "--replicas": valid_or_any("1", "2"),
             "--scenario": valid_or_any("retries", "no-retries"), "--port": st.just("0"),
             "--admin-port": st.just("0"), "--restart-delay": valid_or_any("0", "3")},
    {"--store": NOT_ANYTHING, "--replicas": st.one_of(NOT_ANYTHING, outside(1, MAX_REPLICAS)),
     "--scenario": NOT_ANYTHING, "--port": st.one_of(NOT_AN_INT, outside(0, 65535)),
     "--admin-port": st.one_of(NOT_AN_INT, outside(0, 65535)),
     "--restart-delay": st.one_of(NOT_ANYTHING, st.floats(max_value=-0.001).map(str)), "unknown flag": st.none()})
lab_bench = command_line(
    ["bench"], {"--rate": valid_or_any("100"), "--duration": valid_or_any("20"), "--repeats": valid_or_any("3"),
                "--rounds": valid_or_any("10"), "--saturation-seconds": valid_or_any("5"),
                "--concurrency": valid_or_any("8")},
    {"--rate": NOT_AN_INT, "--duration": NOT_ANYTHING, "--repeats": st.one_of(NOT_AN_INT, st.just("0")),
     "--rounds": st.one_of(NOT_AN_INT, st.just("-1")), "--saturation-seconds": st.one_of(NOT_ANYTHING, st.just("0")),
     "--concurrency": NOT_AN_INT,
     "--only": NOT_ANYTHING, "unknown flag": st.none()})
lab_serve = command_line(["serve"], {}, {"--port": st.one_of(NOT_AN_INT, outside(1, 65535)), "unknown flag": st.none()})
lab_argv = st.one_of(lab_demo, lab_up, lab_bench, lab_serve, st.lists(ANY_ARG, max_size=3).filter(
    lambda argv: not argv or argv[0] not in ("demo", "up", "bench", "serve", "envoy", "-h", "--help")
    and not argv[0].startswith("--h")))


def tripwire(what: str):
    return mock.Mock(side_effect=AssertionError(f"{what} started for a command line that must be refused"))


@pytest.fixture(scope="module")
def nothing_starts(tmp_path_factory):
    """Whatever would reach a cluster, read a state file or start a process raises instead."""
    with ExitStack() as stack:
        for target, what in [("chaos.__main__.connect", "a Kubernetes client"),
                             ("chaos.local.LocalTarget", "the local chaos target"),
                             ("lab.cli.up.running", "a lab topology"),
                             ("lab.experiments.runner.run", "a demo case"),
                             ("lab.host.binaries.hazelcast_missing", "the demo"),
                             ("lab.bench.runner.ProcessGroup", "a benchmark"),
                             ("lab.cli.serve.ProcessGroup", "lab serve")]:
            stack.enter_context(mock.patch(target, tripwire(what)))
        yield


def run_main(main, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def assert_refused_in_one_line(code, out: str, err: str) -> None:
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.endswith("\n") and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


@settings(max_examples=fuzz_examples(3))
@given(argv=chaos_argv)
@example(argv=["k8s", "--namespace", "demo", "--selector", "app=x", "--rounds=--"])  # Python 3.11: a [] value
def test_chaos_refuses_bad_arguments_with_exit_2_and_one_line(nothing_starts, argv):
    assert_refused_in_one_line(*run_main(chaos_cli.main, argv))


@settings(max_examples=fuzz_examples(3))
@given(argv=lab_argv)
@example(argv=["serve", "--port=99999"])  # once a traceback from socket.bind
@example(argv=["up", "--admin-port=--"])  # Python 3.11: a [] value that skipped the int check
@example(argv=["demo", "--scenarios", "x\r0"])  # once a line break in the message
def test_lab_refuses_bad_arguments_with_exit_2_and_one_line(nothing_starts, argv):
    assert_refused_in_one_line(*run_main(lab_cli.main, argv))


@pytest.mark.parametrize("argv", [
    ["chaos"],
    ["chaos", "--zz-no-such-flag"],
    ["chaos", "k8s", "--namespace", "demo", "--selector", "app=x", "--interval", "soon"],
    ["chaos", "k8s", "--namespace", "kube-system", "--selector", "app=x"],
    ["chaos", "local", "--state", "/nonexistent/replicas.json", "--rounds", "0"],
    ["lab"],
    ["lab", "demo", "--seconds", "1e999"],
    ["lab", "up", "--replicas", "zero", "--port", "0", "--admin-port", "0"],
    ["lab", "bench", "--rate", "fast"],
    ["lab", "serve", "--port", "99999"],
    ["lab", "serve", "--zz-unknown\nsecond line"],
], ids=lambda argv: " ".join(argv).replace("\n", "\\n"))
def test_the_real_command_exits_2_with_one_line_on_stderr(argv):
    module, *args = argv
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=60)
    assert_refused_in_one_line(result.returncode, result.stdout, result.stderr)
