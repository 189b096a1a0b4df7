"""Both charts install for real on the lab's kube-apiserver: their defaults, every ci/*.yaml and
every istio/scenarios/*.yaml, each in its own namespace enforcing PodSecurity `restricted`, with
server-side apply (Helm 4's default: strict field validation) and no warning from the server.
A deliberately broken chart fails with the server's own message."""

import shutil

import pytest
import yaml
from chartlib import CHARTS_DIR, scenarios

SCENARIOS = scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_chart_installs_under_restricted_pod_security(cluster, namespace, scenario):
    cluster.install("lab", namespace, *scenario.helm_args())
    release = cluster.helm("status", "lab", "--namespace", namespace, "-o", "json").stdout
    assert '"status":"deployed"' in release.replace(" ", "")
    manifest = cluster.helm("get", "manifest", "lab", "--namespace", namespace).stdout
    rendered = [doc for doc in yaml.safe_load_all(manifest) if doc]
    for doc in rendered:
        # Everything Helm sent is there, as sent: nothing was pruned or refused. (The gateway's
        # AuthorizationPolicy names its own namespace: Istio applies it only in the gateway's.)
        kind, name = doc["kind"], doc["metadata"]["name"]
        doc_namespace = doc["metadata"].get("namespace", namespace)
        assert cluster.get(kind, name, "--namespace", doc_namespace)["metadata"]["name"] == name
    pods_refused = [event for event in cluster.items("events", namespace)
                    if event.get("reason") == "FailedCreate"]
    assert not pods_refused, [event["message"] for event in pods_refused]


def broken_copy(tmp_path, edit) -> str:
    chart = tmp_path / "webgatos"
    shutil.copytree(CHARTS_DIR / "webgatos", chart)
    edit(chart)
    return str(chart)


def test_an_unknown_field_is_refused_by_the_server(cluster, namespace, tmp_path):
    def add_field(chart):
        template = chart / "templates" / "deployment.yaml"
        template.write_text(template.read_text().replace(
            "      serviceAccountName:", "      serviceAcountName: typo\n      serviceAccountName:", 1))

    result = cluster.helm("install", "lab", broken_copy(tmp_path, add_field), "--namespace", namespace, check=False)
    assert result.returncode != 0
    assert ".spec.template.spec.serviceAcountName: field not declared in schema" in result.stderr


def test_a_container_allowed_to_run_as_root_is_warned_and_its_pods_refused(cluster, namespace, tmp_path):
    def drop_run_as_non_root(chart):
        values = chart / "values.yaml"
        values.write_text(values.read_text().replace("runAsNonRoot: true", "runAsNonRoot: false"))

    result = cluster.helm("install", "lab", broken_copy(tmp_path, drop_run_as_non_root), "--namespace", namespace)
    warnings = cluster.warnings(result)
    assert any('would violate PodSecurity \\"restricted:latest\\": runAsNonRoot != true' in line
               for line in warnings), result.stderr
    # The ReplicaSet controller's own attempt is what PodSecurity enforces on.
    event = cluster.wait_for(
        lambda: next((e for e in cluster.items("events", namespace) if e.get("reason") == "FailedCreate"), None),
        30, "the ReplicaSet controller to be refused")
    assert 'violates PodSecurity "restricted:latest"' in event["message"], event["message"]
    assert not cluster.items("pods", namespace)


def test_a_misspelled_istio_field_is_refused_by_istios_crd(cluster, namespace, tmp_path):
    def misspell(chart):
        template = chart / "templates" / "istio.yaml"
        template.write_text(template.read_text().replace("    perTryTimeout:", "    perTryTimout:", 1))

    result = cluster.helm("install", "lab", broken_copy(tmp_path, misspell), "--namespace", namespace,
                          "--set", "istio.enabled=true", check=False)
    assert result.returncode != 0
    assert "perTryTimout: field not declared in schema" in result.stderr, result.stderr


def test_a_retry_timeout_below_istios_minimum_is_refused_by_its_validation_rule(cluster, namespace):
    result = cluster.helm("install", "lab", str(CHARTS_DIR / "webgatos"), "--namespace", namespace,
                          "--set", "istio.enabled=true", "--set", "istio.virtualService.retries.perTryTimeout=0.5ms",
                          check=False)
    assert result.returncode != 0
    assert "must be a valid duration greater than 1ms" in result.stderr, result.stderr
