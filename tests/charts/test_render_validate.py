"""Every scenario of both charts lints strictly, renders, and renders only valid documents:
Kubernetes kinds against the official schemas (1.30 and the newest shipped) with unknown fields
rejected, Istio kinds against Istio's CRD schemas made strict."""

import chartlib
import pytest

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
def test_istio_documents_are_strictly_valid(scenario, istio_schemas):
    docs = [doc for doc in chartlib.render(scenario) if chartlib.is_istio(doc)]
    values = chartlib.chart_values(scenario)
    if scenario.chart == "webgatos" and values["istio"]["enabled"]:
        kinds = {doc["kind"] for doc in docs}
        assert {"VirtualService", "DestinationRule"} <= kinds
        assert ("Gateway" in kinds) == values["istio"]["gateway"]["enabled"]
    else:
        assert not docs, "Istio resources rendered although istio.enabled is false"
    for doc in docs:
        assert doc["apiVersion"] == "networking.istio.io/v1"
    problems = [problem for doc in docs for problem in istio_schemas.errors(doc)]
    assert not problems, "\n".join(problems)
