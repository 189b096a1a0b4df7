"""`make images` tags each image as its chart's default (repository:appVersion) and picks an
engine. No engine runs here, so a stand-in `docker` on PATH records the command lines it gets."""

import os
import stat
import subprocess

import chartlib
import pytest

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests


def make_images(tmp_path, **env):
    return subprocess.run(["make", "--no-print-directory", "images"], cwd=chartlib.REPO_ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env}, stdin=subprocess.DEVNULL)


def test_images_are_tagged_as_the_charts_expect(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    result = make_images(tmp_path, PATH=f"{fake.parent}:{os.environ['PATH']}", IMAGE_ENGINE="")
    assert result.returncode == 0, result.stderr
    builds = [line for line in calls.read_text().splitlines() if line.startswith("build")]
    for chart in chartlib.CHART_NAMES:
        image = chartlib.find(chartlib.render(chartlib.Scenario(chart, "defaults")), "Deployment",
                              f"{chartlib.RELEASE}-{chart}")["spec"]["template"]["spec"]["containers"][0]["image"]
        assert f"build -t {image} --build-arg SERVICE={chart} -f services/Dockerfile services" in builds


@pytest.mark.parametrize("engine", ["bogus"])
def test_an_unknown_engine_is_refused_with_the_accepted_ones(tmp_path, engine):
    result = make_images(tmp_path, IMAGE_ENGINE=engine)
    assert result.returncode != 0
    assert "IMAGE_ENGINE=bogus is not valid: use docker, podman, minikube or buildah" in result.stderr
