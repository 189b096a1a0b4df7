"""The experiments layer: the talk's demo cases as data (cases.toml, cases.py), the one runner
(runner.py) on a substrate (substrates/: the lab, or a cluster), the talk's load and chaos
(demo.py), the autoscaling case (autoscale.py), the browser walk (browser.py), the report
(report.py), the lab/cluster comparison (compare.py) and the generated walkthroughs
(walkthrough.py). slo.py judges a run against its case's hypothesis; plots.py draws it."""
