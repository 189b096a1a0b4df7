"""`make test-fast` (--no-processes): a test that starts a process without the `processes` marker
fails there, naming the marker; a marked one is left out. Run on a throwaway suite in-process."""

import pytest

pytest_plugins = ["pytester"]

SUITE = '''
import subprocess
import sys

import pytest


def test_pure():
    assert sum([1, 2]) == 3


def test_unmarked_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)


@pytest.mark.processes
def test_marked_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
'''


@pytest.fixture
def run_suite(pytester):
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeini("[pytest]\nmarkers =\n    processes: starts a process\n")

    def run(*args):
        return pytester.runpytest_inprocess("-p", "tests.conftest", *args)

    return run


def test_no_processes_fails_an_unmarked_test_that_starts_one_and_leaves_out_marked_ones(run_suite):
    result = run_suite("--no-processes")
    result.assert_outcomes(passed=1, failed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_unmarked_process starts a process: mark it `pytest.mark.processes`*"])


@pytest.mark.processes
def test_without_the_option_every_test_runs(run_suite):
    run_suite().assert_outcomes(passed=3)
