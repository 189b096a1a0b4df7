"""The talk's artillery profile as a Locust load shape: a constant arrival rate of new users
(ArrivalUser), each loading the page --page-loads times and leaving.

    locust -f loadtests/arrival.py --headless --host URL \\
        --arrival-rate 10 --arrival-seconds 120 --page-loads 1 --summary-json reports/loadtest/summary.json

The shape keeps Locust's user count at rate x seconds for the whole run, so the dispatcher starts
exactly that many users at `rate` per second (in batches of floor(rate), once per batch interval)
and never stops one early. After the last arrival it waits up to --arrival-drain-seconds for the
users still visiting, then ends the run.
"""

import locustfile
from locust import LoadTestShape
from locustfile import ArrivalUser  # noqa: F401  (Locust runs the user classes this file names)


class ArrivalShape(LoadTestShape):
    arrival = None

    def tick(self):
        environment = self.runner.environment
        self.arrival = locustfile.arrival_profile(environment)
        step = self.arrival.tick(self.get_run_time(), locustfile.RUN.totals().users_finished)
        return None if step is None else (*step, [ArrivalUser])
