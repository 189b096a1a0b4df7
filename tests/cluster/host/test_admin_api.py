"""Issue 37 on real Pods without the mesh: the chart's Service (kube-proxy's rules), as the
`make demo-*` cases without Istio reach the app. The admin API refuses every request without the
token the chart generated, and takes the one with it; the slow clients of the issue no longer
make the kubelet's probes fail (no `Unhealthy` event, no restart)."""

import base64
import contextlib
import json
import socket
import time
import urllib.error
import urllib.request

from chartlib import CHARTS_DIR

from tests.cluster.host.conftest import SELECTOR_WEB

WEBGATOS = CHARTS_DIR / "webgatos"


def put_faults(url: str, headers: dict) -> int:
    request = urllib.request.Request(f"{url}/admin/faults", data=json.dumps({"error_rate": 1.0}).encode(),
                                     method="PUT", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_admin_api_needs_the_generated_token_through_the_service(host_tier, host_namespace):
    host_tier.install("lab", host_namespace, WEBGATOS, "--set", "replicaCount=1")
    host_tier.wait_for(lambda: len(host_tier.ready_pods(host_namespace, SELECTOR_WEB)) == 1, 60, "1 ready replica",
                       host_namespace)
    url = host_tier.service_url(host_namespace, "lab-webgatos")
    for headers in ({}, {"Authorization": "Bearer not-the-token-0123456789"}):
        assert put_faults(url, headers) == 401, headers
    with urllib.request.urlopen(f"{url}/api/session", timeout=10) as response:
        assert response.status == 200  # nothing was switched on
    secret = host_tier.get("secret", "lab-webgatos-admin", "--namespace", host_namespace)
    token = base64.b64decode(secret["data"]["admin-token"]).decode()
    assert put_faults(url, {"Authorization": token}) == 401  # the token without its scheme
    assert put_faults(url, {"Authorization": f"Bearer {token}"}) == 200


def probe_failures(host_tier, namespace: str) -> list[str]:
    """The kubelet's probe failures in the namespace (its `Unhealthy` events)."""
    events = host_tier.get("events", "--namespace", namespace)["items"]
    return [event.get("message", "") for event in events if event.get("reason") == "Unhealthy"]


def test_slow_clients_fail_no_probe_of_the_kubelet(host_tier, host_namespace):
    probes = [f"probes.{kind}.{key}={value}" for kind in ("liveness", "readiness")
              for key, value in (("periodSeconds", 2), ("timeoutSeconds", 1), ("failureThreshold", 3))]
    host_tier.install("lab", host_namespace, WEBGATOS, "--set", "replicaCount=1",
                      *(arg for probe in probes for arg in ("--set", probe)))
    host_tier.wait_for(lambda: len(host_tier.ready_pods(host_namespace, SELECTOR_WEB)) == 1, 60, "1 ready replica",
                       host_namespace)
    assert probe_failures(host_tier, host_namespace) == []
    host, port = host_tier.service_url(host_namespace, "lab-webgatos").removeprefix("http://").rsplit(":", 1)
    socks = []
    try:
        for index in range(50):
            sock = socket.create_connection((host, int(port)), timeout=5)
            if index % 5:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: webgatos\r\nX-Slow: ")
            socks.append(sock)
        # Four probe periods of each probe, and under the worker's 10 s head timeout.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            for index, sock in enumerate(socks):
                if index % 5:
                    with contextlib.suppress(OSError):  # the worker may have cut it off
                        sock.sendall(b"a")
            time.sleep(0.5)
        time.sleep(1.5)  # a probe that was due at the end has timed out (1 s) and been recorded
        assert probe_failures(host_tier, host_namespace) == [], host_tier.explain(host_namespace)
    finally:
        for sock in socks:
            sock.close()
    [pod] = host_tier.pods(host_namespace, SELECTOR_WEB)
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0, host_tier.explain(host_namespace)
