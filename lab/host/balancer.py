"""Plain Envoy load balancers for what needs one without the mesh (tests, `make demo`'s browser
walk, the benchmarks): no Istio policy here, only balancing, which the lab's mesh (lab/kube/mesh/) leaves to istiod.

- `http_balancer`: each HTTP request to the next ready replica (round robin), as an L7 proxy does.
- `tcp_balancer`: each TCP connection to the next ready replica, then it stays there, as a
  Kubernetes Service (kube-proxy) balances: a client that keeps its connection alive sees one
  replica.

Readiness is Envoy's active health check on `/readyz` (the replicas' readiness probe), every
0.5 s, with panic routing off: an unready replica gets nothing, as an unready Pod is no endpoint.
"""

import json
from collections.abc import Sequence
from pathlib import Path

from lab.host import envoy_admin
from lab.host.procs import LOOPBACK, free_port, wait_until

CLUSTER = "replicas"
# IPPROTO_TCP / TCP_NODELAY: Envoy's sockets never wait for Nagle (DESIGN trap: +40 ms a request).
TCP_NODELAY = {"description": "TCP_NODELAY", "level": 6, "name": 1, "int_value": 1}
READINESS_CHECK = {"timeout": "1.5s", "interval": "0.5s", "no_traffic_interval": "0.5s", "unhealthy_threshold": 2,
                   "healthy_threshold": 1, "http_health_check": {"path": "/readyz"}}


def _cluster(upstreams: Sequence[tuple[str, int]]) -> dict:
    return {
        "name": CLUSTER, "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": CLUSTER, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}
            for host, port in upstreams]}]},
        "health_checks": [READINESS_CHECK],
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "upstream_bind_config": {"source_address": {"address": LOOPBACK, "port_value": 0},
                                 "socket_options": [TCP_NODELAY]},
    }


def _bootstrap(listen_port: int, admin_port: int, network_filter: dict, upstreams) -> dict:
    return {
        "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{"name": "front", "address": {"socket_address": {"address": LOOPBACK,
                                                                           "port_value": listen_port}},
                           "socket_options": [TCP_NODELAY], "filter_chains": [{"filters": [network_filter]}]}],
            "clusters": [_cluster(upstreams)]},
    }


def http_balancer(*, listen_port: int, admin_port: int, upstreams: Sequence[tuple[str, int]]) -> dict:
    router = {"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    manager = {"name": "envoy.filters.network.http_connection_manager", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                 ".HttpConnectionManager",
        "stat_prefix": "front", "codec_type": "AUTO",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
            {"match": {"prefix": "/"}, "route": {"cluster": CLUSTER, "timeout": "15s"}}]}]},
        "http_filters": [router]}}
    return _bootstrap(listen_port, admin_port, manager, upstreams)


def tcp_balancer(*, listen_port: int, admin_port: int, upstreams: Sequence[tuple[str, int]]) -> dict:
    proxy = {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        "stat_prefix": "front", "cluster": CLUSTER}}
    return _bootstrap(listen_port, admin_port, proxy, upstreams)


def start(group, workdir, upstreams: Sequence[tuple[str, int]], *, layer: str = "http", name: str = "balancer",
          extra_args: Sequence[str] = (), timeout: float = 30.0) -> tuple[str, int]:
    """Run a balancer through `group` (ProcessGroup) until every upstream passes its health check;
    return (its URL, its admin port)."""
    listen_port, admin_port = free_port(), free_port()
    render = http_balancer if layer == "http" else tcp_balancer
    config = Path(workdir) / f"{name}.json"
    config.write_text(json.dumps(render(listen_port=listen_port, admin_port=admin_port, upstreams=upstreams)))
    proc = group.envoy(config, admin_port, name=name, extra_args=extra_args)
    wait_until(lambda: healthy(admin_port) >= set(upstreams), timeout,
               f"{name} to see {len(upstreams)} ready replicas", proc=proc)
    return f"http://{LOOPBACK}:{listen_port}", admin_port


def healthy(admin_port: int) -> set[tuple[str, int]]:
    """The upstreams that pass the health check now; empty when the admin does not answer."""
    try:
        page = envoy_admin.read(f"http://{LOOPBACK}:{admin_port}", "/clusters", timeout=2)
    except OSError:
        return set()
    found = set()
    for address, flags in envoy_admin.cluster_hosts(page, CLUSTER).items():
        if flags == "healthy":
            host, _, port = address.rpartition(":")
            found.add((host, int(port)))
    return found
