"""Endpoints for istiod. EndpointSlices refuse loopback addresses ("may not be in the loopback
range"), so a Pod of the lab's node cannot be an endpoint the usual way. `WorkloadRegistry` gives
each one a WorkloadEntry instead, Istio's own record of a workload outside Kubernetes (a VM's):
same labels as the Pod, so the chart's Service selects it, its loopback address and container
ports, owned by the Pod (the garbage collector removes it with the Pod), and a `Healthy`
condition that follows the Pod's readiness probe, which istiod honours
(proxy.istio.io/health-checks-enabled), as a VM's agent would report it."""

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.kube.controlplane import ControlPlane
from lab.kube.mesh.gateway import PROXY_IMAGE
from lab.kube.node.pods import PodRun, image_repository
from lab.kube.node.status import now_rfc3339

HEALTH_ANNOTATION = "proxy.istio.io/health-checks-enabled"


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
