"""Reading Envoy's /clusters (lab/host/envoy_admin.py), the one parser the mesh and the plain
balancers share."""

from lab.host import envoy_admin

CLUSTERS_PAGE = """\
replicas::default_priority::max_connections::1024
replicas::127.0.0.1:8081::cx_active::1
replicas::127.0.0.1:8081::health_flags::healthy
replicas::127.0.0.1:8082::health_flags::/failed_active_hc
outbound|80||webgatos.lab.svc.cluster.local::127.1.2.3:8080::health_flags::healthy
"""


def test_cluster_hosts_lists_one_clusters_hosts_with_their_health_flags():
    assert envoy_admin.cluster_hosts(CLUSTERS_PAGE, "replicas") == {"127.0.0.1:8081": "healthy",
                                                                    "127.0.0.1:8082": "/failed_active_hc"}
    assert envoy_admin.cluster_hosts(CLUSTERS_PAGE, "outbound|80||webgatos.lab.svc.cluster.local") == {
        "127.1.2.3:8080": "healthy"}
    assert envoy_admin.cluster_hosts(CLUSTERS_PAGE, "absent") == {}
