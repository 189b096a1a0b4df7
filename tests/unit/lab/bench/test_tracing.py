"""The tracing section: the overhead is taken round by round, its target is data, and the requests
carry a gateway's B3 headers at the sampling rates measured (the chart's default among them)."""

import pytest
import yaml

from lab.bench import targets
from lab.bench.tracing import default_sampling_percentage, edge_headers, overhead, vegeta_targets
from lab.host.paths import CHARTS
from lab.observe.zipkin import chart_values


def test_overhead_is_the_median_of_the_rounds_ratios():
    # Round 2 ran on a slow machine for both servers: it moves neither the ratio nor the median.
    assert overhead([1.0, 2.0, 1.0], [1.1, 2.2, 1.3]) == pytest.approx(0.1)


def test_rounds_must_pair_up():
    with pytest.raises(ValueError):
        overhead([1.0, 2.0], [1.1])


def test_the_target_is_read_from_targets_toml(tmp_path):
    assert 0 < targets.tracing_cpu_overhead_at_most() <= 0.15
    path = tmp_path / "targets.toml"
    path.write_text("[tracing]\ncpu_overhead_at_most = 0.25\n")
    assert targets.tracing_cpu_overhead_at_most(path) == 0.25


def test_the_judged_rate_is_the_charts_default_and_the_lab_demos_sample_everything():
    values = yaml.safe_load((CHARTS / "webgatos" / "values.yaml").read_text())
    assert default_sampling_percentage() == values["istio"]["tracing"]["randomSamplingPercentage"] < 100
    # The demo's retried request must never be the one left unsampled.
    assert chart_values("http://127.0.0.1:9411/api/v2/spans")["istio"]["tracing"]["randomSamplingPercentage"] == 100


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 1.0])
def test_the_gateways_headers_sample_the_share_evenly_each_request_its_own_trace(share):
    headers = edge_headers(share, count=200)
    assert len({h["x-b3-traceid"] for h in headers}) == 200
    assert all(len(h["x-b3-traceid"]) == 32 and len(h["x-b3-spanid"]) == 16 for h in headers)
    decisions = [h["x-b3-sampled"] == "1" for h in headers]
    assert sum(decisions) == round(200 * share)
    if share:  # every stretch of 1/share requests holds one sampled request
        stretch = round(1 / share)
        assert all(sum(decisions[i:i + stretch]) == 1 for i in range(0, 200, stretch))


def test_vegeta_targets_are_blank_line_separated_blocks():
    text = vegeta_targets("http://127.0.0.1:1/api/session", [{"Cookie": "s=1", "x-b3-sampled": "0"}, {"Cookie": "s=1"}])
    assert text == ("GET http://127.0.0.1:1/api/session\nCookie: s=1\nx-b3-sampled: 0\n\n"
                    "GET http://127.0.0.1:1/api/session\nCookie: s=1\n")
