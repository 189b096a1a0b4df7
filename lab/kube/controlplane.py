"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler, built from the pinned Go modules (`make control-plane`, versions in
tools/controlplane/versions.env).

    with ProcessGroup(log_dir) as group:
        plane = ControlPlane(workdir, group).start()   # certs, etcd, API server, controllers
        plane.kubectl("apply", "--server-side", "-f", path)

The API server authorizes with RBAC, admits with PodSecurity (every namespace defaults to
`restricted`; the label on a namespace still decides) and signs ServiceAccount tokens, so a
token from `plane.service_account_token(...)` carries exactly the rights its Role grants. There
is no kubelet and no container runtime: Pods are created and scheduled but run only where the lab
runs them itself (lab/kube/node/). Its certificates come from pki.py.
"""

import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import yaml

from lab.host import binaries
from lab.host.procs import LOOPBACK, ProcessGroup, free_port, wait_until
from lab.kube.pki import CertificateAuthority, Credential, write_kubeconfig, write_service_account_keys

SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
SERVICE_ACCOUNT_ISSUER = f"https://kubernetes.default.svc.{CLUSTER_DOMAIN}"
# Every namespace enforces `restricted` unless its own labels say otherwise; kube-system is exempt
# as on any cluster (nothing runs there, but the controllers create objects in it).
POD_SECURITY_DEFAULTS = {"enforce": "restricted", "enforce-version": "latest", "audit": "restricted",
                         "audit-version": "latest", "warn": "restricted", "warn-version": "latest"}
FRONT_PROXY_CLIENT = "front-proxy-client"
RESTRICTED_LABELS = {f"pod-security.kubernetes.io/{key}": value for key, value in POD_SECURITY_DEFAULTS.items()}


class ControlPlaneError(RuntimeError):
    """A control-plane component did not start or a kubectl call failed; the message has its log."""


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler, started through `group`
    (so they die with it) with state under `workdir`."""

    def __init__(self, workdir: str | Path, group: ProcessGroup, *, controller_args: Sequence[str] = (),
                 address: str = LOOPBACK, api_port: int | None = None, node_authorizer: bool = False):
        """`address` is where the API server listens and what it advertises: loopback for the lab,
        the node's address for a cluster whose Pods reach it through the `kubernetes` Service.
        `node_authorizer` adds the Node authorizer and NodeRestriction, for real kubelets."""
        self.workdir = Path(workdir).resolve()  # kubeconfigs name files; relative names would not resolve
        self.group = group
        self.controller_args = list(controller_args)
        self.address = address
        self.node_authorizer = node_authorizer
        self.api_port = api_port or free_port()
        self.url = f"https://{address}:{self.api_port}"
        self.pki = self.workdir / "pki"
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"

    # Life cycle

    def start(self, timeout: float = 120.0) -> "ControlPlane":
        # A throwaway cluster: what an earlier run left (its etcd data, its Pods) must not come back.
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ca = CertificateAuthority(self.pki)
        serving = self.ca.issue("apiserver", "kube-apiserver", server_names=[
            LOOPBACK, "localhost", self.address, str(next(ipaddress.ip_network(SERVICE_CIDR).hosts())),
            "kubernetes", "kubernetes.default", "kubernetes.default.svc", f"kubernetes.default.svc.{CLUSTER_DOMAIN}"],
            client=False)
        self.admin = self.ca.issue("admin", "lab-admin", ["system:masters"])
        # The aggregation layer's client (API server -> metrics-server), as kubeadm's front proxy.
        self.front_proxy = self.ca.issue("front-proxy-client", FRONT_PROXY_CLIENT)
        # The API server's client for real kubelets (logs, exec, port-forward), as kubeadm's.
        self.kubelet_client = self.ca.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                            ["system:masters"])
        write_service_account_keys(self.pki)
        write_kubeconfig(self.admin_kubeconfig, self.url, self.ca.cert_path, user="lab-admin", credential=self.admin)

        etcd_url = self._start_etcd(timeout)
        self._start_apiserver(etcd_url, serving, timeout)
        self._start_controller_manager(timeout)
        self._start_scheduler(timeout)
        return self

    def _start_etcd(self, timeout: float) -> str:
        client_port, peer_port = free_port(), free_port()
        client, peer = f"http://{LOOPBACK}:{client_port}", f"http://{LOOPBACK}:{peer_port}"
        proc = self.group.start("etcd", [
            binaries.control_plane("etcd"), "--name", "lab", "--data-dir", str(self.workdir / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"lab={peer}", "--listen-metrics-urls", f"http://{LOOPBACK}:{free_port()}",
            # A throwaway store: durability buys nothing here, and fsync on a loaded disk stalls the API.
            "--unsafe-no-fsync", "--log-level", "warn"])
        wait_until(lambda: _http_ok(f"{client}/health"), timeout, f"etcd at {client}", interval=0.1, proc=proc)
        return client

    def _start_apiserver(self, etcd_url: str, serving: Credential, timeout: float) -> None:
        admission = self.workdir / "admission.yaml"
        admission.write_text(yaml.safe_dump({
            "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
            "plugins": [{"name": "PodSecurity", "configuration": {
                "apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
                "defaults": POD_SECURITY_DEFAULTS,
                "exemptions": {"usernames": [], "runtimeClasses": [], "namespaces": ["kube-system"]}}}]}))
        loopback = ipaddress.ip_address(self.address).is_loopback
        proc = self.group.start("kube-apiserver", [
            binaries.control_plane("kube-apiserver"),
            "--etcd-servers", etcd_url,
            "--bind-address", self.address, "--advertise-address", self.address, "--secure-port", str(self.api_port),
            "--tls-cert-file", str(serving.cert), "--tls-private-key-file", str(serving.key),
            "--client-ca-file", str(self.ca.cert_path),
            "--authorization-mode", "Node,RBAC" if self.node_authorizer else "RBAC",
            # Real kubelets: NodeRestriction, and logs/exec reach a node by its address (no DNS for node names).
            *(["--enable-admission-plugins", "NodeRestriction",
               "--kubelet-preferred-address-types", "InternalIP,Hostname",
               "--kubelet-certificate-authority", str(self.ca.cert_path),
               "--kubelet-client-certificate", str(self.kubelet_client.cert),
               "--kubelet-client-key", str(self.kubelet_client.key)] if self.node_authorizer else []),
            "--admission-control-config-file", str(admission),
            "--service-account-issuer", SERVICE_ACCOUNT_ISSUER,
            "--service-account-key-file", str(self.pki / "sa.pub"),
            "--service-account-signing-key-file", str(self.pki / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CIDR,
            # On loopback the default reconciler would publish 127.0.0.1 as the `kubernetes` Service's
            # endpoint, which EndpointSlice validation refuses; nothing in the lab needs it. Pods of
            # a real node reach the API server through that Service.
            "--endpoint-reconciler-type", "none" if loopback else "lease",
            "--cert-dir", str(self.workdir / "apiserver-certs"),
            # The aggregation layer, for metrics.k8s.io (metrics_server.py).
            "--requestheader-client-ca-file", str(self.ca.cert_path),
            "--requestheader-allowed-names", FRONT_PROXY_CLIENT,
            "--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
            "--requestheader-extra-headers-prefix", "X-Remote-Extra-",
            "--proxy-client-cert-file", str(self.front_proxy.cert),
            "--proxy-client-key-file", str(self.front_proxy.key),
            "--profiling=false", "--v=1"])
        wait_until(lambda: self._api_ready(), timeout, f"kube-apiserver at {self.url}/readyz", interval=0.2, proc=proc)

    def _start_component(self, program: str, user: str, args: Sequence[str], timeout: float) -> None:
        """A controller-style component with its own client certificate, serving /healthz."""
        credential = self.ca.issue(program, user)
        kubeconfig = str(write_kubeconfig(self.workdir / f"{program}.kubeconfig", self.url, self.ca.cert_path,
                                          user=user, credential=credential))
        port = free_port()
        proc = self.group.start(program, [
            binaries.control_plane(program), "--kubeconfig", kubeconfig, "--authentication-kubeconfig", kubeconfig,
            "--authorization-kubeconfig", kubeconfig, "--bind-address", LOOPBACK, "--secure-port", str(port),
            "--leader-elect=false", "--v=1", *args])
        wait_until(lambda: _https_ok(f"https://{LOOPBACK}:{port}/healthz"), timeout, f"{program} /healthz",
                   interval=0.2, proc=proc)

    def _start_controller_manager(self, timeout: float) -> None:
        self._start_component("kube-controller-manager", "system:kube-controller-manager", [
            # Each controller acts with its own ServiceAccount, so RBAC is exercised as on a cluster.
            "--use-service-account-credentials",
            "--service-account-private-key-file", str(self.pki / "sa.key"),
            "--root-ca-file", str(self.ca.cert_path),
            "--cluster-signing-cert-file", str(self.ca.cert_path),
            "--cluster-signing-key-file", str(self.pki / "ca.key"), *self.controller_args], timeout)

    def _start_scheduler(self, timeout: float) -> None:
        self._start_component("kube-scheduler", "system:kube-scheduler", [], timeout)

    def _api_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=2, context=self.ssl_context()) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    # Clients

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca.cert_path))
        context.load_cert_chain(str(self.admin.cert), str(self.admin.key))
        return context

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """Environment for kubectl, helm, istioctl and the chaos tool: this server only."""
        return {**os.environ, "KUBECONFIG": str(kubeconfig or self.admin_kubeconfig)}

    def kubectl(self, *args: str, kubeconfig: Path | None = None, input_text: str | None = None,
                check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess:
        result = subprocess.run([binaries.control_plane("kubectl"), *args], capture_output=True, text=True,
                                input=input_text, env=self.env(kubeconfig), timeout=timeout,
                                stdin=None if input_text is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)} exited {result.returncode}:\n"
                                    f"{result.stderr}{result.stdout}")
        return result

    def get(self, *args: str, kubeconfig: Path | None = None) -> dict:
        return json.loads(self.kubectl("get", *args, "-o", "json", kubeconfig=kubeconfig).stdout)

    def api_client(self, kubeconfig: Path | None = None):
        """An official-client ApiClient for the admin, or for another kubeconfig."""
        from kubernetes import config
        return config.new_client_from_config(config_file=str(kubeconfig or self.admin_kubeconfig))

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        """A namespace labelled to enforce PodSecurity `restricted` (plus `labels`)."""
        manifest = {"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": name, "labels": {**RESTRICTED_LABELS, **(labels or {})}}}
        self.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(manifest))

    def service_account_token(self, namespace: str, name: str, *, audiences: Sequence[str] = (),
                              seconds: int = 3600) -> str:
        """A bound token for ServiceAccount `name` (the TokenRequest API, as a kubelet projects it)."""
        args = ["create", "token", name, "--namespace", namespace, "--duration", f"{seconds}s"]
        for audience in audiences:
            args += ["--audience", audience]
        return self.kubectl(*args).stdout.strip()

    def token_kubeconfig(self, path: Path, token: str, user: str, namespace: str | None = None) -> Path:
        return write_kubeconfig(path, self.url, self.ca.cert_path, user=user, token=token, namespace=namespace)

    def apply_istio_crds(self, bundle: str | Path | None = None) -> None:
        """Istio's CRDs, applied server-side and waited on until every one is Established: the
        bundle from the same commit as the lab's istiod, or `bundle` (the tests pass the release the
        cluster demos install)."""
        crds = str(bundle) if bundle else binaries.istio_file("crd-all.gen.yaml")
        self.kubectl("apply", "--server-side", "--field-manager", "lab", "-f", crds)

        # Polled, not `kubectl wait`: that fails at once ("accessor error") on a CRD whose status
        # has no conditions yet, as a just-applied one may (seen with a busy API server).
        def established() -> bool:
            items = self.get("crd", "-l", "chart=istio")["items"]
            return bool(items) and all(
                any(c["type"] == "Established" and c["status"] == "True"
                    for c in (item.get("status") or {}).get("conditions") or []) for item in items)
        wait_until(established, 60, "Istio's CRDs to be Established", interval=0.2)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _https_ok(url: str) -> bool:
    """A component's own /healthz: serving certificates are self-signed; there is nothing to verify."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False
