"""A deliberately broken image (the webgatos image without one of its modules) never becomes
Ready on a real node, and what `helm install --wait` reports shows the container's own log: the
traceback that names the missing module."""

import shutil
import subprocess

import pytest
from chartlib import CHARTS_DIR

BROKEN = "resilience-lab/webgatos:broken-missing-module"


def buildah(*args: str) -> str:
    return subprocess.run(["buildah", *args], check=True, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL).stdout.strip()


@pytest.fixture(scope="module")
def broken_image(host_tier, tmp_path_factory):
    if not shutil.which("buildah"):
        pytest.fail("buildah not found: `make images` installs it")
    container = buildah("from", "--pull-never", "resilience-lab/webgatos:0.1.0")
    try:
        buildah("run", "--isolation", "chroot", "--user", "0:0", container, "--", "rm", "/app/webgatos/settings.py")
        buildah("commit", "--quiet", container, BROKEN)
    finally:
        buildah("rm", container)
    archive = tmp_path_factory.mktemp("broken") / "broken.tar"
    buildah("push", BROKEN, f"docker-archive:{archive}:{BROKEN}")
    host_tier.cluster.containerd.import_archives([archive])
    yield BROKEN
    subprocess.run(["buildah", "rmi", BROKEN], capture_output=True, timeout=60)


def test_a_missing_module_fails_readiness_and_the_log_says_why(host_tier, host_namespace, broken_image, capsys):
    repository, tag = broken_image.rsplit(":", 1)
    with pytest.raises(AssertionError) as failed:
        host_tier.helm("install", "lab", str(CHARTS_DIR / "webgatos"), "--namespace", host_namespace, "--wait",
                       "--timeout", "25s", "--set", "replicaCount=1", "--set", f"image.repository={repository}",
                       "--set", f"image.tag={tag}", timeout=25)
    report = str(failed.value)
    with capsys.disabled():  # shown in every run's output: what a failing install looks like here
        print(f"\n--- a broken image on a real node, as `helm install --wait` reports it ---\n{report}\n---")
    assert "No module named 'webgatos.settings'" in report or "ModuleNotFoundError" in report, report
    pods = host_tier.pods(host_namespace, "app.kubernetes.io/component=web")
    assert pods and not host_tier.ready_pods(host_namespace, "app.kubernetes.io/component=web")
