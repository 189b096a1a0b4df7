"""The chaos tool's in-cluster manifests (chaos/deploy/) and the kube-monkey setup
(chaos/kube-monkey/): strictly valid for the oldest and newest Kubernetes the charts support,
minimal RBAC, hardened pods, arguments the tool itself accepts, and a selector that hits the
chart's webgatos pods; the kube-monkey labels documented in chaos/README.md are the ones the
chart renders."""

import argparse
import re
import tomllib
from pathlib import Path

import chartlib
import pytest
import yaml

import chaos.__main__ as cli
from chaos.core import DEFAULT_DENY_NAMESPACES, check_namespace, check_selector, parse_count, parse_duration

CHAOS_DIR = chartlib.REPO_ROOT / "chaos"
DEPLOY_DIR = CHAOS_DIR / "deploy"
KUBE_MONKEY_DIR = CHAOS_DIR / "kube-monkey"
DEMO_NAMESPACE = "rl-chaos"
MANIFESTS = sorted(DEPLOY_DIR.glob("*.yaml")) + [KUBE_MONKEY_DIR / "kube-monkey.yaml"]


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def pod_spec(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return workload["spec"]["template"]["metadata"]["labels"]


CHAOS_WORKLOADS = [doc for path in (DEPLOY_DIR / "deployment.yaml", DEPLOY_DIR / "cronjob.yaml") for doc in load(path)]


@pytest.mark.parametrize("version", chartlib.K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(CHAOS_DIR)))
def test_manifests_are_strictly_valid(path, version):
    docs = load(path)
    assert docs
    problems = [problem for doc in docs if (problem := chartlib.validate_kubernetes(doc, version))]
    assert not problems, "\n".join(problems)


def test_rbac_is_one_namespace_list_and_delete_pods_only():
    docs = load(DEPLOY_DIR / "rbac.yaml")
    assert sorted(doc["kind"] for doc in docs) == ["Role", "RoleBinding", "ServiceAccount"]
    assert {doc["metadata"]["namespace"] for doc in docs} == {DEMO_NAMESPACE}
    role = chartlib.find(docs, "Role", "pod-chaos")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]}]
    binding = chartlib.find(docs, "RoleBinding", "pod-chaos")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-chaos"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pod-chaos", "namespace": DEMO_NAMESPACE}]


@pytest.mark.parametrize("workload", CHAOS_WORKLOADS, ids=lambda doc: doc["kind"])
def test_chaos_pods_use_the_service_account_and_are_hardened(workload):
    assert workload["metadata"]["namespace"] == DEMO_NAMESPACE
    spec = pod_spec(workload)
    assert spec["serviceAccountName"] == "pod-chaos"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    assert pod_labels(workload)["sidecar.istio.io/inject"] == "false"
    assert pod_labels(workload).get("app.kubernetes.io/name") != "webgatos"  # never its own victim


