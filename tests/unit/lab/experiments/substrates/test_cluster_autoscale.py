"""The autoscale case on a cluster, as data: the HPA's demo pace over the chart's values, the ramp
scaled by DEMO_SECONDS, and the kubelet's CPU figures read from metrics.k8s.io (no process)."""

import pytest

from lab.experiments import autoscale
from lab.experiments.substrates import cluster_autoscale as scaling
from lab.kube.metrics_server import METRIC_RESOLUTION_SECONDS


def test_the_demo_pace_scales_down_within_the_ramps_quiet_time():
    values = scaling.values()
    assert values["autoscaling"]["enabled"] and values["autoscaling"]["minReplicas"] == 1
    assert values["autoscaling"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] < 300  # the chart's
    assert values["resources"]["requests"]["cpu"]  # the chart's own Pods: the HPA needs the request
    bound = autoscale.scale_down_bound(values, METRIC_RESOLUTION_SECONDS, 5.0)
    assert bound < scaling.ramp_for(15).quiet


@pytest.mark.parametrize("seconds, hold", [(8, 40), (15, 40), (20, 40), (60, 120)])
def test_the_ramp_holds_long_enough_for_the_hpa(seconds, hold):
    ramp = scaling.ramp_for(seconds)
    assert ramp.hold == hold and ramp.users == autoscale.DEFAULT_RAMP.users


@pytest.mark.parametrize("quantity, cores", [("250000000n", 0.25), ("1500u", 0.0015), ("25m", 0.025), ("2", 2.0),
                                             ("0", 0.0)])
def test_cpu_quantities_in_cores(quantity, cores):
    assert scaling.cores(quantity) == pytest.approx(cores)


def test_pod_cpu_sums_the_containers_of_each_pod():
    metrics = {"items": [{"metadata": {"name": "sqrt-a"}, "containers": [{"usage": {"cpu": "150m"}},
                                                                          {"usage": {"cpu": "20000000n"}}]},
                         {"metadata": {"name": "sqrt-b"}, "containers": []}]}
    assert scaling.pod_cpu(metrics) == {"sqrt-a": 0.17, "sqrt-b": 0}
    assert scaling.pod_cpu({}) == {}


def test_a_terminating_pod_is_not_ready():
    ready = {"type": "Ready", "status": "True"}
    assert scaling.ready({"metadata": {}, "status": {"conditions": [ready]}})
    assert not scaling.ready({"metadata": {"deletionTimestamp": "now"}, "status": {"conditions": [ready]}})
    assert not scaling.ready({"metadata": {}, "status": {}})
