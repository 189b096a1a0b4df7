"""docker-compose.yml and the Envoy bootstraps it mounts: valid for the Compose binary (offline),
the same topology as the local lab, published on loopback only; one bootstrap per mesh scenario,
each accepted by Envoy. That they are what istiod programs: tests/e2e/test_compose_bootstraps.py."""

import json
import os
import subprocess

import pytest

from lab import compose
from lab.host import binaries
from lab.host.paths import REPO_ROOT, VENV_BIN
from lab.workloads.topology import scenario_names

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests

COMPOSE = VENV_BIN / "docker-compose"


def compose_config(*args, **env):
    run_env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "STORE", "SCENARIO")}
    return subprocess.run([str(COMPOSE), "--project-directory", str(REPO_ROOT), "-f",
                           str(REPO_ROOT / "docker-compose.yml"), "config", *args],
                          capture_output=True, text=True, timeout=60, env={**run_env, **env})


def test_compose_file_is_valid():
    result = compose_config("-q", SECRET_KEY="test-only")
    assert result.returncode == 0, result.stderr


def test_compose_refuses_to_start_without_a_secret_key():
    result = compose_config("-q")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_compose_has_the_lab_topology_on_loopback_ports_only():
    result = compose_config("--format", "json", SECRET_KEY="test-only", STORE="hazelcast", SCENARIO="no-retries")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"redis", "hazelcast-0", "hazelcast-1", "webgatos-0", "webgatos-1", "envoy", "sqrt",
                             "locust"}
    for name in ("webgatos-0", "webgatos-1"):
        env = services[name]["environment"]
        assert env["SESSION_STORE"] == "hazelcast" and env["REPLICA_NAME"] == name
        assert env["SECRET_KEY"] == "test-only"
    assert services["envoy"]["volumes"][0]["source"].endswith("lab/compose/envoy-no-retries.yaml")
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert published and all(port["host_ip"] == "127.0.0.1" for port in published)
    assert {"8089"} <= {port["published"] for port in services["locust"]["ports"]}


def test_one_bootstrap_per_mesh_scenario():
    files = {path.name for path in compose.HERE.glob("envoy-*.yaml")}
    assert files == {compose.envoy_path(name).name for name in scenario_names()}, (
        "run `python -m lab.compose` to refresh lab/compose/")


@pytest.mark.parametrize("scenario", scenario_names())
def test_envoy_accepts_the_compose_bootstrap(scenario):
    result = subprocess.run([binaries.envoy(), "--mode", "validate", "-c", str(compose.envoy_path(scenario))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.mark.parametrize("argv", [["--force"], ["--help", "extra"]])
def test_the_generator_refuses_arguments_with_exit_2_and_one_line_and_writes_nothing(argv):
    before = {path: path.read_bytes() for path in compose.HERE.glob("envoy-*.yaml")}
    result = subprocess.run([str(VENV_BIN / "python"), "-m", "lab.compose", *argv], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "takes no arguments" in result.stderr
    assert {path: path.read_bytes() for path in compose.HERE.glob("envoy-*.yaml")} == before
