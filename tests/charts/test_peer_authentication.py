"""The webgatos chart's mTLS toggle (`istio.peerAuthentication`): off by default (the lab's gateway
has no sidecar), on it renders one PeerAuthentication over every Pod of the release and nothing
else's, which the pinned istioctl accepts."""

import subprocess

import chartlib
import pytest
import yaml

pytestmark = pytest.mark.processes  # helm, istioctl

WEBGATOS = str(chartlib.CHARTS_DIR / "webgatos")


def rendered(*values: str) -> list[dict]:
    out = chartlib.template([WEBGATOS, "--set", "istio.enabled=true", "--set", "sessionStore.type=redis", *values])
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def test_off_by_default():
    assert not chartlib.by_kind(rendered(), "PeerAuthentication")


def test_strict_over_every_pod_of_the_release(tmp_path):
    docs = rendered("--set", "istio.peerAuthentication.enabled=true")
    [policy] = chartlib.by_kind(docs, "PeerAuthentication")
    assert policy["apiVersion"] == "security.istio.io/v1" and policy["spec"]["mtls"] == {"mode": "STRICT"}
    selector = policy["spec"]["selector"]["matchLabels"]
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in chartlib.workloads(docs)]
    assert len(pods) >= 2 and all(chartlib.selector_matches(selector, labels) for labels in pods)
    assert not chartlib.selector_matches(selector, {"app.kubernetes.io/name": "webgatos",
                                                    "app.kubernetes.io/instance": "another-release"})
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    result = subprocess.run([chartlib.istioctl(), "validate", "-f", str(tmp_path / "policy.yaml")],
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr + result.stdout


def test_a_mode_outside_istios_is_refused_by_the_schema():
    result = chartlib.template([WEBGATOS, "--set", "istio.peerAuthentication.mode=OFF"], check=False)
    assert result.returncode != 0 and "mode" in result.stderr
