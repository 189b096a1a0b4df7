"""NOTES.txt tells the user the URL to open, for the way the release is exposed."""

import chartlib
import pytest

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests


def notes(chart: str, *values_files: str) -> str:
    args = ["install", chartlib.RELEASE, str(chartlib.CHARTS_DIR / chart), "--dry-run=client",
            "--namespace", chartlib.NAMESPACE]
    for values_file in values_files:
        args += ["-f", str(chartlib.CHARTS_DIR / chart / values_file)]
    output = chartlib.run_helm(*args).stdout
    return output[output.index("NOTES:"):]


@pytest.mark.parametrize(("chart", "values_files", "expected"), [
    ("webgatos", [], f"port-forward svc/{chartlib.RELEASE}-webgatos 8080:80\n    open http://127.0.0.1:8080/"),
    ("webgatos", [], "inside each replica: a user who reaches another replica gets a new color"),
    ("webgatos", ["ci/istio-retries-values.yaml"], "kind:      GATEWAY=http://127.0.0.1:8080"),
    ("webgatos", ["ci/istio-fault-values.yaml"], "curl -H 'Host: webgatos.local' $GATEWAY/api/session"),
    ("webgatos", ["ci/hpa-values.yaml"], "Replicas: 2..8 (HPA on CPU, target 60%)"),
    ("sqrt", [], "curl 'http://127.0.0.1:8080/?iterations=1000000'"),
    ("sqrt", ["ci/load-generator-values.yaml"], f"logs -f deploy/{chartlib.RELEASE}-sqrt-load"),
])
def test_notes_say_how_to_open_the_app(chart, values_files, expected):
    text = notes(chart, *values_files)
    assert expected in text, text
    assert f"helm test {chartlib.RELEASE} -n {chartlib.NAMESPACE}" in text
