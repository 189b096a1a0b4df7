"""The cluster demos (`make demo-*`, scripts/cluster/) without a cluster.

`make -n` renders each demo's commands; the tests parse them and cross-check every chart, values
file, scenario, Locust user class, chaos argument and in-cluster URL against the repo, and render
each Helm step offline (`helm template`) to prove the demo's configuration is one the chart
accepts. Stub kubectl/helm/minikube/kind/istioctl first on PATH record any call, so a test fails
if anything would have reached a cluster. The shell scripts pass shellcheck and `bash -n`, and
their guards (missing tools, missing context, context pinning) are run for real.
"""

import argparse
import ast
import http.client
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from chaos.__main__ import build_parser as chaos_parser
from chaos.core import check_namespace, check_selector, parse_duration
from lab.host.paths import VENV_BIN
from lab.host.procs import LOOPBACK, free_port
from lab.workloads.helm import run_helm

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "cluster"
CLUSTER_TOOLS = ("kubectl", "helm", "minikube", "kind", "istioctl")
GATEWAY_HOST = "istio-ingressgateway.istio-ingress.svc.cluster.local"

DEMOS = ("scale", "hpa", "nonscalable", "redis", "hazelcast", "loadtest", "chaos", "istio", "fault")
ISTIO_DEMOS = {"istio", "fault"}
CHAOS_DEMOS = {"chaos", "istio"}
# Session-store demos balance per request through a plain Service (scripts/cluster/values/).
PER_REQUEST_DEMOS = {"nonscalable", "redis", "hazelcast"}
PER_REQUEST_VALUES = SCRIPTS / "values" / "per-request-balancing.yaml"


@pytest.fixture(scope="module")
def stub_env(tmp_path_factory):
    """Environment for `make`: cluster tools are stubs that log their call and fail, and the
    kubeconfig does not exist, so nothing can reach a cluster."""
    root = tmp_path_factory.mktemp("stubs")
    bin_dir, calls = root / "bin", root / "calls.log"
    bin_dir.mkdir()
    for tool in CLUSTER_TOOLS:
        stub = bin_dir / tool
        stub.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\nexit 97\n')
        stub.chmod(0o755)
    # The demos' own knobs from the caller's environment would change what renders.
    knobs = ("MAKE", "KUBE", "CLUSTER", "DEMO_", "CHAOS_", "KEEP", "PER_REQUEST", "WEBGATOS_", "GATEWAY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(knobs)}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", KUBECONFIG=str(root / "no-such-kubeconfig"),
               HOME=str(root))
    return env, calls


def make(env, *args) -> str:
    result = subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, f"make {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def commands(rendered: str) -> list[list[str]]:
    """The rendered recipe as argument lists, one per command (continuation lines joined)."""
    joined = rendered.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


@dataclass
class Step:
    script: str
    args: list[str]


def script_steps(rendered: str) -> list[Step]:
    """Each scripts/cluster call; under-chaos.sh's wrapped command becomes a step of its own."""
    steps = []
    for argv in commands(rendered):
        script = Path(argv[0])
        assert script.parent == Path("scripts/cluster"), f"a demo command outside scripts/cluster: {argv}"
        if script.name == "under-chaos.sh":
            cut = argv.index("--")
            steps.append(Step(script.name, argv[1:cut]))
            wrapped = argv[cut + 1:]
            assert Path(wrapped[0]).parent == Path("scripts/cluster"), wrapped
            steps.append(Step(Path(wrapped[0]).name, wrapped[1:]))
        else:
            steps.append(Step(script.name, argv[1:]))
    return steps


