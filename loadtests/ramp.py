"""A ramp for HPA demos: up to --ramp-users over --ramp-up, hold for --ramp-hold, back to zero
over --ramp-down, then the run ends. Drives SqrtUser unless you name other user classes.

    locust -f loadtests/ramp.py --headless --host SQRT_URL --ramp-users 50 --ramp-up 1m --ramp-hold 3m --ramp-down 1m
    locust -f loadtests/locustfile.py,loadtests/ramp.py WebgatosUser --headless --host URL ...
"""

import locustfile
from locust import LoadTestShape
from locustfile import SqrtUser  # noqa: F401  (Locust runs the user classes this file names)


class RampShape(LoadTestShape):
    def tick(self):
        return locustfile.ramp_profile(self.runner.environment).tick(self.get_run_time())
