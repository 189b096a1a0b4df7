"""`python -m lab envoy --scenario NAME`: what istiod programs into Istio's ingress gateway for a
mesh scenario. The lab starts (control plane, istiod, the gateway), installs charts/webgatos with
istio/scenarios/NAME.yaml, and prints the gateway Envoy's listener, route, cluster and endpoints
for the chart's Service, from its /config_dump, as YAML (lab/kube/mesh/admin.py reads them).
"""

import argparse
import sys
import tempfile

import yaml

from lab.host import binaries
from lab.kube.cluster import LabCluster
from lab.workloads.topology import LabInputError, TopologySpec, gateway_config, running, scenario_names


def register(subparsers) -> None:
    parser = subparsers.add_parser("envoy", help="print what istiod programs into the gateway for a mesh scenario",
                                   description=__doc__.splitlines()[0].split(": ", 1)[1],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scenario", help="istio/scenarios/NAME.yaml (a values overlay for charts/webgatos)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.set_defaults(func=run)


def run(args) -> int:
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
            config = gateway_config(topology)
    except (LabInputError, binaries.MissingBinary, RuntimeError, TimeoutError) as error:
        print(f"envoy: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(f"# What istiod programmed into the ingress gateway for istio/scenarios/{args.scenario}.yaml\n")
    sys.stdout.write(yaml.safe_dump(config, sort_keys=False))
    return 0
