"""Prometheus' configuration and file_sd targets, as the lab writes them (no server started)."""

import json

import pytest
import yaml

from lab.observe.prometheus import Prometheus, render_config, target_group


def test_one_scrape_config_reads_every_target_file(tmp_path):
    config = render_config(tmp_path / "targets", "1s")
    assert config["global"]["scrape_interval"] == "1s"
    [job] = config["scrape_configs"]
    assert job["file_sd_configs"] == [{"files": [str(tmp_path / "targets" / "*.json")], "refresh_interval": "1s"}]
    yaml.safe_dump(config)  # what start() writes


def test_a_target_group_sets_job_and_path():
    group = target_group("gateway", ["127.0.0.1:15000"], "/stats/prometheus", {"case": "c"})
    assert group == {"targets": ["127.0.0.1:15000"],
                     "labels": {"case": "c", "job": "gateway", "__metrics_path__": "/stats/prometheus"}}


@pytest.mark.parametrize("target", ["127.0.0.1", ":80", "host:port", "http://127.0.0.1:80/"])
def test_a_bad_target_is_refused_naming_it(target):
    with pytest.raises(ValueError, match="bad scrape target .* for job 'web': use host:port"):
        target_group("web", [target])


def test_set_targets_writes_and_empties_the_jobs_file(tmp_path):
    server = Prometheus(tmp_path)
    server.set_targets("webgatos", ["127.1.2.3:8080"], labels={"pod": "a"})
    written = json.loads((tmp_path / "targets" / "webgatos.json").read_text())
    assert written == [target_group("webgatos", ["127.1.2.3:8080"], labels={"pod": "a"})]
    server.set_targets("webgatos", [])
    assert json.loads((tmp_path / "targets" / "webgatos.json").read_text()) == []
    assert not list((tmp_path / "targets").glob("*.tmp"))


@pytest.mark.parametrize("job", ["", "a b", "../x", "a/b"])
def test_a_bad_job_name_is_refused(tmp_path, job):
    with pytest.raises(ValueError, match="bad job name"):
        Prometheus(tmp_path).set_targets(job, ["127.0.0.1:1"])


def test_without_kube_api_the_lab_keeps_its_one_scrape_config(tmp_path):
    assert render_config(tmp_path / "targets", "1s") == render_config(tmp_path / "targets", "1s", None)
    assert [job["job_name"] for job in render_config(tmp_path / "targets")["scrape_configs"]] == ["lab"]


def test_kube_api_scrapes_its_own_folder_over_https_with_the_credentials_files(tmp_path):
    credentials = {"ca_file": "/p/ca.crt", "cert_file": "/p/client.crt", "key_file": "/p/client.key"}
    lab, kube_api = render_config(tmp_path / "targets", "1s", credentials)["scrape_configs"]
    assert lab["file_sd_configs"][0]["files"] == [str(tmp_path / "targets" / "*.json")]  # not the subfolder
    assert kube_api == {"job_name": "kube_api", "honor_labels": False, "scheme": "https", "tls_config": credentials,
                        "file_sd_configs": [{"files": [str(tmp_path / "targets" / "kube_api" / "*.json")],
                                             "refresh_interval": "1s"}]}


def test_a_token_goes_in_as_a_bearer_credentials_file(tmp_path):
    _, kube_api = render_config(tmp_path, "1s", {"ca_file": "/p/ca.crt", "token_file": "/p/token",
                                                 "insecure_skip_verify": True})["scrape_configs"]
    assert kube_api["authorization"] == {"type": "Bearer", "credentials_file": "/p/token"}
    assert kube_api["tls_config"] == {"ca_file": "/p/ca.crt", "insecure_skip_verify": True}


@pytest.mark.parametrize("credentials, message", [
    ({"password": "x"}, "unknown kube_api credential"),
    ({"cert_file": "/p/client.crt"}, "needs its key")])
def test_bad_kube_api_credentials_are_refused(tmp_path, credentials, message):
    with pytest.raises(ValueError, match=message):
        render_config(tmp_path, "1s", credentials)


def test_groups_scraped_through_the_api_server_go_to_their_folder(tmp_path):
    server = Prometheus(tmp_path)
    group = target_group("webgatos", ["10.0.0.1:6443"], "/api/v1/namespaces/n/pods/p:8080/proxy/metrics")
    server.set_groups("webgatos", [group], kube_api=True)
    assert json.loads((tmp_path / "targets" / "kube_api" / "webgatos.json").read_text()) == [group]
    assert not (tmp_path / "targets" / "webgatos.json").exists()
