"""What watches the lab (issue 36): a real Prometheus and its targets (prometheus.py, exporters.py,
replicas.py, lab_targets.py), the PromQL client the SLO judge uses (promql.py), and Zipkin."""
