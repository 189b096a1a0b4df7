"""`python -m lab envoy --scenario NAME`: what istiod programs into Istio's ingress gateway for a
mesh scenario. The lab starts (control plane, istiod, the gateway), installs charts/webgatos with
istio/scenarios/NAME.yaml, and prints the gateway Envoy's listener, route, cluster and endpoints
for the chart's Service, from its /config_dump, as YAML.

`observed(dump, topology)` picks those four out of a config_dump; lab/compose and the tests use it.
"""

import argparse
import sys
import tempfile

import yaml

from lab import binaries

DUMP_TYPES = {"listener": "ListenersConfigDump", "route": "RoutesConfigDump", "cluster": "ClustersConfigDump",
              "endpoints": "EndpointsConfigDump"}


def _section(dump: dict, kind: str) -> dict:
    wanted = f"type.googleapis.com/envoy.admin.v3.{DUMP_TYPES[kind]}"
    return next((c for c in dump["configs"] if c["@type"] == wanted), {})


def observed(dump: dict, listen_port: int, upstream_cluster: str) -> dict:
    """The gateway's config for one topology: {listener, route, cluster, endpoints}, as Envoy
    holds it (what istiod sent, after Envoy accepted it)."""
    listener = next((entry["active_state"]["listener"] for entry in _section(dump, "listener").get(
        "dynamic_listeners", []) if entry.get("active_state") and
        entry["active_state"]["listener"]["address"]["socket_address"]["port_value"] == listen_port), None)
    route = next((entry["route_config"] for entry in _section(dump, "route").get("dynamic_route_configs", [])
                  if entry["route_config"]["name"].split(".")[:2] == ["http", str(listen_port)]), None)
    cluster = next((entry["cluster"] for entry in _section(dump, "cluster").get("dynamic_active_clusters", [])
                    if entry["cluster"]["name"] == upstream_cluster), None)
    endpoints = next((entry["endpoint_config"] for entry in _section(dump, "endpoints").get(
        "dynamic_endpoint_configs", []) if entry["endpoint_config"]["cluster_name"] == upstream_cluster), None)
    return {"listener": listener, "route": route, "cluster": cluster, "endpoints": endpoints}


def topology_config(topology, timeout: float = 30.0) -> dict:
    """observed() for a running topology, once Envoy holds all four parts (RDS can trail LDS)."""
    from lab.procs import wait_until

    port = int(topology.url.rsplit(":", 1)[1])
    found = {}

    def complete() -> bool:
        found.update(observed(topology.mesh.config_dump(), port, topology.upstream_cluster))
        return all(found.values())
    wait_until(complete, timeout, f"the gateway to hold the listener, route, cluster and endpoints of {topology.url}",
               interval=0.2)
    return found


def register(subparsers) -> None:
    parser = subparsers.add_parser("envoy", help="print what istiod programs into the gateway for a mesh scenario",
                                   description=__doc__.splitlines()[0].split(": ", 1)[1],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scenario", help="istio/scenarios/NAME.yaml (a values overlay for charts/webgatos)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.set_defaults(func=run)


def run(args) -> int:
    from lab.topology import LabCluster, LabInputError, TopologySpec, running, scenario_names

    if args.list:
        print("\n".join(scenario_names()))
        return 0
    if not args.scenario:
        print(f"envoy: --scenario is required; known scenarios: {', '.join(scenario_names())}", file=sys.stderr)
        return 2
    spec = TopologySpec(store="memory", replicas=2, scenario=args.scenario)
    try:
        spec.validate()
    except LabInputError as error:
        print(f"envoy: {error}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="lab-envoy-") as tmp, LabCluster(tmp) as cluster, \
                running(spec, f"{tmp}/case", cluster) as topology:
            config = topology_config(topology)
    except (LabInputError, binaries.MissingBinary, RuntimeError, TimeoutError) as error:
        print(f"envoy: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(f"# What istiod programmed into the ingress gateway for istio/scenarios/{args.scenario}.yaml\n")
    sys.stdout.write(yaml.safe_dump(config, sort_keys=False))
    return 0
