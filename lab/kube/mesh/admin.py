"""Reading the gateway Envoy's admin interface: its counters, the hosts of a cluster, and what
istiod programmed into it (`gateway_config`: the listener, route, cluster and endpoints of one
topology, out of /config_dump)."""

import json

from lab.host import envoy_admin

DUMP_TYPES = {"listener": "ListenersConfigDump", "route": "RoutesConfigDump", "cluster": "ClustersConfigDump",
              "endpoints": "EndpointsConfigDump"}


def stats(admin_url: str) -> dict[str, int]:
    """Envoy's counters and gauges (name -> value); {} when the admin does not answer."""
    try:
        data = json.loads(envoy_admin.read(admin_url, "/stats?format=json"))
    except (OSError, ValueError):
        return {}
    return {item["name"]: item["value"] for item in data.get("stats", [])
            if "name" in item and isinstance(item.get("value"), int)}


def config_dump(admin_url: str) -> dict:
    return json.loads(envoy_admin.read(admin_url, "/config_dump?include_eds"))


def endpoints(admin_url: str, cluster: str) -> dict[str, str]:
    """address:port -> health flags of one Envoy cluster's hosts (what EDS delivered)."""
    return envoy_admin.cluster_hosts(envoy_admin.read(admin_url, "/clusters"), cluster)


def _section(dump: dict, kind: str) -> dict:
    wanted = f"type.googleapis.com/envoy.admin.v3.{DUMP_TYPES[kind]}"
    return next((c for c in dump["configs"] if c["@type"] == wanted), {})


def gateway_config(dump: dict, listen_port: int, upstream_cluster: str) -> dict:
    """The gateway's config for one topology: {listener, route, cluster, endpoints}, as Envoy
    holds it (what istiod sent, after Envoy accepted it); a part Envoy lacks is None."""
    listener = next((entry["active_state"]["listener"] for entry in _section(dump, "listener").get(
        "dynamic_listeners", []) if entry.get("active_state") and
        entry["active_state"]["listener"]["address"]["socket_address"]["port_value"] == listen_port), None)
    route = next((entry["route_config"] for entry in _section(dump, "route").get("dynamic_route_configs", [])
                  if entry["route_config"]["name"].split(".")[:2] == ["http", str(listen_port)]), None)
    cluster = next((entry["cluster"] for entry in _section(dump, "cluster").get("dynamic_active_clusters", [])
                    if entry["cluster"]["name"] == upstream_cluster), None)
    endpoints_ = next((entry["endpoint_config"] for entry in _section(dump, "endpoints").get(
        "dynamic_endpoint_configs", []) if entry["endpoint_config"]["cluster_name"] == upstream_cluster), None)
    return {"listener": listener, "route": route, "cluster": cluster, "endpoints": endpoints_}
