"""webgatos's settings: defaults, and one clear line naming the variable for every bad value."""

import pytest
from webgatos.settings import Settings, SettingsError


def test_defaults_follow_the_contract():
    settings = Settings.from_env({})
    assert settings.session_store == "memory"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.hazelcast_members == ("127.0.0.1:5701",)
    assert settings.hazelcast_cluster_name == "dev"
    assert settings.session_ttl_seconds == 1800
    assert settings.store_timeout_seconds == 1.0
    assert (settings.fault_error_rate, settings.fault_error_status, settings.fault_delay_seconds) == (0.0, 503, 0.0)
    assert settings.port == 8080
    assert settings.shutdown_drain_seconds == 5.0
    assert settings.workers == 1
    assert len(settings.secret_key) >= 32


def test_secret_key_is_random_per_process_unless_set():
    assert Settings.from_env({}).secret_key != Settings.from_env({}).secret_key
    assert Settings.from_env({"SECRET_KEY": "shared"}).secret_key == "shared"
    assert "shared" not in repr(Settings.from_env({"SECRET_KEY": "shared"}))


def test_replica_name_prefers_replica_name_then_hostname():
    assert Settings.from_env({"REPLICA_NAME": "webgatos-1", "HOSTNAME": "pod-x"}).replica_name == "webgatos-1"
    assert Settings.from_env({"HOSTNAME": "pod-x"}).replica_name == "pod-x"


@pytest.mark.parametrize("env", [
    {"SESSION_STORE": "REDIS"},
    {"SESSION_STORE": "hazelcast", "HAZELCAST_MEMBERS": "10.0.0.5:5701, hz-1:5702"},
    {"REDIS_URL": "rediss://:secret@redis.example:6380/2"},
    {"REDIS_URL": "redis://localhost:6379"},
])
def test_accepts_valid_forms(env):
    Settings.from_env(env)


@pytest.mark.parametrize(("env", "variable", "accepted"), [
    ({"SESSION_STORE": "postgres"}, "SESSION_STORE", "memory, redis, hazelcast"),
    ({"REDIS_URL": "http://localhost:6379/0"}, "REDIS_URL", "redis://"),
    ({"REDIS_URL": "redis://localhost:notaport/0"}, "REDIS_URL", "redis://"),
    ({"REDIS_URL": "redis://localhost:6379/zero"}, "REDIS_URL", "redis://"),
    ({"REDIS_URL": "redis:///0"}, "REDIS_URL", "redis://"),
    ({"HAZELCAST_MEMBERS": "localhost"}, "HAZELCAST_MEMBERS", "host:port"),
    ({"HAZELCAST_MEMBERS": "a:5701,,b:5701"}, "HAZELCAST_MEMBERS", "host:port"),
    ({"HAZELCAST_MEMBERS": "a:99999"}, "HAZELCAST_MEMBERS", "host:port"),
    ({"SESSION_TTL_SECONDS": "0"}, "SESSION_TTL_SECONDS", "whole number"),
    ({"SESSION_TTL_SECONDS": "ten"}, "SESSION_TTL_SECONDS", "whole number"),
    ({"STORE_TIMEOUT_SECONDS": "-1"}, "STORE_TIMEOUT_SECONDS", "number"),
    ({"FAULT_ERROR_RATE": "1.5"}, "FAULT_ERROR_RATE", "0 to 1"),
    ({"FAULT_ERROR_RATE": "nan"}, "FAULT_ERROR_RATE", "0 to 1"),
    ({"FAULT_ERROR_STATUS": "404"}, "FAULT_ERROR_STATUS", "500 to 599"),
    ({"FAULT_DELAY_SECONDS": "soon"}, "FAULT_DELAY_SECONDS", "number"),
    ({"PORT": "70000"}, "PORT", "1 to 65535"),
    ({"SHUTDOWN_DRAIN_SECONDS": "-5"}, "SHUTDOWN_DRAIN_SECONDS", "number"),
    ({"WEB_CONCURRENCY": "2"}, "WEB_CONCURRENCY", "exactly 1 worker"),
])
def test_bad_value_names_the_variable_in_one_line(env, variable, accepted):
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    message = str(error.value)
    assert message.startswith(f"{variable}=")
    assert accepted in message
    assert "\n" not in message


def test_several_workers_are_fine_with_a_shared_store():
    assert Settings.from_env({"SESSION_STORE": "redis", "WEB_CONCURRENCY": "4"}).workers == 4


def test_admin_token_is_off_by_default_and_kept_out_of_repr():
    assert Settings.from_env({}).admin_token is None
    token = "a" * 20 + "-secret"
    settings = Settings.from_env({"ADMIN_TOKEN": token})
    assert settings.admin_token == token and token not in repr(settings)


@pytest.mark.parametrize("token", ["short-token", "has a space in it!!", "é" * 20, "x" * 257])
def test_a_weak_or_malformed_admin_token_stops_with_one_line_that_does_not_show_it(token):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"ADMIN_TOKEN": token})
    message = str(error.value)
    assert message.startswith("ADMIN_TOKEN ") and "\n" not in message and token not in message
