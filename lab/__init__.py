"""The local lab: the Kubernetes experiments on one machine, with real processes on loopback."""
