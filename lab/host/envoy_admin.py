"""Reading an Envoy's admin interface: the gateway's (lab/kube/mesh/) and the plain balancers'
(balancer.py) alike."""

import urllib.request


def read(admin_url: str, path: str, timeout: float = 5.0) -> str:
    """The text of one admin page, e.g. read(url, "/stats?format=json"); OSError when it does not answer."""
    with urllib.request.urlopen(f"{admin_url}{path}", timeout=timeout) as response:
        return response.read().decode()


def cluster_hosts(clusters_page: str, cluster: str) -> dict[str, str]:
    """address:port -> health flags of one cluster's hosts, from the text of /clusters
    (lines `CLUSTER::ADDRESS:PORT::health_flags::FLAGS`)."""
    hosts = {}
    for line in clusters_page.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[0] == cluster and parts[2] == "health_flags":
            hosts[parts[1]] = parts[3]
    return hosts