def split_helm_args(args: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(values files, (--set or --set-json, assignment)) of helm arguments; anything else is refused."""
    files, sets, rest = [], [], list(args)
    while rest:
        flag = rest.pop(0)
        if flag in ("-f", "--values"):
            files.append(rest.pop(0))
        elif flag in ("--set", "--set-json"):
            sets.append((flag, rest.pop(0)))
        else:
            raise AssertionError(f"unexpected helm argument {flag!r} in {args}")
    return files, sets


def has_key_path(values: dict, dotted: str) -> bool:
    node = values
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def overlay_key_paths(overlay: dict, prefix: str = "") -> list[str]:
    """Dotted paths of an overlay's leaves (and of maps that the chart leaves open, such as {})."""
    paths = []
    for key, value in overlay.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths += overlay_key_paths(value, f"{path}.")
        else:
            paths.append(path)
    return paths


@dataclass
class Release:
    namespace: str
    name: str
    chart: str
    manifests: list[dict] = field(default_factory=list)


def helm_template(release: Release, files: list[str], sets: list[tuple[str, str]]) -> list[dict]:
    argv = ["template", release.name, release.chart, "--namespace", release.namespace]
    for values in files:
        argv += ["-f", values]
    for flag, assignment in sets:
        argv += [flag, assignment]
    result = run_helm(*argv, cwd=REPO, timeout=120, check=False)
    assert result.returncode == 0, f"helm {shlex.join(argv)} does not render:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def services(manifests: list[dict]) -> set[str]:
    return {doc["metadata"]["name"] for doc in manifests if doc["kind"] == "Service"}


def locust_user_classes(locustfile: Path) -> set[str]:
    """User classes a Locust file defines or imports (Locust runs the ones the file names)."""
    tree = ast.parse(locustfile.read_text())
    names = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    names |= {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
              for alias in node.names}
    return {name for name in names if name.endswith("User")}


def repo_locust_options() -> dict:
    """The flags loadtests/locustfile.py adds to Locust (its OPTIONS table), each with the function
    that parses its value (from loadtests/loadlogic.py, which imports without Locust)."""
    if str(REPO / "loadtests") not in sys.path:  # its siblings (durations.py), as Locust runs it
        sys.path.append(str(REPO / "loadtests"))
    spec = importlib.util.spec_from_file_location("loadlogic_for_demo_tests", REPO / "loadtests" / "loadlogic.py")
    loadlogic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loadlogic)
    tree = ast.parse((REPO / "loadtests" / "locustfile.py").read_text())
    table = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "OPTIONS" for t in node.targets))
    parsers = {}
    for entry in table.elts:
        flag, parse = entry.elts[0].value, entry.elts[3]
        from_loadlogic = isinstance(parse, ast.Attribute) and getattr(parse.value, "id", None) == "loadlogic"
        parsers[flag] = getattr(loadlogic, parse.attr) if from_loadlogic else str
    return parsers


LOCUST_FLAGS: dict[str, tuple[set[str], dict]] = {}


