"""loadtests/k8s/: Locust master and workers on the cluster. The manifests validate strictly
against the oldest Kubernetes the project supports (1.30) and the newest schemas shipped by
kubernetes-validate, and keep their promises: same Locust as .venv, the web UI reachable only
through port-forward, the master port open to workers only, locked-down pods."""

import re

import kubernetes_validate
import pytest
import yaml
from chartlib import K8S_VERSIONS

from lab.host.paths import REPO_ROOT

MANIFEST_DIR = REPO_ROOT / "loadtests" / "k8s"
CONFIGMAP = "loadtest-files"  # what `make loadtest-k8s` creates from loadtests/


def documents() -> list[dict]:
    docs = []
    for path in sorted(MANIFEST_DIR.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def named(kind: str, name: str) -> dict:
    return next(doc for doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def flag(args: list[str], name: str) -> str | None:
    for arg in args:
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def test_the_manifests_hold_master_workers_service_and_policy():
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in documents())
    assert kinds == [("Deployment", "locust-master"), ("Deployment", "locust-worker"),
                     ("NetworkPolicy", "locust-master"), ("Service", "locust-master")]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates_strictly(version):
    for doc in documents():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} is invalid for Kubernetes {version}: {error.message}")


def test_image_matches_the_locust_pinned_for_the_venv():
    pin = re.search(r"^locust==(\S+)$", (REPO_ROOT / "requirements-dev.txt").read_text(), re.MULTILINE).group(1)
    for name in ("locust-master", "locust-worker"):
        assert container(named("Deployment", name))["image"] == f"locustio/locust:{pin}"


def test_master_and_workers_load_the_same_repo_files_from_the_configmap():
    master, worker = (container(named("Deployment", n)) for n in ("locust-master", "locust-worker"))
    files = flag(master["args"], "--locustfile")
    assert files == flag(worker["args"], "--locustfile")
    for path in files.split(","):
        assert path.startswith("/loadtests/")
        assert (REPO_ROOT / path.lstrip("/")).is_file(), f"{path} is not a file of loadtests/"
    for name in ("locust-master", "locust-worker"):
        volumes = named("Deployment", name)["spec"]["template"]["spec"]["volumes"]
        assert {"name": "loadtests", "configMap": {"name": CONFIGMAP}} in volumes
    assert f"create configmap {CONFIGMAP}" in (REPO_ROOT / "Makefile").read_text()


def test_web_ui_listens_on_loopback_and_workers_find_the_master():
    master_args = container(named("Deployment", "locust-master"))["args"]
    worker_args = container(named("Deployment", "locust-worker"))["args"]
    assert "--master" in master_args
    assert flag(master_args, "--web-host") == "127.0.0.1"  # reachable by kubectl port-forward only
    assert "--worker" in worker_args
    assert flag(worker_args, "--master-host") == named("Service", "locust-master")["metadata"]["name"]
    assert [p["port"] for p in named("Service", "locust-master")["spec"]["ports"]] == [5557]


def test_selectors_match_their_pods():
    for name in ("locust-master", "locust-worker"):
        deployment = named("Deployment", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    master_labels = named("Deployment", "locust-master")["spec"]["template"]["metadata"]["labels"]
    worker_labels = named("Deployment", "locust-worker")["spec"]["template"]["metadata"]["labels"]
    assert named("Service", "locust-master")["spec"]["selector"].items() <= master_labels.items()
    policy = named("NetworkPolicy", "locust-master")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= master_labels.items()
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"].items() <= worker_labels.items()
    assert not source["podSelector"]["matchLabels"].items() <= master_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 5557}]


@pytest.mark.parametrize("name", ["locust-master", "locust-worker"])
def test_pods_are_locked_down(name):
    pod = named("Deployment", name)["spec"]["template"]["spec"]
    only = container(named("Deployment", name))
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert only["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                       "capabilities": {"drop": ["ALL"]}}
    assert {"cpu", "memory"} <= only["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= only["resources"]["limits"].keys()
    # A read-only root needs a writable /tmp (HOME points there).
    assert {"name": "tmp", "mountPath": "/tmp"} in only["volumeMounts"]
    assert {"name": "HOME", "value": "/tmp"} in only["env"]
