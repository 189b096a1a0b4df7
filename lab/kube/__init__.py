"""The kube layer: Kubernetes and Istio on this machine: the PKI and control plane, metrics-server,
the lab's node (node/), the mesh (mesh/), the LabCluster of them all (cluster.py), and the host
cluster (hostcluster/), a real kubelet beside the same control plane."""
