"""The bundled stores' rendered configuration works on the real servers: redis-server takes the
StatefulSet's arguments (password from the Secret, persistence switch) and the app reaches it
through the rendered REDIS_URL; a Hazelcast 5.5 member (the image's version) starts from the
rendered hazelcast.yaml in DNS-lookup discovery mode and answers the probes' health paths."""

import os
import re
import uuid

import chartlib
import pytest
import redis
import yaml

from lab.host import binaries
from lab.host.procs import LOOPBACK, free_port, http_status, wait_hazelcast_ready, wait_until

REDIS_SCENARIO = chartlib.Scenario("webgatos", "ci/redis-values",
                                   (chartlib.CHARTS_DIR / "webgatos/ci/redis-values.yaml",))
HAZELCAST_SCENARIO = chartlib.Scenario("webgatos", "ci/hazelcast-values",
                                       (chartlib.CHARTS_DIR / "webgatos/ci/hazelcast-values.yaml",))


def container_of(scenario, kind, name):
    return chartlib.find(chartlib.render(scenario), kind, name)["spec"]["template"]["spec"]["containers"][0]


def test_redis_runs_with_the_rendered_arguments_and_the_app_reaches_it(procs, tmp_path):
    container = container_of(REDIS_SCENARIO, "StatefulSet", f"{chartlib.RELEASE}-webgatos-redis")
    password = uuid.uuid4().hex
    args = [arg.replace("$(REDIS_PASSWORD)", password) for arg in container["args"]]
    args[args.index("--dir") + 1] = str(tmp_path)
    port = free_port()
    server = procs.start("redis-rendered", [binaries.redis_server(), *args, "--port", str(port), "--bind", LOOPBACK])
    client = redis.Redis(host=LOOPBACK, port=port, password=password, socket_timeout=5)

    def pings() -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    wait_until(pings, 20, f"redis-server with the chart's arguments on port {port}", proc=server)
    assert client.config_get("appendonly") == {"appendonly": "yes"}  # the scenario turns persistence on
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=LOOPBACK, port=port, password="wrong", socket_timeout=5).ping()

    app = container_of(REDIS_SCENARIO, "Deployment", f"{chartlib.RELEASE}-webgatos")
    env = {item["name"]: item.get("value") for item in app["env"]}
    redis_url = re.sub(r"@[^/]+/", f"@{LOOPBACK}:{port}/", env["REDIS_URL"]).replace("$(REDIS_PASSWORD)", password)
    app_env = {key: value for key, value in env.items() if value is not None and key != "REDIS_URL"}
    app_port = free_port()
    procs.gunicorn("webgatos:create_app()", app_port,
                   {**app_env, "REDIS_URL": redis_url, "SECRET_KEY": "test", "PROMETHEUS_MULTIPROC_DIR": "",
                    "SHUTDOWN_DRAIN_SECONDS": "0"},
                   name="webgatos-rendered-env", config=chartlib.REPO_ROOT / "services/webgatos/gunicorn.conf.py")
    assert http_status(f"http://{LOOPBACK}:{app_port}/readyz", timeout=5) == 200
    assert client.dbsize() == 0
    assert http_status(f"http://{LOOPBACK}:{app_port}/api/session", timeout=5) == 200
    assert client.dbsize() == 1, "the session must land in the chart's Redis"


@pytest.mark.hazelcast
def test_hazelcast_member_starts_from_the_rendered_config(procs, tmp_path):
    try:
        java, jar = binaries.java(), binaries.hazelcast_jar()
    except binaries.MissingBinary as missing:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(missing))
    name = f"{chartlib.RELEASE}-webgatos-hazelcast"
    config_map = chartlib.find(chartlib.render(HAZELCAST_SCENARIO), "ConfigMap", name)
    config = yaml.safe_load(config_map["data"]["hazelcast.yaml"])
    container = container_of(HAZELCAST_SCENARIO, "StatefulSet", name)
    port = free_port()
    config["hazelcast"]["network"]["port"]["port"] = port  # the only change: a free port on this machine
    config["hazelcast"]["cluster-name"] = f"chart-{uuid.uuid4().hex[:8]}"
    config_file = tmp_path / "hazelcast.yaml"
    config_file.write_text(yaml.safe_dump(config))
    member = procs.start("hazelcast-rendered", [
        java, "-Xmx256m", "-XX:+UseSerialGC", "-Dhazelcast.phone.home.enabled=false",
        f"-Dhazelcast.local.localAddress={LOOPBACK}", f"-Dhazelcast.config={config_file}",
        "-cp", jar, "com.hazelcast.core.server.HazelcastMemberStarter"])
    wait_hazelcast_ready(port, 120, member)
    # Readiness follows ACTIVE by a few seconds (the member first finishes joining); bounded wait.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        url = f"http://{LOOPBACK}:{port}{container[probe]['httpGet']['path']}"
        wait_until(lambda url=url: http_status(url, timeout=5) == 200, 60, f"{probe} {url} answering 200", proc=member)
    log = member.log_path.read_text(errors="replace")
    assert "Kubernetes Discovery activated with mode: DNS_LOOKUP" in log
    assert f"service-dns: {name}-headless.{chartlib.NAMESPACE}.svc.cluster.local" in log
