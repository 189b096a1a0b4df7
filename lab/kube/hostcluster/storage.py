"""PersistentVolumes for the host cluster: rancher's local-path-provisioner (a process of the
cluster, admin credentials) behind the default StorageClass `local-path`. Each volume is a folder
under the cluster's state, created and removed by a helper Pod in kube-system."""

import json

from lab.host import binaries
from lab.host.procs import ProcessGroup, wait_until
from lab.kube.controlplane import ControlPlane
from lab.kube.hostcluster.layout import Layout

PROVISIONER = "rancher.io/local-path"
CONFIGMAP = "local-path-config"
# Any image with a POSIX shell serves the helper Pods: the local base image (`make images`).
HELPER_IMAGE = "docker.io/library/python:3.11-slim-bookworm"


class LocalPathProvisioner:
    def __init__(self, layout: Layout, plane: ControlPlane, group: ProcessGroup):
        self.layout, self.plane, self.group = layout, plane, group

    def manifests(self) -> list[dict]:
        scripts = {"setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                   "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n'}
        return [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIGMAP, "namespace": "kube-system"},
             "data": scripts},
            {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": "local-path",
                          "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
             "provisioner": PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"},
        ]

    def start(self, timeout: float = 30.0) -> "LocalPathProvisioner":
        folder = self.layout.dir / "local-path"
        (folder / "volumes").mkdir(parents=True, exist_ok=True)
        for manifest in self.manifests():
            self.plane.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(manifest))
        config = folder / "config.json"
        config.write_text(json.dumps({"nodePathMap": [
            {"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(folder / "volumes")]}]}))
        helper = folder / "helper-pod.yaml"
        helper.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "helper-pod"},
                                      "spec": {"containers": [{"name": "helper-pod", "image": HELPER_IMAGE,
                                                               "imagePullPolicy": "IfNotPresent"}]}}))
        self.proc = self.group.start("local-path-provisioner", [
            binaries.control_plane("local-path-provisioner"), "start", "--config", str(config),
            "--provisioner-name", PROVISIONER, "--namespace", "kube-system", "--helper-image", HELPER_IMAGE,
            "--kubeconfig", str(self.plane.admin_kubeconfig), "--configmap-name", CONFIGMAP,
            "--service-account-name", "default", "--helper-pod-file", str(helper)])
        # It has no health endpoint: its controller says when it runs.
        wait_until(lambda: "Started provisioner controller" in self.proc.log_tail(200), timeout,
                   "local-path-provisioner's controller", interval=0.2, proc=self.proc)
        return self
