"""Fixtures of the chart tests; the helpers themselves live in chartlib.py."""

import os

import chartlib
import pytest


@pytest.fixture(scope="session")
def istio_schemas():
    """Strict validators built from Istio's CRD bundle; a clear skip (a failure under CI) when absent."""
    bundle = chartlib.istio_crds_path()
    if bundle is None:
        if os.environ.get("CI") == "true":
            pytest.fail(chartlib.ISTIO_CRDS_HINT)
        pytest.skip(chartlib.ISTIO_CRDS_HINT)
    return chartlib.istio_schemas(bundle)
