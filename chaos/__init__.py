"""Pod chaos for resilience-lab: a safe, scriptable pod killer for Kubernetes (`python -m chaos k8s`)
and for the local lab's replicas (`python -m chaos local`). See chaos/README.md."""
