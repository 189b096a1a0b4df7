"""The top layer: `python -m lab COMMAND`, one thin module per command (main.py dispatches)."""
