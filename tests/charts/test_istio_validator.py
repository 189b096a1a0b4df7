"""The strict Istio validator used on the charts' output must itself catch mistakes: unknown
fields (a typo such as `retries.attempt`), wrong types, bad durations (CEL rules) and unknown
versions. Without these the validity tests would prove nothing."""

import copy

import chartlib
import pytest

GOOD_VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "webgatos", "labels": {"app": "webgatos"}},
    "spec": {
        "hosts": ["webgatos.resilience-lab.svc.cluster.local"],
        "http": [{
            "name": "default",
            "route": [{"destination": {"host": "webgatos.resilience-lab.svc.cluster.local", "port": {"number": 80}}}],
            "timeout": "10s",
            "retries": {"attempts": 5, "perTryTimeout": "2s", "retryOn": "connect-failure,503"},
        }],
    },
}


def changed(path: str, value):
    """GOOD_VIRTUAL_SERVICE with `value` set at a dotted path (list indexes as numbers)."""
    doc = copy.deepcopy(GOOD_VIRTUAL_SERVICE)
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    node = doc
    for part in parents:
        node = node[part]
    node[last] = value
    return doc


def test_a_correct_virtual_service_passes(istio_schemas):
    assert istio_schemas.errors(GOOD_VIRTUAL_SERVICE) == []


def test_a_misspelled_retries_field_is_rejected(istio_schemas):
    doc = copy.deepcopy(GOOD_VIRTUAL_SERVICE)
    doc["spec"]["http"][0]["retries"] = {"attempt": 5, "perTryTimeout": "2s"}
    errors = istio_schemas.errors(doc)
    assert any("'attempt' was unexpected" in error and "spec.http.0.retries" in error for error in errors), errors


@pytest.mark.parametrize(("path", "value", "expected"), [
    ("spec.http.0.retries.attempts", "five", "is not of type 'integer'"),
    ("spec.http.0.retries.perTryTimeout", "2 seconds", "not a duration"),
    ("spec.http.0.timeout", "0.5ms", "shorter than 1ms"),
    ("spec.http.0.route.0.destination.hostname", "x", "'hostname' was unexpected"),
    ("spec.http.0.fault", {"abort": {"percentage": {"value": 50}, "httpStatus": 503, "grpc": "x"}},
     "'grpc' was unexpected"),
    ("metadata.nmae", "x", "'nmae' was unexpected"),
    ("spec.gateway", ["mesh"], "'gateway' was unexpected"),
])
def test_mistakes_are_rejected(istio_schemas, path, value, expected):
    errors = istio_schemas.errors(changed(path, value))
    assert any(expected in error for error in errors), errors


def test_int_or_string_fields_take_both_and_nothing_else(istio_schemas):
    def with_generation(value):
        return changed("status", {"conditions": [{"type": "Reconciled", "observedGeneration": value}]})
    assert istio_schemas.errors(with_generation(3)) == []
    assert istio_schemas.errors(with_generation("3")) == []
    assert istio_schemas.errors(with_generation(True))


def test_nullable_fields_accept_null_and_others_do_not(istio_schemas):
    def rule(**outlier_detection):
        return {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": {"name": "webgatos"},
                "spec": {"host": "webgatos", "trafficPolicy": {"outlierDetection": outlier_detection}}}
    assert istio_schemas.errors(rule(consecutive5xxErrors=None)) == []  # nullable in the CRD
    assert istio_schemas.errors(rule(maxEjectionPercent=None))


def test_an_unserved_version_is_reported(istio_schemas):
    errors = istio_schemas.errors(changed("apiVersion", "networking.istio.io/v2"))
    assert errors == ["VirtualService/webgatos: no served Istio schema for networking.istio.io/v2 VirtualService"]


def test_an_unknown_cel_rule_is_reported_not_ignored():
    problem = chartlib.check_cel_rule("self.size() > 3", "ab")
    assert problem.startswith("unsupported CEL rule")


@pytest.mark.parametrize(("text", "seconds"), [("1ms", 0.001), ("2s", 2.0), ("1m30s", 90.0), ("1.5h", 5400.0)])
def test_go_durations(text, seconds):
    assert chartlib.go_duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2", "2 s", "-1s", "1d", 2])
def test_not_go_durations(text):
    assert chartlib.go_duration_seconds(text) is None
