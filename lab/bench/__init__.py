"""`python -m lab bench`: the services' and the lab's figures, written to reports/bench/ (docs/benchmarks.md
explains them). runner.py runs the sections (per_request.py, services.py, lab_recovery.py) with measure.py's tools and
judges them against targets.toml; apps/ holds the reference apps the services are compared with."""
