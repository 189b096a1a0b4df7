"""The watch of the Pods bound to one node, as a kubelet's: a list, then a watch from its
resource version, again from the list when the version is too old; every change into `inbox`."""

import queue
import threading
from collections.abc import Callable

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException


def watch_bound_pods(api: client.CoreV1Api, node_name: str, inbox: queue.Queue, stopping: threading.Event,
                     record: Callable[..., None]) -> None:
    """Until `stopping`: ("SYNC", [pods]) after each list, (ADDED|MODIFIED|DELETED, pod) after;
    failures go to `record(event, None, error=...)`."""
    selector = f"spec.nodeName={node_name}"
    resource_version = None
    while not stopping.is_set():
        try:
            if resource_version is None:
                listing = api.list_pod_for_all_namespaces(field_selector=selector)
                resource_version = listing.metadata.resource_version
                inbox.put(("SYNC", [api.api_client.sanitize_for_serialization(p) for p in listing.items]))
            stream = watch.Watch().stream(api.list_pod_for_all_namespaces, field_selector=selector,
                                          resource_version=resource_version, timeout_seconds=30,
                                          allow_watch_bookmarks=True)
            for event in stream:
                if stopping.is_set():
                    return
                obj = event["raw_object"]
                resource_version = obj.get("metadata", {}).get("resourceVersion", resource_version)
                if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    inbox.put((event["type"], obj))
        except ApiException as error:
            if error.status == 410:  # too old: list again
                resource_version = None
                continue
            record("watch-failed", None, error=f"{error.status} {error.reason}")
            stopping.wait(1.0)
        except Exception as error:  # the connection dropped: watch again from where we were
            if stopping.is_set():
                return
            record("watch-failed", None, error=repr(error))
            stopping.wait(0.5)
