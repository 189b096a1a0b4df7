"""The host layer: this machine's plumbing, with no Kubernetes in it: repo paths, finding the
programs, child processes, CPU groups, process-tree usage, Envoy's admin and plain balancers."""
