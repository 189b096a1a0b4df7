"""Issue 37 through the lab's real Istio ingress gateway (programmed by real istiod from the chart):
the admin API cannot be reached from outside, by either layer of the edge, and inside the cluster
it answers only to the token the chart generated.

- The edge VirtualService routes only the public paths (the page, the API, static files, the probes):
  /admin and /metrics are 404s at the gateway.
- The AuthorizationPolicy denies /admin at the gateway even when a route to it exists: a 403 from
  Envoy's RBAC filter, and no replica sees the request.
- Inside (straight to a replica, as a Pod in the cluster would), a request without the token is a
  401 and one with it works."""

import requests

from lab.host.procs import wait_until

TIMEOUT = 15.0
SWITCH_ON = {"error_rate": 1.0}
ADMIN_PATHS = ["/admin/faults", "/admin", "/admin/", "//admin/faults", "/%61dmin/faults", "/admin/faults?x=1",
               "/admin/../admin/faults"]


def replica_error_rates(running, auth: dict) -> list[float]:
    return [requests.get(f"{url}/admin/faults", headers=auth, timeout=TIMEOUT).json()["error_rate"]
            for url in running.replica_urls]


def test_the_gateway_routes_no_admin_path_and_the_token_works_only_inside(topology):
    running = topology("retries")
    token = running.replicas()[0].env.get("ADMIN_TOKEN", "")  # from the chart's generated Secret
    auth = {"Authorization": f"Bearer {token}"}
    with requests.Session() as session:
        for path in ("/", "/api/session", "/static/cat.svg", "/healthz", "/readyz"):
            assert session.get(running.url + path, timeout=TIMEOUT).status_code == 200, path
        refused = {}
        for path in [*ADMIN_PATHS, "/metrics"]:
            for headers in ({}, auth):
                for method in ("GET", "PUT"):
                    response = session.request(method, running.url + path, json=SWITCH_ON, headers=headers,
                                               timeout=TIMEOUT)
                    refused[method, path, bool(headers)] = response.status_code
        assert set(refused.values()) <= {403, 404}, refused
        assert all(session.get(f"{running.url}/api/session", timeout=TIMEOUT).status_code == 200 for _ in range(20))
    assert len(token) >= 32 and {run.env["ADMIN_TOKEN"] for run in running.replicas()} == {token}
    assert replica_error_rates(running, auth) == [0.0] * len(running.replicas())
    # Inside: the replica itself wants the token.
    inside = running.replica_urls[0]
    assert requests.put(f"{inside}/admin/faults", json=SWITCH_ON, timeout=TIMEOUT).status_code == 401
    assert requests.put(f"{inside}/admin/faults", json=SWITCH_ON, headers={"Authorization": "Bearer wrong"},
                        timeout=TIMEOUT).status_code == 401
    assert replica_error_rates(running, auth)[0] == 0.0
    assert requests.put(f"{inside}/admin/faults", json=SWITCH_ON, headers=auth, timeout=TIMEOUT).status_code == 200
    assert replica_error_rates(running, auth)[0] == 1.0


def test_the_authorization_policy_denies_admin_even_when_a_route_leads_there(topology):
    running = topology("no-retries")
    token = running.replicas()[0].env.get("ADMIN_TOKEN", "")
    auth = {"Authorization": f"Bearer {token}"}
    # Someone adds a route to everything through the chart's gateway, as a careless edit might.
    host = f"webgatos.{running.namespace}.svc.cluster.local"
    running.cluster.plane.kubectl("apply", "--namespace", running.namespace, "-f", "-", input_text=f"""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: everything-through-the-edge
spec:
  hosts: ["*"]
  gateways: [webgatos]
  http:
    - match: [{{uri: {{prefix: /admin}}}}, {{uri: {{prefix: /not-public}}}}]
      route: [{{destination: {{host: {host}, port: {{number: 80}}}}}}]
""")
    # /not-public is no private path: once a replica answers it (its own 404), the new route is live.
    wait_until(lambda: "X-Replica" in requests.get(f"{running.url}/not-public", timeout=TIMEOUT).headers, 60,
               "istiod to program the added route into the gateway", interval=0.2)
    for method in ("GET", "PUT"):
        response = requests.request(method, f"{running.url}/admin/faults", json=SWITCH_ON, headers=auth,
                                    timeout=TIMEOUT)
        assert response.status_code == 403, (method, response.status_code, response.text[:200])
        assert "RBAC" in response.text and "X-Replica" not in response.headers  # Envoy answered, not a replica
    assert replica_error_rates(running, auth) == [0.0] * len(running.replicas())
