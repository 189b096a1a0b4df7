"""The lab's mesh: real istiod (`pilot-discovery`, from `make control-plane`) against the lab's
API server (istiod.py), and Istio's ingress gateway as a Pod on the lab's node: Envoy fed by
istiod over xDS (gateway.py), read back through its admin interface (admin.py).

Everything Istio does here comes from the resources on the API server: the chart's Gateway,
VirtualService and DestinationRule (`helm install charts/webgatos -f istio/scenarios/NAME.yaml`)
and the Service's endpoints, which the lab publishes as WorkloadEntries (registry.py) because
EndpointSlices refuse the loopback addresses of the lab node's Pods. `Mesh` (mesh.py) starts the
lot on a control plane and node.
"""