def container_args(workload: dict) -> argparse.Namespace:
    """The container's arguments as the tool parses them, $(POD_NAMESPACE) expanded as the kubelet does."""
    (container,) = pod_spec(workload)["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    args = [re.sub(r"\$\(POD_NAMESPACE\)", workload["metadata"]["namespace"], arg) for arg in container["args"]]
    return cli.build_parser().parse_args(args)


@pytest.mark.parametrize("workload", CHAOS_WORKLOADS, ids=lambda doc: doc["kind"])
def test_chaos_arguments_pass_the_tools_own_checks(workload):
    args = container_args(workload)
    assert args.target == "k8s"
    deny = [*DEFAULT_DENY_NAMESPACES, *args.deny_namespace]
    assert check_namespace(args.namespace, deny, args.force) == DEMO_NAMESPACE
    assert not args.force and not args.dry_run
    check_selector(args.selector)
    assert parse_duration(args.interval) == 15 and parse_count(args.count).of(3) == 1
    assert args.grace_period == 0
    if workload["kind"] == "CronJob":
        duration = parse_duration(args.duration, "--duration")
        job = workload["spec"]["jobTemplate"]["spec"]
        assert duration < job["activeDeadlineSeconds"]  # the run ends on its own, with its summary
        assert workload["spec"]["concurrencyPolicy"] == "Forbid"
    else:
        assert workload["spec"]["replicas"] == 1


def selector_terms(selector: str) -> dict:
    return dict(term.split("=", 1) for term in selector.split(","))


def webgatos_web_pods(*set_values: str) -> list[dict]:
    docs = chartlib.render(chartlib.Scenario("webgatos", "chaos", (), set_values))
    return [doc for doc in chartlib.workloads(docs)
            if doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "web"]


@pytest.mark.processes
@pytest.mark.parametrize("workload", CHAOS_WORKLOADS, ids=lambda doc: doc["kind"])
def test_chaos_selector_hits_the_charts_web_pods_and_nothing_else(workload):
    terms = selector_terms(container_args(workload).selector)
    docs = chartlib.render(chartlib.Scenario("webgatos", "chaos-redis", (), ("sessionStore.type=redis",)))
    hit = [doc["metadata"]["name"] for doc in chartlib.workloads(docs)
           if chartlib.selector_matches(terms, doc["spec"]["template"]["metadata"]["labels"])]
    assert len(hit) == 1 and len(chartlib.workloads(docs)) > 1  # the web Deployment, not the bundled Redis
    assert not chartlib.selector_matches(terms, pod_labels(workload))


def documented_labels() -> dict[str, str]:
    readme = (CHAOS_DIR / "README.md").read_text()
    return dict(re.findall(r"^\| `(kube-monkey/[a-z-]+)` \| (.+?) \|$", readme, flags=re.MULTILINE))


@pytest.mark.processes
def test_readme_documents_exactly_the_kube_monkey_labels_the_chart_renders():
    (deployment,) = webgatos_web_pods("kubeMonkey.enabled=true", "kubeMonkey.mtbf=2",
                                      "kubeMonkey.killMode=fixed-percent", "kubeMonkey.killValue=50")
    rendered = {key: value for key, value in deployment["metadata"]["labels"].items() if key.startswith("kube-monkey/")}
    assert set(documented_labels()) == set(rendered)
    assert rendered == {"kube-monkey/enabled": "enabled", "kube-monkey/identifier": deployment["metadata"]["name"],
                        "kube-monkey/mtbf": "2", "kube-monkey/kill-mode": "fixed-percent",
                        "kube-monkey/kill-value": "50"}
    pod = deployment["spec"]["template"]["metadata"]["labels"]
    assert {key: pod[key] for key in rendered} == rendered
    assert pod["app.kubernetes.io/name"] == "webgatos" and pod["app.kubernetes.io/instance"] == chartlib.RELEASE
    (plain,) = webgatos_web_pods()
    assert not any(key.startswith("kube-monkey/") for key in plain["metadata"]["labels"])


def test_kube_monkey_config_kills_only_in_the_demo_namespace_and_often():
    config = tomllib.loads((KUBE_MONKEY_DIR / "config.toml").read_text())
    assert set(config) == {"kubemonkey", "debug"}
    km, debug = config["kubemonkey"], config["debug"]
    assert km["dry_run"] is False
    assert km["whitelisted_namespaces"] == [DEMO_NAMESPACE]
    assert set(DEFAULT_DENY_NAMESPACES) <= set(km["blacklisted_namespaces"])
    assert 0 <= km["run_hour"] < km["start_hour"] < km["end_hour"] <= 23  # kube-monkey refuses anything else
    assert debug == {"enabled": True, "schedule_delay": 30, "force_should_kill": True, "schedule_immediate_kill": True}


def test_kube_monkey_setup_mounts_its_config_and_deletes_pods_only_in_the_demo_namespace():
    kustomization = yaml.safe_load((KUBE_MONKEY_DIR / "kustomization.yaml").read_text())
    assert all((KUBE_MONKEY_DIR / resource).is_file() for resource in kustomization["resources"])
    (generator,) = kustomization["configMapGenerator"]
    assert generator["files"] == ["config.toml"]
    docs = load(KUBE_MONKEY_DIR / "kube-monkey.yaml")
    deployment = chartlib.find(docs, "Deployment", "kube-monkey")
    volumes = {volume["name"]: volume for volume in deployment["spec"]["template"]["spec"]["volumes"]}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/etc/kube-monkey"
    assert volumes[mount["name"]]["configMap"]["name"] == generator["name"]
    assert generator["namespace"] == deployment["metadata"]["namespace"]
    cluster_rules = [rule for doc in chartlib.by_kind(docs, "ClusterRole") for rule in doc["rules"]]
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in cluster_rules)
    pod_rules = [(doc["metadata"]["namespace"], rule) for doc in chartlib.by_kind(docs, "Role") for rule in doc["rules"]
                 if "delete" in rule["verbs"]]
    assert pod_rules and all(ns == DEMO_NAMESPACE and rule["resources"] == ["pods"] for ns, rule in pod_rules)


def test_image_runs_the_tool_and_pins_match_the_venv():
    dockerfile = (CHAOS_DIR / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["python", "-m", "chaos"]' in dockerfile and "USER 10001:10001" in dockerfile
    image_pins = [line for line in (CHAOS_DIR / "requirements.txt").read_text().splitlines()
                  if line and not line.startswith("#")]
    venv_pins = (chartlib.REPO_ROOT / "requirements-dev.txt").read_text().splitlines()
    assert image_pins and all(pin in venv_pins for pin in image_pins)
    images = {c["image"] for workload in CHAOS_WORKLOADS for c in pod_spec(workload)["containers"]}
    assert images == {"resilience-lab/chaos:0.1.0"}
    assert "resilience-lab/chaos:0.1.0" in dockerfile
