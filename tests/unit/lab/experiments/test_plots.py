"""The report's figures (lab/experiments/plots.py): written, well-formed SVG, labelled with units,
kills and rescales marked, phases shaded, byte-identical on a second write, and a clear note where
there is nothing to draw."""

import xml.etree.ElementTree as ET

import pytest

from lab.experiments import plots

SVG = "{http://www.w3.org/2000/svg}"
START = 1_765_000_000.0  # the epoch the load started


def case(**fields):
    series = [{"t": t, "requests": 40.0, "failures": 6.0 if t in (21, 41) else 0.0} for t in range(60)]
    base = {"name": "chaos-redis-2", "substrate": "lab", "series": series, "kill_times_s": [20.5, 40.2],
            "started_at": START, "seconds": 60,
            "phases": {"baseline": [START, START + 20.5], "fault": [START + 20.5, START + 45],
                       "recovery": [START + 45, START + 60]}}
    return {**base, **fields}


def scaling(**fields):
    base = {"name": "autoscale", "kind": "autoscale", "app": "sqrt",
            "ramp": {"users": 4, "up_s": 10, "hold_s": 60, "down_s": 5},
            "load_over_s": 76.0, "scale_down_bound_s": 75.0,
            "events": [{"t": 8.7, "message": "New size: 3; reason: cpu resource utilization above target"},
                       {"t": 114.7, "message": "New size: 1; reason: All metrics below target"}],
            "samples": [{"t": t, "replicas": 1 if t < 12 else 3, "desired": 1 if t < 9 else 3, "ready": 1,
                         "utilization": 50, "cpu": {"sqrt-a": 0.2, **({"sqrt-b": 0.1} if t > 12 else {})}}
                        for t in range(0, 120, 2)],
            "load": [{"t": t, "users": 4, "rps": 20.0, "p95_ms": None if t == 1 else 400.0} for t in range(1, 76)]}
    return {**base, **fields}


def slo(**fields):
    base = {"verdict": "broken", "time_to_recover_s": 4.5, "error_budget_spent": 0.4, "phases": {
        "baseline": [{"check": "availability", "promql": "q", "value": 1.0, "bound": 0.99, "ok": True, "reason": ""},
                     {"check": "p95_ms", "promql": "q", "value": 120.0, "bound": 1000, "ok": True, "reason": ""}],
        "fault": [{"check": "availability", "promql": "q", "value": 0.97, "bound": 0.99, "ok": False,
                   "reason": "below"}],
        "recovery": [{"check": "availability", "promql": "q", "value": None, "bound": 0.99, "ok": False,
                      "reason": "Prometheus returned no samples"},
                     {"check": "p95_ms", "promql": "q", "value": 200.0, "bound": 1000, "ok": True, "reason": ""}]}}
    return {**base, **fields}


def parse(path):
    """The figure's root and every text it shows."""
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return root, [text.text for text in root.iter(f"{SVG}text") if text.text]


def ids(root, prefix):
    return sorted(element.get("id") for element in root.iter() if (element.get("id") or "").startswith(prefix))


def test_a_case_figure_has_units_a_legend_its_kills_and_phases(tmp_path):
    path = plots.case_figure(case(), tmp_path / "case.svg")
    root, texts = parse(path)
    assert path == tmp_path / "case.svg"
    assert "seconds since the load started (s)" in texts and "requests/s" in texts
    assert {"failed requests/s", "pod kill (2)", "baseline phase", "fault phase", "recovery phase"} <= set(texts)
    assert "chaos-redis-2: requests over time (lab)" in texts
    assert ids(root, "kill-") == ["kill-1", "kill-2"]
    assert ids(root, "phase-") == ["phase-baseline", "phase-fault", "phase-recovery"]


def test_prometheus_series_get_a_panel_per_unit_with_their_labels(tmp_path):
    prometheus = {"gateway 5xx (requests/s)": [[START + t, "6" if t == 22 else "0"] for t in range(0, 60, 2)],
                  "availability (ratio)": [(START + t, 1.0) for t in range(0, 60, 2)],
                  "replica 5xx (requests/s)": []}
    root, texts = parse(plots.case_figure(case(), tmp_path / "case.svg", prometheus))
    assert {"gateway 5xx (requests/s)", "availability (ratio)", "replica 5xx (requests/s): no data"} <= set(texts)
    assert len(ids(root, "axes_")) == 3  # the client's requests, Prometheus' requests/s, Prometheus' ratio
    assert texts.count("ratio") == 1 and texts.count("requests/s") == 3  # two axes and the first legend
    assert texts.count("from Prometheus") == 2
    assert ids(root, "kill-") == ["kill-1", "kill-2"]  # the first panel's; the others draw them unnamed


def test_figures_are_byte_identical_when_written_twice(tmp_path):
    prometheus = {"availability (ratio)": [(START + t, 1.0) for t in range(0, 60, 5)]}
    for name, draw in [("case", lambda p: plots.case_figure(case(), p, prometheus)),
                       ("autoscale", lambda p: plots.autoscale_figure(scaling(), p)),
                       ("slo", lambda p: plots.phase_chart(case(slo=slo()), p))]:
        first, second = draw(tmp_path / f"{name}-1.svg"), draw(tmp_path / f"{name}-2.svg")
        assert first.read_bytes() == second.read_bytes(), name
        assert b"<dc:date>" not in first.read_bytes()


def test_figures_of_two_cases_do_not_share_ids(tmp_path):
    """The HTML report may inline several SVGs: the hash salt per case keeps their defs apart."""
    defs = []
    for name in ("memory-2", "redis-2"):
        root, _ = parse(plots.case_figure(case(name=name), tmp_path / f"{name}.svg"))
        defs.append({element.get("id") for element in root.iter(f"{SVG}clipPath")})
    assert defs[0] and defs[1] and not defs[0] & defs[1]


