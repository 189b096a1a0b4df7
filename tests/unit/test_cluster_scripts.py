"""The cluster's own steps (scripts/cluster/) without a cluster: the shell scripts pass shellcheck and
`bash -n`, and their guards (missing tools, missing context, context pinning) are run for real;
the per-request overlay and the Locust Job they provide are checked with the real app and the
Kubernetes schemas. The demo cases themselves are data (lab/experiments/cases.toml), tested in
tests/unit/lab/experiments/."""

import http.client
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from lab.host.procs import LOOPBACK, free_port

pytestmark = pytest.mark.processes  # the scripts, the app under gunicorn

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "cluster"
PER_REQUEST_VALUES = SCRIPTS / "values" / "per-request-balancing.yaml"


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


def shell_scripts() -> list[Path]:
    return sorted(SCRIPTS.glob("*.sh"))


def test_shell_scripts_pass_bash_n_and_shellcheck():
    scripts = shell_scripts()
    assert scripts, "scripts/cluster/ holds no shell script"
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
