"""The lab's scrape targets follow the node's Pods: one target group per Pod, rewritten only when
the Pods change."""

import json
from dataclasses import dataclass

from lab.observe.lab_targets import PodFollower, pod_groups
from lab.observe.prometheus import Prometheus


@dataclass
class Run:
    name: str
    address: str
    port: int = 8080


class Node:
    def __init__(self, runs):
        self.runs_by_namespace = {"demo": runs}

    def runs(self, namespace):
        return list(self.runs_by_namespace.get(namespace, []))


def test_one_group_per_pod_labelled_with_namespace_and_pod():
    groups = pod_groups(Node([Run("web-b", "127.1.0.2"), Run("web-a", "127.1.0.1")]), "demo", "webgatos",
                        {"case": "c"})
    assert [group["targets"] for group in groups] == [["127.1.0.1:8080"], ["127.1.0.2:8080"]]
    assert groups[0]["labels"] == {"case": "c", "namespace": "demo", "pod": "web-a", "job": "webgatos",
                                   "__metrics_path__": "/metrics"}


def test_the_follower_rewrites_on_change_and_empties_on_exit(tmp_path):
    node = Node([Run("web-a", "127.1.0.1")])
    server = Prometheus(tmp_path)
    path = tmp_path / "targets" / "webgatos.json"
    follower = PodFollower(server, node, "demo", "webgatos", {"case": "c"})
    follower.refresh()
    assert len(json.loads(path.read_text())) == 1
    node.runs_by_namespace["demo"].append(Run("web-b", "127.1.0.2"))
    follower.refresh()
    assert len(json.loads(path.read_text())) == 2
    follower.__exit__(None, None, None)
    assert json.loads(path.read_text()) == []
