"""The workloads layer: what runs on the lab's cluster: the one Helm runner (helm.py), the one
install path (install.py), and the webgatos topologies (topology.py)."""
