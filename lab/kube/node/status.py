"""What the lab's node tells the API server, as a kubelet does: its Node object (registration,
conditions, Lease) and each Pod's status (phase, conditions, container states)."""

import datetime
import os

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from lab.host import binaries
from lab.kube.node.pods import PodRun

NODE_TAINT = {"key": "resilience-lab.io/lab-node", "value": "true", "effect": "NoSchedule"}
LEASE_SECONDS = 40
LEASE_RENEW_SECONDS = 10


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_conditions() -> list[dict]:
    now = now_rfc3339()
    conditions = [("Ready", "True", "KubeletReady", "lab node is running Pods as local processes")]
    pressures = (("MemoryPressure", "SufficientMemory"), ("DiskPressure", "NoDiskPressure"),
                 ("PIDPressure", "SufficientPID"))
    conditions += [(kind, "False", f"KubeletHas{reason}", "") for kind, reason in pressures]
    return [{"type": kind, "status": status, "reason": reason, "message": message,
             "lastHeartbeatTime": now, "lastTransitionTime": now} for kind, status, reason, message in conditions]


class NodeObject:
    """The Node `name` on the API server `api` talks to: created tainted with NODE_TAINT, its
    status and Lease kept fresh by `heartbeat()`."""

    def __init__(self, api: client.CoreV1Api, name: str):
        self.api, self.name = api, name

    def register(self, kubelet_port: int) -> None:
        cpu = os.cpu_count() or 1
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name,
                                                             "kubernetes.io/os": "linux",
                                                             "resilience-lab.io/lab-node": "true"}},
                "spec": {"taints": [NODE_TAINT]}}
        try:
            self.api.create_node(node)
        except ApiException as error:
            if error.status != 409:
                raise
        capacity = {"cpu": str(cpu), "memory": "16Gi", "pods": "110", "ephemeral-storage": "50Gi"}
        self.api.patch_node_status(self.name, {"status": {
            "capacity": capacity, "allocatable": capacity,
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "conditions": node_conditions(),
            "nodeInfo": {"kubeletVersion": binaries.control_plane_versions()["KUBE_VERSION"],
                         "containerRuntimeVersion": "resilience-lab://processes", "operatingSystem": "linux",
                         "architecture": "amd64", "osImage": "resilience-lab node (processes on loopback)",
                         "kernelVersion": os.uname().release, "kubeProxyVersion": "", "machineID": "",
                         "systemUUID": "", "bootID": ""}}})
        self.renew_lease()

    def schedulable(self) -> bool:
        """Only the node's own taint left: the node lifecycle controller has found it Ready."""
        taints = self.api.read_node(self.name).spec.taints or []
        return [taint.key for taint in taints] == [NODE_TAINT["key"]]

    def renew_lease(self) -> None:
        api = client.CoordinationV1Api(self.api.api_client)
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now}}
        try:
            api.patch_namespaced_lease(self.name, "kube-node-lease", body)
        except ApiException as error:
            if error.status != 404:
                raise
            api.create_namespaced_lease("kube-node-lease", body)

    def heartbeat(self) -> None:
        self.renew_lease()
        self.api.patch_node_status(self.name, {"status": {"conditions": node_conditions()}})


def pod_status(run: PodRun) -> dict:
    """The Pod's status as a kubelet reports it, from what the node knows of its run; a
    condition keeps its transition time while its status stays (run.reported is the last report)."""
    now = now_rfc3339()
    running = run.proc is not None and run.proc.alive()
    if running:
        state = {"running": {"startedAt": run.started_at}}
    elif run.last_exit is not None and run.restart_at is not None:
        state = {"waiting": {"reason": "ContainerRestarting", "message": "restarting after the container exited"}}
    else:
        state = {"waiting": {"reason": run.waiting_reason or "ContainerCreating",
                             **({"message": run.waiting_message} if run.waiting_message else {})}}
    container_status = {"name": run.container, "image": run.image, "imageID": "", "ready": run.ready,
                        "started": running and run.started, "restartCount": run.restarts, "state": state}
    if running:
        container_status["containerID"] = f"lab://{run.proc.pid}"
    if run.last_exit is not None:
        container_status["lastState"] = {"terminated": run.last_exit}
    flags = {"PodScheduled": True, "Initialized": True, "PodReadyToStartContainers": running,
             "ContainersReady": run.ready, "Ready": run.ready}
    previous = {c["type"]: c for c in run.reported.get("conditions", [])}
    conditions = []
    for kind, value in flags.items():
        status = "True" if value else "False"
        old = previous.get(kind)
        since = old["lastTransitionTime"] if old and old["status"] == status else now
        conditions.append({"type": kind, "status": status, "lastTransitionTime": since, "lastProbeTime": None})
    return {"phase": "Running" if running or run.restarts else "Pending", "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}], "startTime": run.reported.get("startTime", now),
            "conditions": conditions, "containerStatuses": [container_status]}


def delete_pod(api: client.CoreV1Api, namespace: str, name: str, uid: str) -> None:
    """The kubelet's last word on a Pod: delete it for good (grace 0, this uid only)."""
    try:
        api.delete_namespaced_pod(name, namespace, grace_period_seconds=0,
                                  body=client.V1DeleteOptions(grace_period_seconds=0,
                                                              preconditions=client.V1Preconditions(uid=uid)))
    except ApiException as error:
        if error.status not in (404, 409):
            raise
