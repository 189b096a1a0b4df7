"""Fixtures of the chart tests; the helpers themselves live in tests/chartlib.py."""
