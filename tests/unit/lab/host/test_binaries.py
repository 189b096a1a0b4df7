"""The one override convention for the lab's programs (lab/host/binaries.py): the program's own
<NAME>_BIN, then the LAB_ASSETS folder, then the usual places; the names from before still work."""

import os
import stat

import pytest

from lab.host import binaries


def executable(path):
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def no_overrides(monkeypatch):
    for name in list(os.environ):
        if name.endswith("_BIN") or name in ("LAB_ASSETS", "REDIS_SERVER", "JAVA"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(("program", "variable"), [("kube-apiserver", "KUBE_APISERVER_BIN"), ("helm", "HELM_BIN"),
                                                   ("pilot-discovery", "PILOT_DISCOVERY_BIN"),
                                                   ("redis-server", "REDIS_SERVER_BIN")])
def test_each_program_has_its_own_variable(program, variable):
    assert binaries.override_variable(program) == variable


def test_the_programs_variable_comes_first_then_the_assets_folder_then_the_usual_place(no_overrides, tmp_path):
    usual = executable(tmp_path / "usual")
    assets = tmp_path / "assets"
    assets.mkdir()
    in_assets = executable(assets / "etcd")
    own = executable(tmp_path / "own-etcd")
    assert binaries.find("etcd", usual, missing="x") == str(usual)
    no_overrides.setenv("LAB_ASSETS", str(assets))
    assert binaries.find("etcd", usual, missing="x") == str(in_assets)
    no_overrides.setenv("ETCD_BIN", str(own))
    assert binaries.find("etcd", usual, missing="x") == str(own)


def test_a_variable_naming_no_executable_falls_through(no_overrides, tmp_path):
    usual = executable(tmp_path / "usual")
    no_overrides.setenv("HELM_BIN", str(tmp_path / "nothing-here"))
    assert binaries.find("helm", usual, missing="x") == str(usual)


def test_the_names_from_before_the_convention_still_count(no_overrides, tmp_path):
    java = executable(tmp_path / "java")
    no_overrides.setenv("JAVA", str(java))
    assert binaries.java() == str(java)


def test_nothing_found_says_what_to_run(no_overrides, tmp_path):
    with pytest.raises(binaries.MissingBinary, match=r"^vegeta not found: run `make vegeta`$"):
        binaries.find("vegeta", tmp_path / "absent", missing="run `make vegeta`")


def test_hazelcast_missing_says_why(no_overrides, tmp_path):
    no_overrides.setenv("JAVA_BIN", str(executable(tmp_path / "java")))
    no_overrides.setenv("HAZELCAST_JAR", str(tmp_path / "no-such.jar"))
    assert binaries.hazelcast_missing() == "Hazelcast member jar not found: run `make hazelcast`"
    jar = tmp_path / "hazelcast-5.5.0.jar"
    jar.write_bytes(b"")
    no_overrides.setenv("HAZELCAST_JAR", str(jar))
    assert binaries.hazelcast_missing() is None
