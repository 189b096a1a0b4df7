"""The Kubernetes target: delete pods through the official client's CoreV1Api.

Only pods in phase Running and not already terminating are candidates. A deletion carries a
uid precondition, so a pod recreated under the same name (a StatefulSet's) since the listing is
left alone. The grace period works as in `kubectl delete`: None leaves the pod's own
terminationGracePeriodSeconds (SIGTERM, then SIGKILL when it runs out); 0 asks the API server to
remove the pod at once, and the kubelet then stops its containers without waiting: the crash-like
kill.
"""

import json
from typing import TextIO

import urllib3
from kubernetes.client import ApiException, V1DeleteOptions, V1Preconditions

from chaos.core import FAILED, GONE, KILLED, Abort, Victim, log_line

AUTH_STATUSES = (401, 403)  # more rounds will not fix these

RUNNING_PHASE = "Running"


class ChaosApiError(Abort):
    """The API server refused in a way that more rounds will not fix (e.g. RBAC)."""


def is_candidate(pod) -> bool:
    """Running, and not already on its way out."""
    return (pod.status is not None and pod.status.phase == RUNNING_PHASE
            and pod.metadata.deletion_timestamp is None)


def signal_for(grace_period: int | None) -> str:
    """What the pod's containers get first (one token, for the log lines)."""
    return "SIGKILL" if grace_period == 0 else "SIGTERM"


def api_error(error: ApiException, action: str) -> str:
    reason = f"{error.status} {error.reason}".strip()
    if error.status in (401, 403):
        return (f"{action}: {reason}; the service account or kubeconfig user needs list and delete on pods "
                f"in this namespace (see chaos/deploy/rbac.yaml)")
    return f"{action}: {reason}"


class KubernetesTarget:
    """Candidates and kills for one namespace and label selector. `core_api` is a CoreV1Api.

    RBAC refusals stop the run (ChaosApiError). Other API or network errors in a round are logged
    to `out`, kept in `errors` and cost only that round or that kill: an API server restart in
    the middle of an experiment should not end it."""

    def __init__(self, core_api, namespace: str, selector: str, grace_period: int | None = None,
                 out: TextIO | None = None):
        self.api = core_api
        self.namespace = namespace
        self.selector = selector
        self.grace_period = grace_period
        self.out = out
        self.errors: list[str] = []

    def _transient(self, message: str) -> None:
        self.errors.append(message)
        if self.out is not None:
            print(log_line("api-error", target="k8s", reason=json.dumps(message)), file=self.out, flush=True)

    def candidates(self, strict: bool = False) -> list[Victim]:
        """The Running, not terminating pods. `strict` turns every failure into ChaosApiError
        (the first look, before the run starts)."""
        action = f"listing pods in {self.namespace}"
        try:
            pods = self.api.list_namespaced_pod(self.namespace, label_selector=self.selector,
                                                field_selector=f"status.phase={RUNNING_PHASE}").items
        except ApiException as error:
            if strict or error.status in AUTH_STATUSES:
                raise ChaosApiError(api_error(error, action)) from None
            self._transient(api_error(error, action))
            return []
        except (urllib3.exceptions.HTTPError, OSError) as error:
            if strict:
                raise ChaosApiError(f"{action}: {error}") from None
            self._transient(f"{action}: {error}")
            return []
        return [Victim(pod.metadata.name, {"namespace": self.namespace, "uid": pod.metadata.uid,
                                           "node": pod.spec.node_name if pod.spec else None})
                for pod in pods if is_candidate(pod)]

    def kill(self, victim: Victim) -> str:
        action = f"deleting pod {victim.name}"
        options = V1DeleteOptions(grace_period_seconds=self.grace_period,
                                  preconditions=V1Preconditions(uid=victim.details["uid"]))
        try:
            self.api.delete_namespaced_pod(victim.name, self.namespace, grace_period_seconds=self.grace_period,
                                           body=options)
        except ApiException as error:
            if error.status in (404, 409):  # gone already, or replaced by a pod with another uid
                return GONE
            if error.status in AUTH_STATUSES:
                raise ChaosApiError(api_error(error, action)) from None
            self._transient(api_error(error, action))
            return FAILED
        except (urllib3.exceptions.HTTPError, OSError) as error:
            self._transient(f"{action}: {error}")
            return FAILED
        return KILLED
