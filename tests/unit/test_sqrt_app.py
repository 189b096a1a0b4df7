"""sqrt through Flask's test client: the work, the bound on iterations, probes and metrics."""

import re

import pytest
from sqrt import Settings, SettingsError, create_app
from sqrt.app import burn


@pytest.fixture
def client():
    return create_app(Settings(max_iterations=2_000_000)).test_client()


def test_default_request_does_the_work_and_answers_ok(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "OK!"
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r"sqrt_iterations_total [1-9]", text)


@pytest.mark.parametrize("iterations", ["0", "1", "1000", "2000000", " 7 "])
def test_iterations_within_the_maximum(client, iterations):
    response = client.get("/", query_string={"iterations": iterations})
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "OK!"


@pytest.mark.parametrize(("iterations", "reason"), [
    ("-1", "iterations='-1' is not valid"),
    ("abc", "iterations='abc' is not valid"),
    ("1e6", "iterations='1e6' is not valid"),
    ("1.5", "iterations='1.5' is not valid"),
    ("", "iterations='' is not valid"),
    ("99999999999999999999", "not valid"),
    ("2000001", "iterations=2000001 is above the maximum 2000000"),
])
def test_bad_iterations_are_a_400_with_the_reason(client, iterations, reason):
    response = client.get("/", query_string={"iterations": iterations})
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)


def test_burn_is_the_walkthrough_loop():
    x = 0.0001
    for _ in range(10):
        x += x ** 0.5
    assert burn(10) == pytest.approx(x)
    assert burn(0) == 0.0001


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_metrics(client, path):
    assert client.get(path).status_code == 200


def test_settings_defaults_and_bad_values():
    settings = Settings.from_env({})
    assert (settings.max_iterations, settings.port, settings.workers) == (10_000_000, 8080, 1)
    for env, variable in (({"SQRT_MAX_ITERATIONS": "-3"}, "SQRT_MAX_ITERATIONS"),
                          ({"SQRT_MAX_ITERATIONS": "many"}, "SQRT_MAX_ITERATIONS"),
                          ({"PORT": "0"}, "PORT"),
                          ({"SHUTDOWN_DRAIN_SECONDS": "x"}, "SHUTDOWN_DRAIN_SECONDS")):
        with pytest.raises(SettingsError, match=f"^{variable}=.*not valid") as error:
            Settings.from_env(env)
        assert "\n" not in str(error.value)
