"""Istio's ingress gateway as a Pod on the lab's node: Envoy fed by istiod over xDS. Its bootstrap
is the one pilot-agent would write, reduced to what a plaintext gateway needs: its node identity
and labels, and ADS to istiod (`gateway_bootstrap`)."""

import json
from pathlib import Path

from lab.host import binaries
from lab.kube.node.pods import PodRun

GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_NAME = "istio-ingressgateway"
# The labels of the gateway chart's Pods (istio/install/gateway-values.yaml's release), which
# charts/webgatos's Gateway selects by default.
GATEWAY_LABELS = {"istio": "ingressgateway", "app": GATEWAY_NAME}
PROXY_IMAGE = "istio/proxyv2"
PROXY_ADMIN_PORT = 15000


def gateway_bootstrap(run: PodRun, xds_address: str, istio_version: str) -> dict:
    """Envoy's bootstrap for the gateway Pod `run`: node identity as pilot-agent would set it
    (a router, with the Pod's labels, which Gateways select) and ADS to istiod."""
    host, port = xds_address.rsplit(":", 1)
    return {
        "node": {"id": f"router~{run.address}~{run.name}.{run.namespace}~{run.namespace}.svc.cluster.local",
                 "cluster": f"{run.labels.get('app', run.name)}.{run.namespace}",
                 "metadata": {"NAMESPACE": run.namespace, "NAME": run.name, "LABELS": run.labels,
                              "CLUSTER_ID": "Kubernetes", "MESH_ID": "cluster.local", "ISTIO_VERSION": istio_version,
                              "INSTANCE_IPS": run.address, "SERVICE_ACCOUNT": run.service_account,
                              "WORKLOAD_NAME": run.labels.get("app", run.name),
                              "PROXY_CONFIG": {"discoveryAddress": xds_address}}},
        "admin": {"address": {"socket_address": {"address": run.address, "port_value": PROXY_ADMIN_PORT}}},
        # Histograms reach /stats/prometheus at each flush (Envoy's default: 5 s); a demo phase of a
        # few seconds needs several. The cluster's gateway gets the same from its pod annotation.
        "stats_flush_interval": "1s",
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3", "set_node_on_first_message_only": True,
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"}},
        "static_resources": {"clusters": [{
            "name": "xds-grpc", "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": host, "port_value": int(port)}}}}]}]}}]},
    }


class GatewayRunner:
    """The lab node's runner for Istio's proxy image: Envoy with `gateway_bootstrap`."""

    def __init__(self, xds_address: str):
        self.xds_address = xds_address
        self.istio_version = Path(binaries.istio_file("VERSION")).read_text().strip()

    def __call__(self, run: PodRun) -> list[str]:
        config = run.tmp / "envoy.json"
        config.write_text(json.dumps(gateway_bootstrap(run, self.xds_address, self.istio_version)))
        return [binaries.envoy(), "-c", str(config), "--disable-hot-restart", "--log-level", "warning"]


def gateway_manifests() -> list[dict]:
    """The ingress gateway as `make istio-install` has it (istio/install/gateway-values.yaml), cut
    to the lab: one replica of Istio's proxy, probed on Envoy's admin, tolerating the lab node."""
    security = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True}
    container = {"name": "istio-proxy", "image": f"{PROXY_IMAGE}:lab",
                 "ports": [{"name": "http-admin", "containerPort": PROXY_ADMIN_PORT}],
                 "readinessProbe": {"httpGet": {"path": "/ready", "port": PROXY_ADMIN_PORT}, "periodSeconds": 1,
                                    "failureThreshold": 1},
                 "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}, "securityContext": security}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE, "labels": GATEWAY_LABELS},
                  "spec": {"replicas": 1, "selector": {"matchLabels": GATEWAY_LABELS}, "template": {
                      "metadata": {"labels": GATEWAY_LABELS},
                      "spec": {"serviceAccountName": GATEWAY_NAME, "terminationGracePeriodSeconds": 2,
                               "securityContext": {"runAsNonRoot": True, "runAsUser": 1337,
                                                   "seccompProfile": {"type": "RuntimeDefault"}},
                               "tolerations": [{"key": "resilience-lab.io/lab-node", "operator": "Equal",
                                                "value": "true", "effect": "NoSchedule"}],
                               "containers": [container]}}}}
    account = {"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE}}
    return [account, deployment]
