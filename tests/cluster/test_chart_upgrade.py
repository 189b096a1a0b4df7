"""`helm upgrade` on the real API server: between session stores and back, and from the previous
released chart version (from git history) to this one. No immutable-field error, no warning,
and the generated Secrets (cookie-signing key, Redis password) survive every upgrade."""

import base64
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from chartlib import CHARTS_DIR, REPO_ROOT

STORE_STEPS = [
    ("memory", []),
    ("redis", ["-f", str(CHARTS_DIR / "webgatos" / "ci" / "redis-values.yaml")]),
    ("redis, 4 replicas", ["-f", str(CHARTS_DIR / "webgatos" / "ci" / "redis-values.yaml"), "--set", "replicaCount=4"]),
    ("hazelcast", ["-f", str(CHARTS_DIR / "webgatos" / "ci" / "hazelcast-values.yaml")]),
    ("memory again", []),
    ("redis again", ["-f", str(CHARTS_DIR / "webgatos" / "ci" / "redis-values.yaml")]),
]


def secret_value(cluster, namespace: str, name: str, key: str) -> str | None:
    result = cluster.kubectl("get", "secret", name, "--namespace", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    return base64.b64decode(yaml.safe_load(result.stdout)["data"][key]).decode()


def test_store_type_changes_upgrade_in_place_and_keep_generated_secrets(cluster, namespace):
    keys, passwords = [], []
    for step, args in STORE_STEPS:
        cluster.install("lab", namespace, CHARTS_DIR / "webgatos", *args, upgrade=True)
        deployment = cluster.get("deployment", "lab-webgatos", "--namespace", namespace)
        env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["SESSION_STORE"] == step.split()[0].rstrip(","), step
        keys.append(secret_value(cluster, namespace, "lab-webgatos", "secret-key"))
        if step.startswith("redis"):
            passwords.append((step, secret_value(cluster, namespace, "lab-webgatos-redis", "redis-password")))
        stores = {s["metadata"]["name"] for s in cluster.items("statefulsets", namespace)}
        store = step.split()[0].rstrip(",")
        expected = {"redis": {"lab-webgatos-redis"}, "hazelcast": {"lab-webgatos-hazelcast"}}.get(store, set())
        assert stores == expected, (step, stores)
    assert len(set(keys)) == 1 and keys[0], "the cookie-signing key changed on an upgrade"
    # Kept while Redis stays in the release; a Redis removed and installed again gets a new one.
    assert passwords[0][1] == passwords[1][1], passwords
    assert all(password for _, password in passwords)


def previous_chart_version(chart: str, into: Path) -> tuple[str, Path]:
    """The newest version of `chart` in git history that differs from the working tree's, unpacked
    into `into`."""
    chart_yaml = f"charts/{chart}/Chart.yaml"
    current = yaml.safe_load((REPO_ROOT / chart_yaml).read_text())["version"]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=True).stdout

    for commit in git("log", "--format=%H", "--", chart_yaml).split():
        version = yaml.safe_load(git("show", f"{commit}:{chart_yaml}"))["version"]
        if version != current:
            archive = into / "chart.tar"
            archive.write_bytes(subprocess.run(["git", "-C", str(REPO_ROOT), "archive", commit, f"charts/{chart}"],
                                               capture_output=True, check=True).stdout)
            with tarfile.open(archive) as tar:
                tar.extractall(into, filter="data")
            return version, into / "charts" / chart
    message = f"no earlier version of {chart} than {current} in git history (a shallow clone?)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize(("chart", "values"), [
    ("webgatos", []),
    ("webgatos", ["-f", "ci/redis-values.yaml"]),
    ("webgatos", ["-f", "ci/hazelcast-values.yaml"]),
    ("webgatos", ["-f", "ci/istio-retries-values.yaml"]),
    ("sqrt", []),
    ("sqrt", ["-f", "ci/load-generator-values.yaml"]),
], ids=["webgatos", "webgatos-redis", "webgatos-hazelcast", "webgatos-istio", "sqrt", "sqrt-load-generator"])
def test_upgrade_from_the_previous_chart_version(cluster, namespace, tmp_path, chart, values):
    version, old_chart = previous_chart_version(chart, tmp_path)
    old_values = [str(old_chart / v) if v.startswith("ci/") else v for v in values]
    new_values = [str(CHARTS_DIR / chart / v) if v.startswith("ci/") else v for v in values]
    cluster.install("lab", namespace, old_chart, *old_values)
    secrets_before = {s["metadata"]["name"]: s["data"] for s in cluster.items("secrets", namespace)
                      if s["type"] == "Opaque"}
    cluster.install("lab", namespace, CHARTS_DIR / chart, *new_values, upgrade=True)
    history = cluster.helm("history", "lab", "--namespace", namespace, "-o", "yaml").stdout
    charts = [entry["chart"] for entry in yaml.safe_load(history)]
    current = yaml.safe_load((CHARTS_DIR / chart / "Chart.yaml").read_text())["version"]
    assert charts == [f"{chart}-{version}", f"{chart}-{current}"]
    secrets_after = {s["metadata"]["name"]: s["data"] for s in cluster.items("secrets", namespace)
                     if s["type"] == "Opaque"}
    for name, data in secrets_before.items():
        assert secrets_after.get(name) == data, f"Secret {name} changed across the upgrade"
