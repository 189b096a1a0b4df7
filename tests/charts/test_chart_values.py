"""Bad values are refused before anything reaches a cluster, with a message that names the key:
the schema for unknown keys, bad enums and ranges; the chart's own checks for combinations no
schema can express (mesh fault with retries, a budget that blocks every eviction, ...)."""

import chartlib
import pytest
import yaml

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests


def rendering_error(chart: str, *assignments: str) -> str:
    args = [str(chartlib.CHARTS_DIR / chart)]
    for assignment in assignments:
        args += ["--set", assignment]
    result = chartlib.template(args, check=False)
    assert result.returncode != 0, f"helm template accepted {assignments}"
    return result.stderr


@pytest.mark.parametrize(("chart", "assignments", "message"), [
    ("webgatos", ["sessionStore.type=mongo"],
     "at '/sessionStore/type': value must be one of 'memory', 'redis', 'hazelcast'"),
    ("webgatos", ["sessionStore.tpye=redis"], "at '/sessionStore': additional properties 'tpye' not allowed"),
    ("webgatos", ["istio.virtualService.retries.attempt=3"],
     "at '/istio/virtualService/retries': additional properties 'attempt' not allowed"),
    ("webgatos", ["replicaCunt=3"], "additional properties 'replicaCunt' not allowed"),
    ("webgatos", ["faults.errorRate=2"], "at '/faults/errorRate': maximum: got 2, want 1"),
    ("webgatos", ["faults.errorStatus=404"], "at '/faults/errorStatus': minimum: got 404, want 500"),
    ("webgatos", ["istio.virtualService.retries.perTryTimeout=2 seconds"],
     "at '/istio/virtualService/retries/perTryTimeout'"),
    ("webgatos", ["kubeMonkey.killMode=sometimes"], "at '/kubeMonkey/killMode': value must be one of"),
    ("webgatos", ["image.pullPolicy=Sometimes"], "at '/image/pullPolicy': value must be one of"),
    ("sqrt", ["autoscaling.targetCPU=50"], "at '/autoscaling': additional properties 'targetCPU' not allowed"),
    ("sqrt", ["maxIterations=0"], "at '/maxIterations': minimum: got 0, want 1"),
    ("sqrt", ["loadGenerator.enabled=maybe"], "at '/loadGenerator/enabled': got string, want boolean"),
])
def test_schema_rejects_bad_values_naming_the_key(chart, assignments, message):
    assert message in rendering_error(chart, *assignments)


@pytest.mark.parametrize(("assignments", "message"), [
    (["istio.virtualService.fault.abort.enabled=true"],
     "cannot be combined with istio.virtualService.retries.enabled=true: Istio ignores retries on a route that "
     "has a fault (istio/istio#13705)"),
    (["istio.enabled=true", "istio.virtualService.fault.delay.enabled=true"], "faults.errorRate"),
    (["podDisruptionBudget.minAvailable=2", "podDisruptionBudget.maxUnavailable=null"],
     "podDisruptionBudget.minAvailable=2 would block every eviction with 2 replicas"),
    (["podDisruptionBudget.minAvailable=100%", "podDisruptionBudget.maxUnavailable=null"],
     "would block every eviction"),
    (["podDisruptionBudget.maxUnavailable=0%"], "would block every eviction"),
    (["podDisruptionBudget.minAvailable=1"], "set only one of maxUnavailable and minAvailable"),
    (["gunicorn.workers=2"], "gunicorn.workers > 1 with sessionStore.type=memory"),
    (["sessionStore.type=redis", "sessionStore.redis.bundled=false"], "needs sessionStore.redis.external.host"),
    (["sessionStore.type=hazelcast", "sessionStore.hazelcast.bundled=false"],
     "needs sessionStore.hazelcast.external.members"),
    (["autoscaling.enabled=true", "autoscaling.minReplicas=5", "autoscaling.maxReplicas=3"],
     "autoscaling.minReplicas must not exceed autoscaling.maxReplicas"),
])
def test_chart_refuses_combinations_with_a_message_saying_what_to_change(assignments, message):
    assert message in rendering_error("webgatos", *assignments)


def test_a_budget_that_leaves_room_to_evict_renders():
    docs = yaml.safe_load_all(chartlib.template([str(chartlib.CHARTS_DIR / "webgatos"), "--set", "replicaCount=3",
                                                  "--set", "podDisruptionBudget.minAvailable=2",
                                                  "--set", "podDisruptionBudget.maxUnavailable=null"]).stdout)
    budget = next(doc for doc in docs if doc and doc["kind"] == "PodDisruptionBudget")
    assert budget["spec"] == {"minAvailable": 2, "selector": budget["spec"]["selector"]}


@pytest.mark.parametrize("chart", chartlib.CHART_NAMES)
def test_every_default_value_is_described_by_the_schema(chart):
    values = yaml.safe_load((chartlib.CHARTS_DIR / chart / "values.yaml").read_text())
    schema = chartlib.load_schema(chart)

    def keys(node, prefix=""):
        for key, value in node.items():
            yield prefix + key
            if isinstance(value, dict):
                yield from keys(value, f"{prefix}{key}.")

    unknown = [key for key in keys(values) if chartlib.unknown_key(schema, key)]
    assert not unknown
