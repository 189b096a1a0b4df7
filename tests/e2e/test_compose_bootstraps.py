"""docker-compose's static Envoy bootstraps (lab/compose/) are istiod's own output: regenerated
from the lab's gateway for every mesh scenario, they equal the committed files."""

from lab import compose
from lab.workloads.topology import scenario_names


def test_compose_bootstraps_are_what_istiod_programs_now(lab_cluster, tmp_path):
    fresh = compose.generate(lab_cluster, scenario_names(), tmp_path)
    stale = [name for name, text in fresh.items() if compose.envoy_path(name).read_text() != text]
    assert not stale, f"run `python -m lab.compose` to refresh lab/compose/ for: {stale}"
