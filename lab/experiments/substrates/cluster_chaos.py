"""The chaos tool on a cluster with exactly its own RBAC: chaos/deploy/rbac.yaml (ServiceAccount
pod-chaos, a Role that may list and delete pods) moved into the case's namespace, a bound token
for that ServiceAccount (`kubectl create token`), and a kubeconfig that holds only that token, so
`python -m chaos k8s` runs from the host with no more rights than in the cluster."""

import sys
from pathlib import Path

import yaml

from lab.host.paths import REPO_ROOT

RBAC = REPO_ROOT / "chaos" / "deploy" / "rbac.yaml"
SERVICE_ACCOUNT = "pod-chaos"
TARGET_SELECTOR = "app.kubernetes.io/name=webgatos,app.kubernetes.io/component=web"
SIGNAL = "SIGKILL"  # as the lab's default: grace period 0, a crash-like kill
TOKEN_SECONDS = 3600


def rbac_documents(namespace: str, path: Path = RBAC) -> list[dict]:
    """The tool's ServiceAccount, Role and RoleBinding, in `namespace` instead of the file's own."""
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for doc in documents:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return documents


def token_kubeconfig(admin: dict, token: str, namespace: str) -> dict:
    """A kubeconfig for the ServiceAccount's token: the cluster entry (server, CA) of `admin`, a
    minified and flattened kubeconfig, and nothing of its user."""
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    user = f"system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}"
    return {"apiVersion": "v1", "kind": "Config", "current-context": "chaos",
            "clusters": [{"name": "chaos", "cluster": cluster["cluster"]}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "chaos", "context": {"cluster": "chaos", "user": user, "namespace": namespace}}]}


def chaos_argv(kubeconfig: Path, namespace: str, interval: float, seconds: float, summary: Path) -> list[str]:
    """`python -m chaos k8s` against the case's webgatos Pods, one kill per interval for `seconds`."""
    return [sys.executable, "-m", "chaos", "k8s", "--kubeconfig", str(kubeconfig), "--namespace", namespace,
            "--selector", TARGET_SELECTOR, "--interval", f"{interval:g}s", "--duration", f"{seconds:g}s",
            "--grace-period", "0", "--summary-json", str(summary)]


def killed(summary: dict) -> list[dict]:
    """The kills that deleted a Pod (not the ones already gone or failed)."""
    return [kill for kill in summary.get("kills", []) if kill.get("result") == "killed"]