def locust_flags(locustfile: str) -> tuple[set[str], dict]:
    """Every flag Locust accepts with this file: Locust's own (`locust --help`) and, when the file
    is or imports loadtests/locustfile.py, the options that file adds (with their value parsers)."""
    if locustfile not in LOCUST_FLAGS:
        result = subprocess.run([str(VENV_BIN / "locust"), "--help"], cwd=REPO, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        flags = set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", result.stdout))
        source = (REPO / locustfile).read_text()
        parsers = {}
        if Path(locustfile) == Path("loadtests/locustfile.py") or re.search(r"^import locustfile$", source, re.M):
            parsers = repo_locust_options()
        LOCUST_FLAGS[locustfile] = flags | set(parsers), parsers
    return LOCUST_FLAGS[locustfile]


def check_locust_args(args: list[str]) -> str:
    """The Locust command line of a load step is one this repo's Locust accepts; returns --host."""
    assert args[0] == "-f", f"the Locust file comes first: {args}"
    locustfile = args[1]
    assert (REPO / locustfile).is_file(), f"no Locust file {locustfile}"
    flags, parsers = locust_flags(locustfile)
    host, rest, classes = None, args[2:], []
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            classes.append(arg)
            continue
        assert arg in flags, f"locust -f {locustfile} has no option {arg}"
        if arg != "--headless":
            value = rest.pop(0)
            if arg == "--host":
                host = value
            if arg in parsers:
                try:
                    parsers[arg](value)
                except argparse.ArgumentTypeError as error:
                    raise AssertionError(f"{arg} {value}: {error}") from None
    unknown = set(classes) - locust_user_classes(REPO / locustfile)
    assert not unknown, f"{locustfile} has no user class {sorted(unknown)}"
    assert host, "a load step names its --host"
    return host


def url_host(url: str) -> str:
    match = re.fullmatch(r"http://([^/:]+)(?::\d+)?(/.*)?", url)
    assert match, f"not an in-cluster http URL: {url}"
    return match.group(1)


def check_in_cluster_url(url: str, namespace: str, releases: dict, istio_namespaces: set[str]):
    """The URL names a Service that the demo's own release renders, or Istio's ingress gateway
    (then the namespace has sidecar injection and the release the Istio resources)."""
    host = url_host(url)
    if host == GATEWAY_HOST:
        assert namespace in istio_namespaces, f"{url}: the gateway is used from a namespace without Istio"
        release = releases[namespace]
        kinds = {doc["kind"] for doc in release.manifests}
        assert {"Gateway", "VirtualService"} <= kinds, f"{url}: the release renders no Gateway/VirtualService"
        return
    service, svc_namespace, *rest = host.split(".")
    assert rest == ["svc", "cluster", "local"], f"{url}: not a Service's cluster DNS name"
    assert svc_namespace == namespace, f"{url}: another namespace than the demo's ({namespace})"
    assert namespace in releases, f"{url}: probed before any release in {namespace}"
    assert service in services(releases[namespace].manifests), (
        f"{url}: the release renders no Service {service!r} (it has {sorted(services(releases[namespace].manifests))})")


def selector_matches(selector: str, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in (part.split("=", 1) for part in selector.split(",")))


def test_help_lists_every_demo_with_a_description(stub_env):
    env, calls = stub_env
    help_text = re.sub(r"\x1b\[[0-9;]*m", "", make(env, "help"))
    described = dict(re.findall(r"^\s+([a-zA-Z0-9_-]+)\s+(\S.*)$", help_text, flags=re.MULTILINE))
    expected = ["cluster-up", "cluster-down", "cluster-images", "istio-install", "istio-uninstall"]
    expected += [f"demo-{demo}" for demo in DEMOS] + [f"demo-{demo}-clean" for demo in DEMOS]
    missing = [target for target in expected if not described.get(target, "").strip()]
    assert not missing, f"make help lacks a description for {missing}"
    assert not calls.exists()


@pytest.mark.parametrize("demo", DEMOS)
def test_demo_renders_and_references_what_exists(stub_env, demo):
    env, calls = stub_env
    steps = script_steps(make(env, "-n", f"demo-{demo}"))
    for step in steps:
        assert (SCRIPTS / step.script).is_file() and os.access(SCRIPTS / step.script, os.X_OK), step.script

    first = steps[0]
    assert first.script == "preflight.sh", "a demo checks its tools and context before anything else"
    tools = set(first.args)
    assert {"kubectl", "helm"} <= tools
    if demo in ISTIO_DEMOS:
        assert "istioctl" in tools
    if demo in CHAOS_DEMOS:
        assert "python" in tools

    namespaces: set[str] = set()
    istio_namespaces: set[str] = set()
    releases: dict[str, Release] = {}
    loads: list[str] = []
    seen = {step.script for step in steps}
    for step in steps[1:]:
        if step.script == "namespace.sh":
            namespace, *flags = step.args
            assert namespace == f"rl-{demo}" and set(flags) <= {"--istio"}
            namespaces.add(namespace)
            if flags:
                istio_namespaces.add(namespace)
        elif step.script == "release.sh":
            namespace, name, chart, *helm_args = step.args
            assert namespace in namespaces, f"release into {namespace} before namespace.sh created it"
            assert (REPO / chart / "Chart.yaml").is_file(), f"no chart at {chart}"
            files, sets = split_helm_args(helm_args)
            chart_values = yaml.safe_load((REPO / chart / "values.yaml").read_text())
            for values_file in files:
                assert (REPO / values_file).is_file(), f"no values file {values_file}"
                overlay = yaml.safe_load((REPO / values_file).read_text()) or {}
                for path in overlay_key_paths(overlay):
                    assert has_key_path(chart_values, path), f"{values_file}: {path} is not a value of {chart}"
                if overlay.get("istio", {}).get("enabled"):
                    assert namespace in istio_namespaces, f"{values_file} needs Istio: namespace.sh --istio"
            for _, assignment in sets:
                key = assignment.split("=", 1)[0]
                assert has_key_path(chart_values, key), f"--set {key}: not a value of {chart}"
            release = Release(namespace, name, chart)
            release.manifests = helm_template(release, files, sets)
            releases[namespace] = release
        elif step.script == "probe.sh":
            namespace, url, count, *flags = step.args
            assert int(count) > 0 and set(flags) <= {"--session"}
            if flags:
                assert url.endswith("/api/session"), "a session probe reads the color from /api/session"
            check_in_cluster_url(url, namespace, releases, istio_namespaces)
        elif step.script == "loadtest.sh":
            cut = step.args.index("--")
            namespace, name, *flags = step.args[:cut]
            assert re.fullmatch(r"[a-z0-9-]+", name), name
            assert set(flags) <= {"--expect-fail"}
            host = check_locust_args(step.args[cut + 1:])
            check_in_cluster_url(host, namespace, releases, istio_namespaces)
            loads.append(name)
        elif step.script == "under-chaos.sh":
            args = chaos_parser().parse_args(["k8s", *step.args])
            namespace = check_namespace(args.namespace)
            selector = check_selector(args.selector)
            assert parse_duration(args.interval, "--interval") > 0
            assert namespace in releases, "chaos before the release it attacks"
            pod_labels = [doc["spec"]["template"]["metadata"]["labels"] for doc in releases[namespace].manifests
                          if doc["kind"] in ("Deployment", "StatefulSet")]
            victims = [labels for labels in pod_labels if selector_matches(selector, labels)]
            assert len(victims) == 1, f"--selector {selector} must pick exactly the webgatos pods: {pod_labels}"
            assert victims[0].get("app.kubernetes.io/component") == "web", f"--selector {selector} picks {victims[0]}"
        elif step.script == "in-context.sh":
            assert step.args[0] == "istioctl" and demo in ISTIO_DEMOS, step.args
        elif step.script == "watch-hpa.sh":
            namespace, seconds, *_ = step.args
            assert int(seconds) > 0
            kinds = {doc["kind"] for doc in releases[namespace].manifests}
            assert "HorizontalPodAutoscaler" in kinds, "watching an HPA that the release does not render"
        elif step.script != "cleanup.sh":
            raise AssertionError(f"unexpected step {step}")

    if demo in PER_REQUEST_DEMOS:
        web = next(doc for doc in releases[f"rl-{demo}"].manifests
                   if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "webgatos")
        containers = web["spec"]["template"]["spec"]["containers"]
        web_env = {e["name"]: e.get("value") for container in containers for e in container.get("env", [])}
        assert web_env.get("GUNICORN_CMD_ARGS") == "--keep-alive 0", "the Locust check needs per-request balancing"

    assert steps[-1] == Step("cleanup.sh", [f"rl-{demo}"]), "a demo ends by removing its namespace"
    assert {"release.sh"} <= seen
    uses_istioctl = any(step.script == "in-context.sh" and step.args[0] == "istioctl" for step in steps)
    assert ("istioctl" in tools) == uses_istioctl, "preflight checks istioctl exactly when the demo runs it"
    assert ("python" in tools) == ("under-chaos.sh" in seen), "preflight checks .venv exactly when chaos runs"
    assert len(loads) == len(set(loads)), f"two load steps would share a report directory: {loads}"
    clean_steps = script_steps(make(env, "-n", f"demo-{demo}-clean"))
    assert clean_steps == [Step("cleanup.sh", [f"rl-{demo}"])]
    assert not calls.exists(), f"make -n called a cluster tool: {calls.read_text()}"


def test_keep_leaves_the_namespace(stub_env):
    env, _ = stub_env
    rendered = make(env, "-n", "demo-scale", "KEEP=1")
    assert "cleanup.sh" not in rendered and "make demo-scale-clean" in rendered


@pytest.mark.parametrize("target", ["cluster-up", "cluster-down", "cluster-images", "istio-install",
                                    "istio-uninstall"])
def test_cluster_targets_render_without_a_cluster(stub_env, target):
    env, calls = stub_env
    for argv in commands(make(env, "-n", target, "CLUSTER=kind")):
        assert (REPO / argv[0]).is_file(), argv
    assert not calls.exists()


def test_per_request_overlay_makes_gunicorn_close_every_connection(procs):
    """The premise of the session-store demos, with the real app under gunicorn: with the overlay's
    environment every response closes its connection (so the next request is balanced afresh);
    without it the connection is kept for the next request."""
    overlay = yaml.safe_load(PER_REQUEST_VALUES.read_text())
    overlay_env = {item["name"]: item["value"] for item in overlay["extraEnv"]}
    conf = REPO / "services" / "webgatos" / "gunicorn.conf.py"
    base = {"SESSION_STORE": "memory", "SECRET_KEY": "test-secret-key", "SHUTDOWN_DRAIN_SECONDS": "0"}

    def connection_after_one_request(port: int) -> tuple[str | None, bool]:
        """(the response's Connection header, whether the connection is still open after it)."""
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        try:
            connection.request("GET", "/api/session")
            response = connection.getresponse()
            response.read()
            return response.getheader("Connection"), connection.sock is not None
        finally:
            connection.close()

    closing_port, keeping_port = free_port(), free_port()
    procs.gunicorn("webgatos:create_app()", closing_port, {**base, **overlay_env}, name="per-request", config=conf)
    procs.gunicorn("webgatos:create_app()", keeping_port, base, name="keep-alive", config=conf)
    assert connection_after_one_request(closing_port) == ("close", False)
    assert connection_after_one_request(keeping_port) == ("keep-alive", True)


@pytest.mark.parametrize("k8s_version", ["1.30", kubernetes_validate.utils.major_minor(
    kubernetes_validate.utils.latest_version())])
def test_load_test_job_is_valid_and_passes_locust_its_arguments(k8s_version):
    """The Job loadtest.sh would apply (printed, no cluster): strictly valid for the oldest and newest
    Kubernetes the charts support, hardened, no sidecar, and Locust gets exactly the demo's arguments
    with the repo paths mapped to the ConfigMap mount."""
    locust_args = ["-f", "loadtests/arrival.py", "--headless", "--host", 'http://svc/"quoted" $HOME\\x',
                   "--arrival-rate", "10"]
    result = run_script("loadtest.sh", "rl-demo", "some-name", "--", *locust_args,
                        env=dict(os.environ, LOADTEST_PRINT_JOB="1"))
    assert result.returncode == 0, result.stderr
    job = yaml.safe_load(result.stdout)
    kubernetes_validate.validate(job, k8s_version, strict=True)
    assert job["metadata"]["name"] == "loadtest-some-name"
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    container = pod["spec"]["containers"][0]
    assert container["args"] == ["-f", "/loadtests/arrival.py", *locust_args[2:]]
    pinned = re.search(r"^locust==(\S+)$", (REPO / "requirements-dev.txt").read_text(), re.MULTILINE).group(1)
    assert container["image"] == f"locustio/locust:{pinned}"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert {"name": "loadtests", "mountPath": "/loadtests", "readOnly": True} in container["volumeMounts"]


DEMO_DOCS = sorted((REPO / "docs" / "demos").glob("*.md")) + [REPO / "docs" / "verification.md"]
# A repo path in the docs; not a GitHub reference such as istio/istio#13705.
REPO_PATH = re.compile(r"(?<![\w./-])((?:charts|istio|loadtests|scripts|chaos|services|lab|tests|docs)/[\w./-]*[\w/])"
                       r"(?![\w./#-])")


def test_walkthroughs_name_only_targets_and_files_that_exist(stub_env):
    env, _ = stub_env
    help_text = re.sub(r"\x1b\[[0-9;]*m", "", make(env, "help"))
    targets = set(re.findall(r"^\s+([a-zA-Z0-9_-]+)\s", help_text, flags=re.MULTILINE))
    walkthroughs = {path.stem for path in DEMO_DOCS}
    for demo in DEMOS:
        assert demo in walkthroughs, f"docs/demos/{demo}.md is missing"
    for doc in DEMO_DOCS:
        text = doc.read_text()
        for target in re.findall(r"\bmake ([a-z][a-zA-Z0-9-]*)", text):
            if target != target.lower() or target.endswith("-"):
                continue  # a placeholder such as demo-NAME or demo-*
            assert target in targets, f"{doc.name}: `make {target}` is not a target"
        for path in REPO_PATH.findall(text):
            assert (REPO / path).exists(), f"{doc.name}: {path} does not exist"
        for link in re.findall(r"\]\(([^)#:]+\.md)\)", text):
            assert (doc.parent / link).is_file(), f"{doc.name}: broken link {link}"


def shell_scripts() -> list[Path]:
    return sorted(SCRIPTS.glob("*.sh"))


def test_shell_scripts_pass_bash_n_and_shellcheck():
    scripts = shell_scripts()
    assert len(scripts) >= 10
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"bash -n {script.name}: {result.stderr}"
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck not installed: run `make shellcheck`")
        pytest.skip("shellcheck not installed: run `make shellcheck`")
    result = subprocess.run([shellcheck, "--external-sources", *map(str, scripts)], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


KUBECONFIG = """\
apiVersion: v1
kind: Config
current-context: production
clusters:
- {name: production, cluster: {server: "https://192.0.2.1:6443"}}
- {name: lab, cluster: {server: "https://192.0.2.2:6443"}}
contexts:
- {name: production, context: {cluster: production, user: someone}}
- {name: resilience-lab, context: {cluster: lab, user: someone}}
users:
- {name: someone, user: {token: not-a-secret}}
"""


def run_script(name: str, *args: str, env: dict, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPTS / name), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def kube_env(tmp_path):
    """A kubeconfig whose current context is someone's production cluster (never contacted)."""
    config = tmp_path / "kubeconfig"
    config.write_text(KUBECONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "CLUSTER", "MAKE"))}
    env.update(KUBECONFIG="kubeconfig", HOME=str(tmp_path), TMPDIR=str(tmp_path))
    return env, tmp_path


