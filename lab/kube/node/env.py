"""A container's environment, resolved as a kubelet resolves it: literal values with $(VAR)
references, envFrom and single keys of Secrets and ConfigMaps, the downward API."""

import base64
import re

from kubernetes.client import CoreV1Api
from kubernetes.client.exceptions import ApiException

from lab.kube.node.pods import PodRun


class EnvError(ValueError):
    """A Pod's environment cannot be resolved (missing Secret key, ...): the container waits."""


_VAR_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, defined: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined names are replaced, `$$` escapes, others stay."""
    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return defined.get(match.group(1), match.group(0))
    return _VAR_REFERENCE.sub(replace, value)


def resolve_env(api: CoreV1Api, node_name: str, pod: dict, container: dict, run: PodRun) -> dict[str, str]:
    """The environment of `container` of `pod`, run by the node `node_name` as `run`; EnvError
    when a reference cannot be resolved."""
    fields = {"metadata.name": run.name, "metadata.namespace": run.namespace, "metadata.uid": run.uid,
              "spec.nodeName": node_name, "spec.serviceAccountName": pod["spec"].get("serviceAccountName", ""),
              "status.podIP": run.address, "status.hostIP": "127.0.0.1"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []) or []:
        env.update({(source.get("prefix", "") + k): v for k, v in key_values(api, run.namespace, source).items()})
    for entry in container.get("env", []) or []:
        if "value" in entry:
            env[entry["name"]] = expand(entry.get("value") or "", env)
            continue
        ref = entry.get("valueFrom") or {}
        if "fieldRef" in ref:
            path = ref["fieldRef"]["fieldPath"]
            if path not in fields:
                raise EnvError(f"env {entry['name']}: fieldRef {path} is not supported by the lab node")
            env[entry["name"]] = fields[path]
        elif "secretKeyRef" in ref or "configMapKeyRef" in ref:
            kind = "secretKeyRef" if "secretKeyRef" in ref else "configMapKeyRef"
            key_ref = ref[kind]
            values = key_values(api, run.namespace, {kind.replace("KeyRef", "Ref"): key_ref})
            if key_ref["key"] not in values:
                if key_ref.get("optional"):
                    continue
                raise EnvError(f"env {entry['name']}: key {key_ref['key']!r} not found in "
                               f"{kind.replace('KeyRef', '')} {key_ref['name']!r}")
            env[entry["name"]] = values[key_ref["key"]]
        elif "resourceFieldRef" in ref:
            resource = ref["resourceFieldRef"]["resource"]
            section, _, what = resource.partition(".")
            env[entry["name"]] = str(((container.get("resources") or {}).get(section) or {}).get(what, ""))
    return {"HOSTNAME": run.name, **env}


def key_values(api: CoreV1Api, namespace: str, source: dict) -> dict[str, str]:
    """The keys of the Secret (secretRef) or ConfigMap (configMapRef) `source` names."""
    try:
        if "secretRef" in source:
            data = api.read_namespaced_secret(source["secretRef"]["name"], namespace).data or {}
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        if "configMapRef" in source:
            return dict(api.read_namespaced_config_map(source["configMapRef"]["name"], namespace).data or {})
    except ApiException as error:
        if error.status == 404 and (source.get("secretRef") or source.get("configMapRef") or {}).get("optional"):
            return {}
        name = (source.get("secretRef") or source.get("configMapRef"))["name"]
        raise EnvError(f"cannot read {'Secret' if 'secretRef' in source else 'ConfigMap'} {name!r}: "
                       f"{error.status} {error.reason}") from None
    return {}
