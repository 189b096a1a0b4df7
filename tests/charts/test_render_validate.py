"""Every scenario of both charts lints strictly, renders, and renders only valid documents:
Kubernetes kinds against the official schemas of the oldest supported version and the newest one
shipped (the lab's API server in tests/cluster covers its own), unknown fields rejected; the whole
render through `istioctl validate`."""

import os
import subprocess

import chartlib
import pytest

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests

SCENARIOS = chartlib.scenarios()
SCENARIO_IDS = [scenario.id for scenario in SCENARIOS]


def test_every_required_scenario_exists():
    names = set(SCENARIO_IDS)
    for required in ("webgatos:ci/memory-2-replicas-values", "webgatos:ci/redis-values",
                     "webgatos:ci/hazelcast-values", "webgatos:ci/istio-retries-values",
                     "webgatos:ci/istio-fault-values", "webgatos:ci/hpa-values",
                     "webgatos:ci/single-replica-values", "sqrt:ci/hpa-on-values", "sqrt:ci/hpa-off-values",
                     "sqrt:ci/load-generator-values"):
        assert required in names


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_helm_lint_strict(scenario):
    result = chartlib.run_helm("lint", "--strict", *scenario.helm_args())
    assert "0 chart(s) failed" in result.stdout, result.stdout


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
@pytest.mark.parametrize("version", chartlib.K8S_VERSIONS)
def test_kubernetes_documents_are_strictly_valid(scenario, version):
    docs = [doc for doc in chartlib.render(scenario) if not chartlib.is_istio(doc)]
    assert docs, "the scenario rendered no Kubernetes documents"
    problems = [problem for doc in docs if (problem := chartlib.validate_kubernetes(doc, version))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)
def test_istioctl_validates_every_render(scenario, tmp_path):
    """Istio's own validation (istioctl of the lab's istiod build) on the whole render: Istio kinds
    against Istio's schemas and rules, and Istio's checks of the Kubernetes ones (Service port
    names, Deployment labels). The API server tests (tests/cluster) apply the CRDs of the release
    the cluster demos install."""
    docs = chartlib.render(scenario)
    values = chartlib.chart_values(scenario)
    kinds = {doc["kind"] for doc in docs if chartlib.is_istio(doc)}
    if scenario.chart == "webgatos" and values["istio"]["enabled"]:
        assert {"VirtualService", "DestinationRule"} <= kinds
        assert ("Gateway" in kinds) == values["istio"]["gateway"]["enabled"]
        assert ("AuthorizationPolicy" in kinds) == (values["istio"]["gateway"]["enabled"]
                                                    and values["istio"]["authorizationPolicy"]["enabled"])
        assert ("Telemetry" in kinds) == values["istio"]["tracing"]["enabled"]
    elif scenario.chart == "sqrt" and values["istio"]["enabled"]:
        assert kinds == {"Gateway", "VirtualService"}
    else:
        assert not kinds, "Istio resources rendered although istio.enabled is false"
    rendered = tmp_path / "render.yaml"
    rendered.write_text(chartlib.template(scenario.helm_args()).stdout)
    result = subprocess.run([chartlib.istioctl(), "validate", "-f", str(rendered)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "KUBECONFIG": str(tmp_path / "none")})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Error" not in result.stdout + result.stderr and "Warning" not in result.stdout + result.stderr, (
        result.stdout + result.stderr)


def test_istioctl_validate_refuses_a_misspelled_retry_field(tmp_path):
    render = chartlib.template([str(chartlib.CHARTS_DIR / "webgatos"), "--set", "istio.enabled=true"]).stdout
    rendered = tmp_path / "render.yaml"
    rendered.write_text(render.replace("perTryTimeout:", "perTryTimout:"))
    result = subprocess.run([chartlib.istioctl(), "validate", "-f", str(rendered)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "KUBECONFIG": str(tmp_path / "none")})
    assert result.returncode != 0
    assert 'unknown field "perTryTimout" in istio.networking.v1alpha3.HTTPRetry' in result.stderr
