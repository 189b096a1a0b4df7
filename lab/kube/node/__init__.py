"""The lab's node: a stand-in for the kubelet, which cannot run here (no container runtime).

`LabNode` (lifecycle.py) registers a real Node on the lab's API server (lab/kube/controlplane.py)
and keeps its Lease fresh (status.py); the real kube-scheduler binds Pods to it. For every bound
Pod whose image it knows (RUNNABLE_IMAGES, pods.py: the repo's own services) it does a kubelet's
job with a local process group:

- starts the container's program on a loopback address of the Pod's own (127.x.y.z, the Pod's
  "IP"), with the Pod's environment resolved as a kubelet resolves it (env.py: values with $(VAR)
  references, Secret and ConfigMap keys, the downward API), a private /tmp, and the Pod's CPU
  limit when the machine lets us (lab/host/cgroups.py);
- runs the startup, liveness and readiness probes of the Pod spec (probes.py), restarts a
  container that exits or fails its liveness probe (restartPolicy Always, after `restart_delay`),
  and reports phase, conditions and container states through the Pod's status subresource
  (status.py);
- on deletion runs the preStop sleep, sends SIGTERM, SIGKILLs after the grace period and then
  removes the Pod object, as a kubelet does;
- serves the kubelet's resource metrics that metrics-server scrapes (kubelet_endpoint.py) and
  writes the replica state the chaos tool reads (replica_state.py).

What it leaves out: images other than RUNNABLE_IMAGES (such Pods are reported Waiting with the
reason), volumes other than /tmp, init containers and sidecars. The Pod's IP stays unset in its
status: EndpointSlices refuse loopback addresses, so the mesh (lab/kube/mesh/registry.py)
publishes the address to Istio itself. The node carries the taint NODE_TAINT, so only Pods that
tolerate it (the lab's values files) land here; other Pods stay Pending as on a cluster without
a fitting node.
"""
