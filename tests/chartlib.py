"""Helpers shared by the chart tests: the scenarios, Helm runs (cached per session) and validators.

A scenario is a chart plus values files: the chart's defaults, each `charts/NAME/ci/*.yaml`, and
for webgatos each mesh overlay `istio/scenarios/*.yaml`. Every scenario is rendered once per
test session and the parsed documents are shared by all tests.
"""

import copy
import functools
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes_validate
import kubernetes_validate.utils
import yaml

from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.workloads import helm
from lab.workloads.helm import deep_merge

CHARTS_DIR = REPO_ROOT / "charts"
CHART_NAMES = ("webgatos", "sqrt")
RELEASE = "lab"
NAMESPACE = "resilience-lab"
HELM_TIMEOUT_SECONDS = 120
# The oldest Kubernetes the charts support and the newest schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version()))
ISTIO_GROUPS = ("networking.istio.io", "security.istio.io", "telemetry.istio.io")
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser: the Istio bundle is 0.9 MB
ISTIO_CRDS_HINT = (
    "Istio CRD schemas not found: run `make istio-crds` (the pinned Istio's crd-all.gen.yaml into "
    ".cache/controlplane/), or set ISTIO_CRDS to a copy of it (or a folder holding it).")


@dataclass(frozen=True)
class Scenario:
    chart: str
    name: str
    values_files: tuple[Path, ...] = ()
    set_values: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.chart}:{self.name}"

    @property
    def chart_dir(self) -> Path:
        return CHARTS_DIR / self.chart

    def helm_args(self) -> list[str]:
        args = [str(self.chart_dir)]
        for values_file in self.values_files:
            args += ["-f", str(values_file)]
        for assignment in self.set_values:
            args += ["--set", assignment]
        return args


def scenarios() -> list[Scenario]:
    """Every values scenario of both charts, found on disk at collection time."""
    found = []
    for chart in CHART_NAMES:
        found.append(Scenario(chart, "defaults"))
        for values_file in sorted((CHARTS_DIR / chart / "ci").glob("*.yaml")):
            found.append(Scenario(chart, f"ci/{values_file.stem}", (values_file,)))
    for overlay in sorted((REPO_ROOT / "istio" / "scenarios").glob("*.yaml")):
        found.append(Scenario("webgatos", f"istio/{overlay.stem}", (overlay,)))
    return found


class HelmFailed(AssertionError):
    def __init__(self, argv: list[str], result: subprocess.CompletedProcess):
        self.stderr = result.stderr
        self.stdout = result.stdout
        super().__init__(f"`{' '.join(argv)}` exited {result.returncode}:\n{result.stderr}{result.stdout}")


def istioctl() -> str:
    """The lab's istioctl (`make control-plane`); a skip outside CI, a failure in CI, when missing."""
    import pytest
    try:
        return binaries.control_plane("istioctl")
    except binaries.MissingBinary as missing:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(missing))


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = helm.run_helm(*args, timeout=HELM_TIMEOUT_SECONDS, check=False)
    if check and result.returncode != 0:
        raise HelmFailed(["helm", *args], result)
    return result


def template(chart_args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    return run_helm("template", RELEASE, *chart_args, "--namespace", NAMESPACE, check=check)


@functools.cache
def _rendered_text(scenario: Scenario) -> str:
    return template(scenario.helm_args()).stdout


def render(scenario: Scenario) -> list[dict]:
    """The scenario's documents (hooks included), parsed; rendered once per session."""
    docs = [doc for doc in yaml.load_all(_rendered_text(scenario), Loader=YAML_LOADER) if doc]
    return copy.deepcopy(docs)


@functools.cache
def chart_values(scenario: Scenario) -> dict:
    """The chart's defaults merged with the scenario's values files, as Helm merges them."""
    values = yaml.safe_load((scenario.chart_dir / "values.yaml").read_text())
    for values_file in scenario.values_files:
        values = deep_merge(values, yaml.safe_load(values_file.read_text()) or {})
    return values


def is_istio(doc: dict) -> bool:
    return doc.get("apiVersion", "").split("/", 1)[0] in ISTIO_GROUPS


def doc_id(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc.get("kind") == kind]


def find(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((doc for doc in by_kind(docs, kind) if doc["metadata"]["name"] == name), None)


def is_hook(doc: dict) -> bool:
    return "helm.sh/hook" in doc.get("metadata", {}).get("annotations", {})


WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def workloads(docs: list[dict]) -> list[dict]:
    return [doc for doc in docs if doc.get("kind") in WORKLOAD_KINDS]


def selector_matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def validate_kubernetes(doc: dict, version: str) -> str | None:
    """None when `doc` is valid for Kubernetes `version` with unknown fields rejected, else why not."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return f"{doc_id(doc)} invalid for Kubernetes {version} at {path or '<root>'}: {error.message}"
    except kubernetes_validate.SchemaNotFoundError as error:
        return f"{doc_id(doc)}: {error.message}"
    return None


def istio_crds_path() -> Path | None:
    """The Istio CRD bundle: $ISTIO_CRDS (file or folder), else the pinned Istio's (make istio-crds)."""
    configured = os.environ.get("ISTIO_CRDS")
    candidate = Path(configured) if configured else binaries.control_plane_dir("istio") / "crd-all.gen.yaml"
    if candidate.is_dir():
        candidate = candidate / "crd-all.gen.yaml"
    return candidate if candidate.is_file() else None


def unknown_key(schema: dict, dotted_key: str) -> str | None:
    """None when a values.schema.json allows `dotted_key` (e.g. `istio.virtualService.timeout`),
    else the first part of it that does not exist. Array indexes (`a[0].b`) are skipped."""
    node = schema
    parts = [part for part in re.sub(r"\[\d+\]", "", dotted_key).split(".") if part]
    for depth, part in enumerate(parts):
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].split("/")[-1]]
        if isinstance(node.get("items"), dict) and "properties" not in node:
            node = node["items"]
            if "$ref" in node:
                node = schema["definitions"][node["$ref"].split("/")[-1]]
        properties = node.get("properties", {})
        if part in properties:
            node = properties[part]
        elif node.get("additionalProperties") is False:
            return ".".join(parts[: depth + 1])
        else:
            return None  # a free-form map (labels, annotations, selector): any key is fine
    return None


def load_schema(chart: str) -> dict:
    return json.loads((CHARTS_DIR / chart / "values.schema.json").read_text())
