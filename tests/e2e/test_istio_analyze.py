"""`istioctl analyze` with the lab's API server on every render of both charts: each scenario is
installed in a namespace of its own next to the lab's istiod and ingress gateway, and Istio's
analyzers must find nothing above Info (no unknown gateway selector, no port the gateway's
Service lacks, no conflicting routes...). The gateway's port and bind address are the lab's."""

import json
import subprocess
import uuid

import chartlib
import pytest

from lab.host import binaries
from lab.host.procs import LOOPBACK, free_port
from lab.workloads.helm import run_helm

SCENARIOS = chartlib.scenarios()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_istio_analyzers_find_nothing_above_info(lab_cluster, scenario):
    namespace = f"analyze-{uuid.uuid4().hex[:6]}"
    port = free_port()
    lab_cluster.plane.create_namespace(namespace)
    lab_cluster.mesh.publish_port(port)
    try:
        run_helm("install", "lab", *scenario.helm_args(), "--namespace", namespace,
                 "--set", f"istio.gateway.port={port}", "--set", f"istio.gateway.bind={LOOPBACK}",
                 env=lab_cluster.plane.env(), home=lab_cluster.workdir / "helm")
        result = subprocess.run([binaries.control_plane("istioctl"), "analyze", "--namespace", namespace,
                                 "--output", "json"], capture_output=True, text=True, timeout=120,
                                env=lab_cluster.plane.env())
        messages = json.loads(result.stdout or "[]")
        above_info = [f"{m['level']} {m['code']} {m.get('origin', '')}: {m['message']}"
                      for m in messages if m["level"] != "Info"]
        assert not above_info, "\n".join(above_info)
        assert result.returncode == 0, result.stderr
    finally:
        lab_cluster.mesh.unpublish_port(port)
        lab_cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
