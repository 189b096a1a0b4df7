"""Locust load tests for resilience-lab that check behaviour, not only status codes.

User classes (name one on the command line; docs/loadtests.md has the whole story):
  WebgatosUser  a browsing user with its own cookie jar; a request fails when the page's color
                is missing or differs from the one this user saw before (the talk's check)
  ArrivalUser   the talk's artillery virtual user: loads the page --page-loads times, then
                leaves; driven by loadtests/arrival.py (a constant arrival rate of new users)
  SqrtUser      keeps the sqrt service busy (HPA demos); loadtests/ramp.py ramps it up and down

    locust -f loadtests/locustfile.py WebgatosUser --headless -u 4 -r 4 -t 10s --host URL
    locust -f loadtests/arrival.py --headless --host URL --arrival-rate 10 --arrival-seconds 120

Quality gates (Locust's own hooks): p95 latency and error rate, checked when Locust quits; a
breach logs one line starting "quality gate failed:" and makes the exit code 1.
--summary-json PATH writes the run's record (users, errors by type, color changes, timeline).
"""

import argparse
import json
import logging
import os
import random
import sys
import time
from pathlib import Path

import gevent
import loadlogic
from locust import FastHttpUser, between, constant, events, task
from locust.runners import MasterRunner, WorkerRunner

logger = logging.getLogger("loadtests")

TALLY_REPORT_KEY = "resilience_lab_tally"
# A visitor that has left idles this long: a user that stops itself would be started again by
# Locust's dispatcher, which keeps the user count at its target.
LEFT_IDLE_SECONDS = 365 * 24 * 3600.0


class RunState:
    """This process's tally, the workers' latest tallies (on a master) and the run's start."""

    def __init__(self):
        self.tally = loadlogic.Tally()
        self.worker_tallies: dict[str, dict] = {}
        self.started_at: float | None = None
        self.cpu_at_start: loadlogic.CpuSample | None = None

    def reset(self) -> None:
        self.tally = loadlogic.Tally()
        self.worker_tallies = {}
        self.started_at = time.time()
        self.cpu_at_start = loadlogic.CpuSample.now()

    def totals(self) -> loadlogic.Tally:
        return loadlogic.Tally.merged([self.tally.snapshot(), *self.worker_tallies.values()])


RUN = RunState()


# --- options -------------------------------------------------------------------------------

# (flag, environment variable, default, parser, help); parsed values land on parsed_options.
OPTIONS = [
    ("--gate-p95-ms", "LOCUST_GATE_P95_MS", "100", loadlogic.p95_threshold_ms,
     "Quality gate: highest allowed p95 response time in ms, or 'off'."),
    ("--gate-error-rate", "LOCUST_GATE_ERROR_RATE", "0", loadlogic.error_rate_threshold,
     "Quality gate: highest allowed share of failed requests, 0..1 or a percentage (1%), or 'off'."),
    ("--summary-json", "LOCUST_SUMMARY_JSON", "", str,
     "Write the run's summary (users, errors by type, color changes, gates, timeline) to this JSON file."),
    ("--page-loads", "LOCUST_PAGE_LOADS", "1", loadlogic.positive_int,
     "ArrivalUser: page loads per virtual user (the talk: 1)."),
    ("--arrival-rate", "LOCUST_ARRIVAL_RATE", "10", loadlogic.positive_rate,
     "Arrival profile: new users per second (the talk: 10)."),
    ("--arrival-seconds", "LOCUST_ARRIVAL_SECONDS", "120", loadlogic.duration_seconds,
     "Arrival profile: how long users keep arriving, e.g. 120 or 2m (the talk: 120 s)."),
    ("--arrival-drain-seconds", "LOCUST_ARRIVAL_DRAIN_SECONDS", "30", loadlogic.duration_seconds,
     "Arrival profile: how long to wait, after the last arrival, for visiting users to finish."),
    ("--ramp-users", "LOCUST_RAMP_USERS", "50", loadlogic.positive_int,
     "Ramp profile: users at the top of the ramp."),
    ("--ramp-up", "LOCUST_RAMP_UP", "60s", loadlogic.duration_seconds, "Ramp profile: time to reach --ramp-users."),
    ("--ramp-hold", "LOCUST_RAMP_HOLD", "120s", loadlogic.duration_seconds, "Ramp profile: time at the top."),
    ("--ramp-down", "LOCUST_RAMP_DOWN", "60s", loadlogic.duration_seconds, "Ramp profile: time back to 0 users."),
    ("--sqrt-iterations", "LOCUST_SQRT_ITERATIONS", "1000000", loadlogic.positive_int,
     "SqrtUser: iterations per request (the sqrt service's default is 1000000)."),
]