def test_an_empty_series_says_no_data(tmp_path):
    _, texts = parse(plots.case_figure(case(series=[], kill_times_s=[]), tmp_path / "case.svg"))
    assert "no data: the run recorded no requests over time" in texts
    assert "pod kill (0)" not in texts and "requests/s" in texts


def test_a_record_without_phases_or_start_works(tmp_path):
    record = {"name": "redis-2", "series": [{"t": 1, "requests": 3.0, "failures": 0.0}]}
    root, texts = parse(plots.case_figure(record, tmp_path / "redis-2.svg"))
    assert "redis-2: requests over time" in texts and not ids(root, "phase-")
    _, texts = parse(plots.case_figure({"name": "bare"}, tmp_path / "bare.svg"))
    assert "no data: the run recorded no requests over time" in texts


def test_phases_count_from_the_first_phase_when_the_start_is_not_recorded():
    record = case(started_at=None)
    origin = plots.origin_of(record)
    assert origin == START
    assert plots.relative_phases(record, origin) == [("baseline", 0.0, 20.5), ("fault", 20.5, 45.0),
                                                     ("recovery", 45.0, 60.0)]


@pytest.mark.parametrize("window", [[START], [START + 5, START], "soon", [START, "later"]])
def test_a_malformed_phase_is_a_one_line_error(window, tmp_path):
    message = r"^chaos-redis-2: phase 'fault' is .*, not \[start, end\] in epoch seconds$"
    with pytest.raises(ValueError, match=message):
        plots.relative_phases(case(phases={"fault": window}), START)
    with pytest.raises(ValueError, match=message):  # also where the phases give the origin
        plots.case_figure(case(phases={"fault": window}, started_at=None), tmp_path / "case.svg")


def test_only_svg_or_png(tmp_path):
    with pytest.raises(ValueError, match="written as .svg or .png, not .pdf"):
        plots.case_figure(case(), tmp_path / "case.pdf")


def test_a_png_is_written_too(tmp_path):
    assert plots.case_figure(case(), tmp_path / "case.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_malformed_prometheus_point_is_a_one_line_error(tmp_path):
    with pytest.raises(ValueError, match=r"^Prometheus series 'up \(ratio\)': points are \(epoch, value\) pairs"):
        plots.case_figure(case(), tmp_path / "case.svg", {"up (ratio)": [(START, "x")]})


def test_the_autoscale_figure_shows_replicas_cpu_load_rescales_and_ramp(tmp_path):
    root, texts = parse(plots.autoscale_figure(scaling(), tmp_path / "autoscale.svg"))
    assert {"replicas", "CPU per replica (cores)", "offered load (requests/s)", "p95 latency (ms)",
            "seconds since the load started (s)"} <= set(texts)
    assert {"desired by the HPA", "ready", "sqrt-a", "sqrt-b", "HPA rescale (2)", "scale-down bound",
            "ramp up phase", "hold phase", "ramp down phase"} <= set(texts)
    assert ids(root, "rescale-") == ["rescale-1", "rescale-2"]
    assert "autoscale: the HPA scaling sqrt under a ramp of load" in texts
    assert " → 3" in texts and " → 1" in texts


def test_the_autoscale_figure_shades_the_ramp_else_the_recorded_phases_and_survives_no_samples(tmp_path):
    phases = {"baseline": [START, START + 30], "recovery": [START + 30, START + 90]}
    root, _ = parse(plots.autoscale_figure(scaling(started_at=START, phases=phases), tmp_path / "ramp.svg"))
    assert ids(root, "phase-") == ["phase-hold", "phase-ramp-down", "phase-ramp-up"]
    record = scaling(samples=[], load=[], events=[], ramp={}, started_at=START, phases=phases)
    root, texts = parse(plots.autoscale_figure(record, tmp_path / "autoscale.svg"))
    assert ids(root, "phase-") == ["phase-baseline", "phase-recovery"]
    assert "no data: no sample of the HPA was recorded" in texts
    assert "no data: Locust recorded no history of the load" in texts
    _, texts = parse(plots.autoscale_figure(scaling(samples=[{"t": 0, "replicas": 1, "desired": 1, "cpu": {}}]),
                                            tmp_path / "no-cpu.svg"))
    assert "no data: no sample of the Pods' CPU was recorded" in texts


def test_the_phase_chart_shows_each_check_against_its_bound_per_phase(tmp_path):
    root, texts = parse(plots.phase_chart(case(slo=slo()), tmp_path / "slo.svg"))
    assert {"baseline", "fault", "recovery", "phase of the run", "bound", "within bound", "broken"} <= set(texts)
    assert {"availability", "(ratio of non-5xx responses)", "p95_ms", "(ms)"} <= set(texts)  # two-line labels
    assert any("verdict: broken; time to recover 4.5 s; error budget spent 40%" in t for t in texts)
    assert ids(root, "broken-") == ["broken-availability-fault"]
    assert ids(root, "ok-") == ["ok-availability-baseline", "ok-p95-ms-baseline", "ok-p95-ms-recovery"]
    assert ids(root, "no-data-") == ["no-data-availability-recovery"]  # p95 has no bound in the fault phase


def test_no_phase_chart_without_an_slo_verdict(tmp_path):
    assert plots.phase_chart(case(), tmp_path / "slo.svg") is None
    assert plots.phase_chart(case(slo={"verdict": "unknown", "phases": {}}), tmp_path / "slo.svg") is None
    assert not (tmp_path / "slo.svg").exists()
