"""The scripts the `helm test` hooks run, taken from the rendered Pods, against real gunicorn
replicas of the apps behind a real balancer (Envoy, as the Service would be): the session check
passes on a shared store, sees the memory store lose sessions across replicas, and fails with a
reason when nothing answers. The probe paths of the rendered Deployments answer 200."""

import re
import subprocess
import sys

import chartlib
import pytest

from lab.host import balancer
from lab.host.procs import LOOPBACK, free_port, http_status
from tests.conftest import WEBGATOS_GUNICORN_CONF

SCRIPT_TIMEOUT_SECONDS = 60


def hook_pod(scenario: chartlib.Scenario) -> dict:
    return next(doc for doc in chartlib.render(scenario) if chartlib.is_hook(doc))


def hook_command(pod: dict, url: str, **extra_env: str) -> tuple[list[str], dict[str, str]]:
    """The hook container's command and environment, with the local app's URL."""
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["python", "-c"]
    env = {item["name"]: item["value"] for item in container["env"]}
    url_variable = next(name for name in env if name.endswith("_URL"))
    return [sys.executable, "-c", container["args"][0]], {**env, url_variable: url, **extra_env}


def run_hook(pod: dict, url: str, **extra_env: str) -> subprocess.CompletedProcess:
    """Run the hook container's command here, with its environment but the local app's URL."""
    command, env = hook_command(pod, url, **extra_env)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_SECONDS,
                          stdin=subprocess.DEVNULL)


def probe_paths(scenario: chartlib.Scenario) -> list[str]:
    deployment = chartlib.find(chartlib.render(scenario), "Deployment", f"{chartlib.RELEASE}-{scenario.chart}")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return [container[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe", "readinessProbe")]


def behind_a_balancer(procs, tmp_path, urls: list[str]) -> str:
    """Envoy round-robins each request over `urls`, as the Service (with a mesh) would; returns its
    URL once every replica passed its /readyz health check."""
    upstreams = [(LOOPBACK, int(url.rsplit(":", 1)[1])) for url in urls]
    url, _ = balancer.start(procs, tmp_path, upstreams)
    return url


def test_webgatos_session_check_passes_on_a_shared_store_across_replicas(start_webgatos, procs, tmp_path):
    values_file = chartlib.CHARTS_DIR / "webgatos" / "ci" / "redis-values.yaml"
    scenario = chartlib.Scenario("webgatos", "ci/redis-values", (values_file,))
    urls = start_webgatos("redis", replicas=2, SHUTDOWN_DRAIN_SECONDS="0")
    result = run_hook(hook_pod(scenario), behind_a_balancer(procs, tmp_path, urls))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: 6 requests, store redis")
    assert result.stdout.rstrip().endswith("replicas seen: webgatos-0, webgatos-1")
    for path in probe_paths(scenario):
        assert http_status(urls[0] + path, timeout=5) == 200, path


def test_webgatos_session_check_on_memory_replicas_expects_the_color_to_change(start_webgatos, procs, tmp_path):
    values_file = chartlib.CHARTS_DIR / "webgatos" / "ci" / "memory-2-replicas-values.yaml"
    pod = hook_pod(chartlib.Scenario("webgatos", "ci/memory-2-replicas-values", (values_file,)))
    service_url = behind_a_balancer(procs, tmp_path, start_webgatos("memory", replicas=2, SHUTDOWN_DRAIN_SECONDS="0"))
    result = run_hook(pod, service_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "store memory" in result.stdout and "webgatos-0, webgatos-1" in result.stdout
    # The same replicas fail the shared-store check: sessions do not survive a change of replica.
    for item in pod["spec"]["containers"][0]["env"]:
        if item["name"] == "EXPECT_SHARED_SESSIONS":
            item["value"] = "true"
    result = run_hook(pod, service_url)
    assert result.returncode == 1
    # Each Envoy worker alternates between the two replicas, so 6 requests always reach both.
    assert re.match(r"FAIL: request \d lost the session \(store memory\)", result.stdout), result.stdout


def test_webgatos_session_check_retries_the_releases_own_injected_faults(start_webgatos, procs, tmp_path):
    """With faults.errorRate on (a mesh values file whose retries mask them), the hook Pod has no
    sidecar: it retries the app's `Injected fault` answers itself, and only those (seen failing
    on a real node's Pods before it did)."""
    values_file = chartlib.CHARTS_DIR / "webgatos" / "ci" / "istio-retries-values.yaml"
    pod = hook_pod(chartlib.Scenario("webgatos", "ci/istio-retries-values", (values_file,)))
    env = {item["name"]: item["value"] for item in pod["spec"]["containers"][0]["env"]}
    assert env["RETRY_INJECTED_FAULTS"] == "10"
    urls = start_webgatos("redis", replicas=2, SHUTDOWN_DRAIN_SECONDS="0", FAULT_ERROR_RATE="0.5")
    service_url = behind_a_balancer(procs, tmp_path, urls)
    result = run_hook(pod, service_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "injected faults retried" in result.stdout
    # Every answer a fault: the retries run out, and the reason says so.
    (tmp_path / "always").mkdir()
    always = behind_a_balancer(procs, tmp_path / "always", start_webgatos("redis", replicas=1, FAULT_ERROR_RATE="1.0"))
    result = run_hook(pod, always)
    assert result.returncode == 1
    assert "HTTP Error 503" in result.stdout and "(injected, after 10 retries)" in result.stdout, result.stdout


@pytest.mark.processes
@pytest.mark.parametrize("chart", chartlib.CHART_NAMES)
def test_hook_fails_with_a_reason_when_nothing_answers(chart):
    url = f"http://{LOOPBACK}:{free_port()}"
    result = run_hook(hook_pod(chartlib.Scenario(chart, "defaults")), url, SERVICE_WAIT_SECONDS="2")
    assert result.returncode == 1
    assert result.stdout.startswith("FAIL: ") and url in result.stdout


def test_webgatos_session_check_waits_for_a_service_that_answers_late(procs, redis_url, tmp_path):
    """`helm install --wait` returns when the Pods are ready; kube-proxy may program the Service a
    moment later (seen on the host cluster: the first request refused). The check waits for it."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    command, env = hook_command(hook_pod(chartlib.Scenario("webgatos", "defaults")), url)
    with (tmp_path / "hook.log").open("w+") as log:
        hook = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            procs.gunicorn("webgatos:create_app()", port,
                           {"SESSION_STORE": "redis", "REDIS_URL": redis_url, "SECRET_KEY": "test-secret-key",
                            "SHUTDOWN_DRAIN_SECONDS": "0"}, name="webgatos-late", config=WEBGATOS_GUNICORN_CONF)
            returncode = hook.wait(timeout=SCRIPT_TIMEOUT_SECONDS)
        finally:
            hook.kill()
            hook.wait(timeout=10)
        log.seek(0)
        output = log.read()
    assert returncode == 0, output
    assert output.startswith("OK: "), output


def test_sqrt_check_passes_on_the_real_app(procs):
    scenario = chartlib.Scenario("sqrt", "defaults")
    port = free_port()
    procs.gunicorn("sqrt:create_app()", port, {"SQRT_MAX_ITERATIONS": "100000", "SHUTDOWN_DRAIN_SECONDS": "0"},
                   name="sqrt", config=chartlib.REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py")
    url = f"http://{LOOPBACK}:{port}"
    result = run_hook(hook_pod(scenario), url)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in probe_paths(scenario):
        assert http_status(url + path, timeout=5) == 200, path