def _naming_env_var(parse, env_var: str):
    """argparse names the flag in its error; the value may have come from the variable instead."""
    def parse_option(text):
        try:
            return parse(text)
        except argparse.ArgumentTypeError as error:
            raise argparse.ArgumentTypeError(f"{error} (from the flag or {env_var})") from None
    return parse_option


@events.init_command_line_parser.add_listener
def add_options(parser, **_kwargs):
    for flag, env_var, default, parse, help_text in OPTIONS:
        parser.add_argument(flag, env_var=env_var, default=default, type=_naming_env_var(parse, env_var),
                            help=f"{help_text} Env: {env_var}. Default: {default or 'none'}.")


def option(environment, name: str):
    """A custom option's value, parsed again in case Locust's web UI handed it back as text."""
    parse = next(entry[3] for entry in OPTIONS if entry[0] == "--" + name.replace("_", "-"))
    value = getattr(environment.parsed_options, name)
    return parse(value) if isinstance(value, str) else value


def gates_of(environment) -> loadlogic.Gates:
    return loadlogic.Gates(p95_ms=option(environment, "gate_p95_ms"),
                           error_rate=option(environment, "gate_error_rate"))


def arrival_profile(environment) -> loadlogic.ArrivalProfile:
    return loadlogic.ArrivalProfile(rate=option(environment, "arrival_rate"),
                                    seconds=option(environment, "arrival_seconds"),
                                    drain_seconds=option(environment, "arrival_drain_seconds"))


def ramp_profile(environment) -> loadlogic.RampProfile:
    return loadlogic.RampProfile(users=option(environment, "ramp_users"),
                                 up_seconds=option(environment, "ramp_up"),
                                 hold_seconds=option(environment, "ramp_hold"),
                                 down_seconds=option(environment, "ramp_down"))


# --- users ---------------------------------------------------------------------------------


class TalliedUser(FastHttpUser):
    """Counts itself as created, and as failed (by its first error type) at its first failure."""

    abstract = True
    connection_timeout = 5.0
    network_timeout = 30.0

    def on_start(self):
        self.first_error: str | None = None
        RUN.tally.user_created(time.time())

    def record(self, response, error: str | None) -> None:
        replica = response.headers.get("X-Replica") if response.headers else None
        if replica:
            RUN.tally.responses_by_replica[replica] += 1
        if error is None:
            response.success()
            return
        response.failure(error)
        detail = loadlogic.failure_detail(at=time.time(), status=response.status_code,
                                          elapsed_ms=response.request_meta.get("response_time"), replica=replica,
                                          body=response.text if (response.status_code or 0) >= 400 else None,
                                          exception=response.request_meta.get("exception"))
        RUN.tally.request_failed(error, first_of_user=self.first_error is None, detail=detail)
        self.first_error = self.first_error or error


class ColorCheckingUser(TalliedUser):
    """Loads the page with its own cookie jar (one per FastHttpUser) and checks the color."""

    abstract = True

    def on_start(self):
        super().on_start()
        self.color_check = loadlogic.ColorCheck()

    def load_page(self) -> None:
        with self.client.get("/", name="/", catch_response=True) as response:
            error = loadlogic.response_error(response.status_code, response.request_meta["exception"])
            if error is None:
                error = self.color_check.observe(response.text)
            self.record(response, error)


class WebgatosUser(ColorCheckingUser):
    """A person reloading the webgatos page about once a second, for as long as the run lasts."""

    wait_time = between(0.5, 1.5)

    @task
    def reload_page(self):
        self.load_page()


class ArrivalUser(ColorCheckingUser):
    """The talk's artillery virtual user: arrives, loads the page --page-loads times back to back,
    and leaves, counting as completed or failed (see loadtests/arrival.py for the arrival rate)."""

    def wait_time(self):
        return LEFT_IDLE_SECONDS

    def on_start(self):
        # Locust starts floor(rate) users at once; a random offset within the batch interval
        # spreads their arrivals over it, as artillery spreads its arrivals evenly.
        gevent.sleep(random.uniform(0, arrival_profile(self.environment).batch_interval))
        super().on_start()
        self.visited = False

    @task
    def visit(self):
        if self.visited:
            return
        self.visited = True
        for _ in range(option(self.environment, "page_loads")):
            self.load_page()
        RUN.tally.user_finished(failed=self.first_error is not None)


