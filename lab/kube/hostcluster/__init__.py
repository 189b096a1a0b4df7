"""A one-node Kubernetes on this Linux machine (`make cluster-up CLUSTER=host`, root): the lab's
control plane and PKI (lab/kube/controlplane.py, pki.py) plus a real kubelet, containerd, runc,
the CNI bridge, kube-proxy, CoreDNS and metrics-server. Bring-up is a list of ordered steps
(cluster.py), each undone in reverse at teardown; what a killed run left behind is swept from the
state it recorded (host.py)."""
