"""The experiments layer: the talk's demos measured on the lab (demo.py, autoscale.py), the browser
walk (browser.py) and the report (report.py)."""