class SqrtUser(TalliedUser):
    """The php-apache walkthrough's load generator (`while sleep 0.01; do wget ...; done`)."""

    wait_time = constant(0.01)

    @task
    def compute(self):
        iterations = option(self.environment, "sqrt_iterations")
        with self.client.get(f"/?iterations={iterations}", name="/?iterations=N", catch_response=True) as response:
            error = loadlogic.response_error(response.status_code, response.request_meta["exception"])
            if error is None and (response.text or "").strip() != "OK!":
                error = loadlogic.UNEXPECTED_BODY
            self.record(response, error)


# --- run lifecycle -------------------------------------------------------------------------


def fail_fast(message: str) -> None:
    """Stop before the run starts with one clear line (exit code 2, as argparse does)."""
    sys.stderr.write(f"locust: error: {message}\n")
    sys.exit(2)


@events.init.add_listener
def check_before_start(environment, runner, **_kwargs):
    options = environment.parsed_options
    if options is None or isinstance(runner, WorkerRunner) or not options.headless:
        return
    if environment.shape_class is None and not options.user_classes and len(environment.user_classes) > 1:
        names = " | ".join(sorted(cls.__name__ for cls in environment.user_classes))
        fail_fast(f"name the user class to run ({names}), e.g. `locust -f loadtests/locustfile.py WebgatosUser`")
    problem = loadlogic.target_problem(environment.host)
    if problem:
        fail_fast(problem)


@events.test_start.add_listener
def on_test_start(environment, **_kwargs):
    RUN.reset()


@events.report_to_master.add_listener
def on_report_to_master(client_id, data, **_kwargs):
    data[TALLY_REPORT_KEY] = RUN.tally.snapshot()


@events.worker_report.add_listener
def on_worker_report(client_id, data, **_kwargs):
    if TALLY_REPORT_KEY in data:
        RUN.worker_tallies[client_id] = data[TALLY_REPORT_KEY]


@events.quitting.add_listener
def check_gates_and_write_summary(environment, **_kwargs):
    if isinstance(environment.runner, WorkerRunner) or RUN.started_at is None:
        return
    try:
        gates = gates_of(environment)
    except argparse.ArgumentTypeError as error:  # a value typed into the web UI
        logger.error("quality gate failed: bad threshold: %s", error)
        environment.process_exit_code = 2
        return
    total = environment.stats.total
    tally = RUN.totals()
    requests = total.num_requests
    p95_ms = total.get_response_time_percentile(0.95) if requests else None
    p50_ms = total.get_response_time_percentile(0.5) if requests else None
    result = gates.evaluate(requests=requests, failures=total.num_failures,
                            failures_by_type=tally.failed_requests_by_type, p95_ms=p95_ms,
                            code_exceptions=len(environment.runner.exceptions))
    load = loadlogic.machine_load(RUN.cpu_at_start, loadlogic.CpuSample.now(), os.getloadavg()[0], os.cpu_count() or 1)
    (logger.info if result.passed else logger.error)(result.line(gates, load))
    # The gates decide the exit code, not Locust's "any failure means 1".
    environment.process_exit_code = 0 if result.passed else 1

    path = option(environment, "summary_json")
    if not path:
        return
    arrival = getattr(environment.shape_class, "arrival", None)  # set by loadtests/arrival.py
    record = loadlogic.summary(
        tally=tally, gates=gates, result=result, requests=requests, failures=total.num_failures,
        p50_ms=p50_ms, p95_ms=p95_ms, started_at=RUN.started_at, ended_at=time.time(), target=environment.host,
        user_classes=[cls.__name__ for cls in environment.user_classes],
        requests_per_second=total.num_reqs_per_sec, failures_per_second=total.num_fail_per_sec, arrival=arrival,
        load=load)
    if isinstance(environment.runner, MasterRunner):
        record["workers"] = len(RUN.worker_tallies)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=2) + "\n")
    logger.info("summary written to %s", path)
