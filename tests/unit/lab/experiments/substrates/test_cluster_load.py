"""Locust in a cluster, as data: the Job's arguments are the lab's, its manifest passes PodSecurity
`restricted`, its log splits back into Locust's output and summary, and the summary becomes the
lab's record keys (no process is started here)."""

from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from lab.experiments import demo
from lab.experiments.substrates import cluster_load as load
from lab.host.paths import REPO_ROOT


def test_arrival_args_are_the_labs_with_paths_inside_the_pod():
    args = load.arrival_args("http://webgatos.rl-x.svc.cluster.local", 15)
    local = demo.locust_argv("http://webgatos.rl-x.svc.cluster.local", 15, Path("/elsewhere/summary.json"))
    assert len(args) == len(local) - 1
    assert args[:2] == ["-f", "/loadtests/arrival.py"]
    options = dict(zip(args[2::1], args[3::1], strict=False))
    assert options["--arrival-rate"] == "10" and options["--page-loads"] == "5"
    assert options["--arrival-seconds"] == "15" and options["--arrival-drain-seconds"] == "10"
    assert options["--gate-p95-ms"] == "off" and options["--gate-error-rate"] == "off"
    assert options["--summary-json"] == "/tmp/out/summary.json"
    assert options["--host"] == "http://webgatos.rl-x.svc.cluster.local"


def test_ramp_args_drive_sqrt_and_keep_the_history():
    args = load.ramp_args("http://sqrt.ns.svc.cluster.local", 4, 10, 40, 5)
    assert args[:2] == ["-f", "/loadtests/ramp.py"]
    assert " ".join(args).count("--ramp-") == 4 and "--csv-full-history" in args
    assert args[args.index("--csv") + 1] + "_stats_history.csv" == f"{load.OUTPUT_DIR}/{load.HISTORY}"
    assert (REPO_ROOT / "loadtests" / "ramp.py").exists()


def test_the_image_is_the_locust_the_venv_runs():
    image = load.locust_image()
    pin = next(line for line in (REPO_ROOT / "requirements-dev.txt").read_text().splitlines()
               if line.startswith("locust=="))
    assert image == f"locustio/locust:{pin.split('==')[1]}"
    manifests = list(yaml.safe_load_all((REPO_ROOT / "loadtests" / "k8s" / "locust.yaml").read_text()))
    assert image in {c["image"] for m in manifests if m and m["kind"] == "Deployment"
                     for c in m["spec"]["template"]["spec"]["containers"]}


@pytest.mark.parametrize("k8s_version", ["1.30", kubernetes_validate.utils.major_minor(
    kubernetes_validate.utils.latest_version())])
def test_the_job_is_strictly_valid(k8s_version):
    job = load.job_manifest("loadtest", load.arrival_args("http://svc", 15), load.locust_image())
    kubernetes_validate.validate(job, k8s_version, strict=True)


def test_the_job_runs_once_restricted_without_a_sidecar_or_token():
    job = load.job_manifest("loadtest", ["-f", "/loadtests/arrival.py"], "locustio/locust:1",
                            (load.SUMMARY, load.HISTORY))
    assert job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["seccompProfile"]["type"] == \
        "RuntimeDefault"
    (container,) = spec["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["resources"]["limits"] and container["resources"]["requests"]
    script = container["command"][2]
    assert 'locust "$@"' in script and "summary.json" in script and load.HISTORY in script
    assert container["args"] == ["-f", "/loadtests/arrival.py"]
    assert {v["name"]: v for v in spec["volumes"]}["loadtests"]["configMap"]["name"] == load.CONFIGMAP


def test_the_log_splits_into_locusts_output_and_its_files():
    log = "\n".join(["Locust started", "stats table", "=== summary.json", '{"requests": 3}', "",
                     "=== locust_stats_history.csv", "Timestamp,Name", "1,Aggregated", "", "=== not-ours",
                     "still the history"])
    own, files = load.split_log(log, (load.SUMMARY, load.HISTORY))
    assert own == "Locust started\nstats table"
    assert files[load.SUMMARY] == '{"requests": 3}'
    assert files[load.HISTORY] == "Timestamp,Name\n1,Aggregated\n\n=== not-ours\nstill the history"
    assert load.split_log("only output", (load.SUMMARY,)) == ("only output", {})


def test_the_record_has_the_labs_keys_and_times_since_locusts_start():
    summary = {"started_at": 1000.6, "users_created": 150, "users_completed": 140, "users_failed": 10,
               "users_failed_by_type": {"http_503": 10}, "requests": 700, "failed_requests": 12,
               "failed_requests_by_type": {"http_503": 12}, "color_changes": 3, "p95_ms": 41.0,
               "responses_by_replica": {"a": 350, "b": 350},
               "timeline": [{"second": 0, "requests": 10, "failed_requests": 0, "users_created": 10},
                            {"second": 1, "requests": 20, "failed_requests": 2, "users_created": 10}]}
    kills = [{"epoch": 1008.25, "result": "killed"}, {"epoch": 1015.5, "result": "killed"}]
    record = load.session_record(summary, kills)
    assert record["kills"] == 2 and record["kill_times_s"] == [8.25, 15.5]
    assert record["series"] == [{"t": 0, "requests": 10, "failures": 0}, {"t": 1, "requests": 20, "failures": 2}]
    assert {key: record[key] for key in ("users_created", "users_completed", "users_failed", "requests",
                                         "failed_requests", "color_changes", "p95_ms")} == {
        "users_created": 150, "users_completed": 140, "users_failed": 10, "requests": 700, "failed_requests": 12,
        "color_changes": 3, "p95_ms": 41.0}
    assert record["responses_by_replica"] == {"a": 350, "b": 350}
    assert load.session_record({}, [])["series"] == []
