"""Input checks of `python -m lab up` / TopologySpec: each bad value stops it with one line naming it,
before anything starts."""

import socket

import pytest

from lab.cli.main import main
from lab.workloads.topology import LabInputError, TopologySpec, scenario_names


def test_scenarios_are_the_mesh_files():
    assert {"retries", "no-retries"} <= set(scenario_names())


@pytest.mark.parametrize("spec, message", [
    (TopologySpec(store="mongodb"), "unknown store 'mongodb'"),
    (TopologySpec(scenario="nosuch"), "unknown scenario 'nosuch'"),
    (TopologySpec(replicas=0), "bad replica count 0"),
    (TopologySpec(replicas=99), "bad replica count 99"),
    (TopologySpec(port=70000), "bad gateway port 70000"),
])
def test_bad_spec_is_refused_with_a_clear_message(spec, message):
    with pytest.raises(LabInputError, match=message):
        spec.validate()


def test_a_port_in_use_is_named():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LabInputError, match=f"port {port} \\(gateway\\) on 127.0.0.1 is already in use"):
            TopologySpec(port=port).validate()


@pytest.mark.parametrize("argv, message", [
    (["--store", "mongodb"], "lab up: unknown store 'mongodb': choose one of memory, redis, hazelcast"),
    (["--scenario", "nosuch"], "lab up: unknown scenario 'nosuch'"),
    (["--replicas", "two"], "lab up: bad replica count 'two'"),
    (["--replicas", "-1"], "lab up: bad replica count -1"),
])
def test_lab_up_command_refuses_bad_input_with_exit_code_2(argv, message, capsys):
    assert main(["up", "--port", "0", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_hazelcast_store_without_the_member_jar_says_what_to_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("HAZELCAST_JAR", str(tmp_path / "no-such.jar"))
    assert main(["up", "--port", "0", "--store", "hazelcast"]) == 2
    assert capsys.readouterr().err == "lab up: Hazelcast member jar not found: run `make hazelcast`\n"
