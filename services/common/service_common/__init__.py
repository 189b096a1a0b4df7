"""What both services share: reading settings from the environment (`settings`), Prometheus
metrics with a per-request hook (`metrics`), and the gunicorn life cycle (`gunicorn`: a clean
exit on a bad variable, the multiprocess metrics directory, drain on SIGTERM, no garbage
collection while a worker imports the app). Each service's
image carries this package next to its own (services/Dockerfile)."""
