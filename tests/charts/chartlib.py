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

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml

from lab import binaries
from lab.envoy import deep_merge

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"
CHART_NAMES = ("webgatos", "sqrt")
RELEASE = "lab"
NAMESPACE = "resilience-lab"
HELM_TIMEOUT_SECONDS = 120
# The oldest Kubernetes the charts support and the newest schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.30", kubernetes_validate.utils.major_minor(kubernetes_validate.utils.latest_version()))
ISTIO_GROUP = "networking.istio.io"
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser: the Istio bundle is 0.9 MB
ISTIO_CRDS_HINT = (
    "Istio CRD schemas not found: set ISTIO_CRDS to a copy of Istio's crd-all.gen.yaml (or a folder "
    "holding it), e.g. `ISTIO_CRDS=/path/to/istio/manifests/charts/base/files/crd-all.gen.yaml`; "
    "by default the tests look in ../shared/schemas/istio/ beside the repository.")


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


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    argv = [binaries.helm(), *args]
    env = {**os.environ, "HELM_CACHE_HOME": str(REPO_ROOT / ".cache" / "helm-cache"),
           "HELM_CONFIG_HOME": str(REPO_ROOT / ".cache" / "helm-config"),
           "HELM_DATA_HOME": str(REPO_ROOT / ".cache" / "helm-data")}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=HELM_TIMEOUT_SECONDS, env=env,
                            stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise HelmFailed(argv, result)
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
    return doc.get("apiVersion", "").startswith(ISTIO_GROUP + "/")


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


# --- Istio: CRD schemas made strict -------------------------------------------------------------

def istio_crds_path() -> Path | None:
    """The Istio CRD bundle: $ISTIO_CRDS (file or folder), else ../shared/schemas/istio/."""
    configured = os.environ.get("ISTIO_CRDS")
    candidate = Path(configured) if configured else REPO_ROOT.parent / "shared" / "schemas" / "istio"
    if candidate.is_dir():
        candidate = candidate / "crd-all.gen.yaml"
    return candidate if candidate.is_file() else None


def strict_schema(node: dict) -> dict:
    """An openAPIV3Schema node as JSON Schema that rejects unknown fields.

    Kubernetes prunes unknown fields instead of rejecting them, so a CRD schema alone would let a
    typo through; objects that list their properties get `additionalProperties: false`.
    """
    node = {key: value for key, value in node.items() if key != "x-kubernetes-validations"}
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    if "properties" in node:
        node["properties"] = {name: strict_schema(child) for name, child in node["properties"].items()}
        if not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
            node["additionalProperties"] = False
    if isinstance(node.get("items"), dict):
        node["items"] = strict_schema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = strict_schema(node["additionalProperties"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in node:
            node[combinator] = [strict_schema(child) for child in node[combinator]]
    if isinstance(node.get("not"), dict):
        node["not"] = strict_schema(node["not"])
    return node


_METADATA_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_GO_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h))+$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_AT_MOST_ONE_OF = re.compile(r"^\(has\(self\.(\w+)\) \? 1 : 0\) \+ \(has\(self\.(\w+)\) \? 1 : 0\) <= 1$")


def go_duration_seconds(text: str) -> float | None:
    if not isinstance(text, str) or not _GO_DURATION.match(text):
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _GO_DURATION_PART.findall(text))


def check_cel_rule(rule: str, value) -> str | None:
    """Evaluate the CEL rules Istio puts on the kinds these charts render; None when satisfied.

    A rule not listed here is reported as unsupported, so a new rule fails the tests loudly
    instead of passing unchecked.
    """
    rule = " ".join(rule.split())
    if rule == "duration(self) >= duration('1ms')":
        seconds = go_duration_seconds(value)
        if seconds is None:
            return f"{value!r} is not a duration (e.g. 500ms, 2s, 1m)"
        return None if seconds >= 1e-3 else f"{value!r} is shorter than 1ms"
    if rule == '!self.contains("*")':
        return f"{value!r} must not contain '*'" if "*" in value else None
    if rule == 'self.all(key, !key.contains("*"))':
        return f"keys {sorted(value)} must not contain '*'" if any("*" in key for key in value) else None
    if rule == "self.all(key, key.size() != 0)":
        return "keys must not be empty" if any(key == "" for key in value) else None
    if rule == "0 < self && self <= 65535":
        return None if 0 < value <= 65535 else f"{value} is not a port number"
    if match := _AT_MOST_ONE_OF.match(rule):
        present = [name for name in match.groups() if name in value]
        return f"set at most one of {', '.join(match.groups())}" if len(present) > 1 else None
    return f"unsupported CEL rule {rule!r}: teach tests/charts/chartlib.check_cel_rule to evaluate it"


def _cel_errors(schema: dict, value, path: str) -> list[str]:
    errors = []
    for validation in schema.get("x-kubernetes-validations", []):
        problem = check_cel_rule(validation["rule"], value)
        if problem:
            errors.append(f"{path or '<root>'}: {validation.get('message') or problem} ({problem})")
    if isinstance(value, dict):
        for name, child in value.items():
            if name in schema.get("properties", {}):
                errors += _cel_errors(schema["properties"][name], child, f"{path}.{name}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += _cel_errors(schema["additionalProperties"], child, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, child in enumerate(value):
            errors += _cel_errors(schema["items"], child, f"{path}[{index}]")
    return errors


class IstioSchemas:
    """Strict validators for every served version of every kind in an Istio CRD bundle."""

    def __init__(self, crd_bundle: Path):
        self.schemas: dict[tuple[str, str], dict] = {}
        self.validators: dict[tuple[str, str], jsonschema.Draft7Validator] = {}
        for crd in yaml.load_all(crd_bundle.read_text(), Loader=YAML_LOADER):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                api_version = f"{group}/{version['name']}"
                schema = version["schema"]["openAPIV3Schema"]
                strict = strict_schema(schema)
                strict["required"] = sorted({*strict.get("required", []), "apiVersion", "kind", "metadata"})
                strict["properties"] = {**strict.get("properties", {}), "apiVersion": {"const": api_version},
                                        "kind": {"const": kind}, "metadata": _METADATA_SCHEMA}
                strict["additionalProperties"] = False
                self.schemas[(api_version, kind)] = schema
                self.validators[(api_version, kind)] = jsonschema.Draft7Validator(strict)

    def errors(self, doc: dict) -> list[str]:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in self.validators:
            return [f"{doc_id(doc)}: no served Istio schema for {key[0]} {key[1]}"]
        problems = [f"{doc_id(doc)} at {'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
                    for error in self.validators[key].iter_errors(doc)]
        problems += [f"{doc_id(doc)} {problem}" for problem in _cel_errors(self.schemas[key], doc, "")]
        return problems


@functools.cache
def istio_schemas(crd_bundle: Path) -> IstioSchemas:
    return IstioSchemas(crd_bundle)


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
