"""Start-up through the real gunicorn configs: a bad environment variable stops the process with
exit code 2 and one line naming it; good settings come up and serve."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from lab.host.procs import LOOPBACK, free_port, http_status, wait_until
from tests.integration.webgatos_client import SQRT_CONF, WEBGATOS_CONF

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def start(app: str, conf: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    argv = [GUNICORN, "--config", str(conf), "--bind", f"{LOOPBACK}:{free_port()}", *args, app]
    return subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("env", "args", "variable"), [
    ({"SESSION_STORE": "mongodb"}, (), "SESSION_STORE"),
    ({"SESSION_STORE": "redis", "REDIS_URL": "localhost:6379"}, (), "REDIS_URL"),
    ({"SESSION_STORE": "hazelcast", "HAZELCAST_MEMBERS": "hz-0;hz-1"}, (), "HAZELCAST_MEMBERS"),
    ({"SESSION_TTL_SECONDS": "-1"}, (), "SESSION_TTL_SECONDS"),
    ({"FAULT_ERROR_RATE": "half"}, (), "FAULT_ERROR_RATE"),
    ({"PORT": "http"}, (), "PORT"),
    ({"SESSION_STORE": "memory", "WEB_CONCURRENCY": "3"}, (), "WEB_CONCURRENCY"),
    ({"SESSION_STORE": "memory"}, ("--workers", "2"), "WEB_CONCURRENCY=2"),
])
def test_webgatos_bad_environment_stops_start_up_with_one_line(env, args, variable):
    result = start("webgatos:create_app()", WEBGATOS_CONF, env, *args)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("webgatos: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"webgatos: {variable}")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("env", [{"SQRT_MAX_ITERATIONS": "lots"}, {"SHUTDOWN_DRAIN_SECONDS": "-1"}])
def test_sqrt_bad_environment_stops_start_up_with_one_line(env):
    [(variable, _)] = env.items()
    result = start("sqrt:create_app()", SQRT_CONF, env)
    assert result.returncode == 2, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("sqrt: ")] == [
        line for line in result.stderr.splitlines() if line.startswith(f"sqrt: {variable}=")]
    assert "Traceback" not in result.stderr


def test_sqrt_serves_through_gunicorn_and_drains_on_sigterm(procs):
    port = free_port()
    proc = procs.gunicorn("sqrt:create_app()", port, {"SQRT_MAX_ITERATIONS": "5000", "SHUTDOWN_DRAIN_SECONDS": "1"},
                          name="sqrt", config=SQRT_CONF)
    url = f"http://{LOOPBACK}:{port}"
    assert requests.get(url + "/?iterations=5000", timeout=10).text == "OK!"
    too_many = requests.get(url + "/?iterations=5001", timeout=10)
    assert too_many.status_code == 400 and "SQRT_MAX_ITERATIONS" in too_many.text
    metrics = requests.get(url + "/metrics", timeout=10).text
    assert "sqrt_iterations_total 5000.0" in metrics
    proc.signal(signal.SIGTERM)
    wait_until(lambda: http_status(url + "/readyz") == 503, timeout=5, what="sqrt readyz to answer 503")
    wait_until(lambda: not proc.alive(), timeout=30, what="sqrt to exit")
    assert proc.returncode() == 0


@pytest.mark.parametrize(("service", "conf"), [("webgatos", WEBGATOS_CONF), ("sqrt", SQRT_CONF)])
def test_the_images_command_serves_the_app_named_by_the_config(procs, service, conf):
    """The image runs `gunicorn --config /app/gunicorn.conf.py` with no app argument: the config's
    `wsgi_app` names it. As the image has it: services/common and the service's folder on the path."""
    port = free_port()
    path = os.pathsep.join(str(conf.parent.parent / part) for part in ("common", service))
    proc = procs.start(service, [GUNICORN, "--config", str(conf), "--bind", f"{LOOPBACK}:{port}"],
                       env={**os.environ, "PYTHONPATH": path, "SHUTDOWN_DRAIN_SECONDS": "0"},
                       cwd=conf.parent)
    wait_until(lambda: http_status(f"http://{LOOPBACK}:{port}/readyz") == 200, 30, f"{service} to be ready",
               proc=proc)
    assert "http_requests_total" in requests.get(f"http://{LOOPBACK}:{port}/metrics", timeout=5).text
