"""The local lab: the Kubernetes experiments on one machine, with real processes on loopback.

Layered as envtest and kind are, each layer importing only the ones below it
(tests/unit/lab/test_layers.py): host/ (this machine), kube/ (Kubernetes and Istio on it),
workloads/ (the charts installed there), experiments/ and bench/ (what is measured), cli/ (the
`python -m lab` commands); compose/ sits with the experiments."""