def require_kubectl():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed (the context guard reads the kubeconfig with it)")


def test_commands_are_pinned_to_the_demo_context_not_the_current_one(kube_env):
    require_kubectl()
    env, tmp_path = kube_env
    show = 'kubectl config current-context; kubectl config get-contexts -o name; echo "$KUBECONFIG"'
    result = run_script("in-context.sh", "sh", "-c", show, env=env | {"CLUSTER": "minikube"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    current, contexts, pinned = result.stdout.splitlines()[0], result.stdout.splitlines()[1:-1], \
        result.stdout.splitlines()[-1]
    assert current == "resilience-lab" and contexts == ["resilience-lab"]
    assert Path(pinned).is_absolute() and not Path(pinned).exists(), "the pinned kubeconfig is removed on exit"

    named = run_script("in-context.sh", "kubectl", "config", "current-context",
                       env=env | {"KUBE_CONTEXT": "production"}, cwd=tmp_path)
    assert named.stdout.strip() == "production", "a context the user names is used"


@pytest.mark.parametrize("cluster, context", [("kind", "kind-resilience-lab"), ("minikube", "resilience-lab")])
def test_a_missing_context_stops_with_what_to_run(kube_env, cluster, context):
    require_kubectl()
    env, tmp_path = kube_env
    env = env | {"CLUSTER": cluster, "CLUSTER_NAME": "other" if cluster == "minikube" else "resilience-lab"}
    expected = context if cluster == "kind" else "other"
    result = run_script("preflight.sh", "kubectl", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert f"kube context '{expected}' not found" in result.stderr
    assert f"make cluster-up CLUSTER={cluster}" in result.stderr


def test_missing_tools_are_all_named_with_how_to_get_them(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mktemp", "grep", "rm"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    result = run_script("preflight.sh", "kubectl", "minikube", "istioctl", env=env)
    assert result.returncode == 1
    for tool in ("kubectl", "minikube", "istioctl"):
        assert re.search(rf"^missing: {tool} \(.+\)$", result.stderr, flags=re.MULTILINE), result.stderr


def test_helm_is_the_one_on_path_else_the_pinned_copy(tmp_path):
    pinned = REPO / ".cache" / "bin" / "helm"
    if not pinned.is_file():
        pytest.skip("no pinned Helm in .cache/bin: run `make helm`")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))

    def helm_bin() -> subprocess.CompletedProcess:
        return subprocess.run([shutil.which("bash"), "-c", f'source "{SCRIPTS / "lib.sh"}"; helm_bin'],
                              env={"PATH": str(bin_dir)}, capture_output=True, text=True, timeout=30)

    without = helm_bin()
    assert without.stdout.strip() == str(pinned), without.stderr
    users_helm = bin_dir / "helm"
    users_helm.write_text("#!/bin/sh\n")
    users_helm.chmod(0o755)
    with_users = helm_bin()
    assert with_users.stdout.strip() == str(users_helm), with_users.stderr


def test_an_unknown_cluster_kind_is_refused(tmp_path):
    result = run_script("cluster-up.sh", env=dict(os.environ, CLUSTER="k3d", HOME=str(tmp_path)))
    assert result.returncode == 1 and "CLUSTER must be minikube, kind or host, not 'k3d'" in result.stderr


def test_gateway_nodeport_is_the_one_kind_publishes():
    gateway = yaml.safe_load((REPO / "istio" / "install" / "gateway-values.yaml").read_text())
    kind = yaml.safe_load((SCRIPTS / "kind-config.yaml").read_text())
    http = next(port for port in gateway["service"]["ports"] if port["name"] == "http2")
    published = [m["containerPort"] for node in kind["nodes"] for m in node.get("extraPortMappings", [])]
    assert http["nodePort"] in published
    assert all(m["listenAddress"] == "127.0.0.1" for node in kind["nodes"] for m in node["extraPortMappings"])
    assert {"status-port", "http2", "https"} <= {port["name"] for port in gateway["service"]["ports"]}


def test_istio_is_pinned_and_its_values_files_parse():
    settings = dict(line.split("=", 1) for line in (REPO / "istio" / "install" / "istio.env").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert re.fullmatch(r"\d+\.\d+\.\d+", settings["ISTIO_VERSION"])
    for name in ("base", "istiod", "gateway"):
        assert isinstance(yaml.safe_load((REPO / "istio" / "install" / f"{name}-values.yaml").read_text()), dict)
    istio_sh = (SCRIPTS / "istio.sh").read_text()
    for chart, values in (("base", "base"), ("istiod", "istiod"), ("gateway", "gateway")):
        assert re.search(rf"chart \S+ {chart} \S+ \"\$VALUES/{values}-values.yaml\"", istio_sh), chart
    # The chart derives the pod label istio=<release without "istio-">; webgatos's Gateway selects it.
    webgatos = yaml.safe_load((REPO / "charts" / "webgatos" / "values.yaml").read_text())
    assert re.search(r"chart istio-ingressgateway gateway istio-ingress ", istio_sh)
    assert webgatos["istio"]["gateway"]["selector"] == {"istio": "ingressgateway"}
