"""The throwaway PKI of one control plane: its CA, the certificates it issues (API server,
components, kubelets, clients), ServiceAccount signing keys and kubeconfigs. The lab's cluster
and the host cluster share it (both run controlplane.py)."""

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Credential:
    cert: Path
    key: Path


class CertificateAuthority:
    """A throwaway CA for one control plane; every certificate lives as long as the run."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "resilience-lab-ca")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=2))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = folder / "ca.crt"
        self.cert_path.write_bytes(_pem_cert(self.cert))
        (folder / "ca.key").write_bytes(_pem_key(self.key))

    def issue(self, name: str, common_name: str, organizations: Sequence[str] = (), *,
              server_names: Sequence[str] = (), client: bool = True) -> Credential:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        subject += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateBuilder().subject_name(x509.Name(subject)).issuer_name(self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=2)))
        if server_names:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
            alt_names = []
            for entry in server_names:
                try:
                    alt_names.append(x509.IPAddress(ipaddress.ip_address(entry)))
                except ValueError:
                    alt_names.append(x509.DNSName(entry))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False).sign(self.key, hashes.SHA256())
        credential = Credential(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        credential.cert.write_bytes(_pem_cert(cert))
        credential.key.write_bytes(_pem_key(key))
        credential.key.chmod(0o600)
        return credential


def write_kubeconfig(path: Path, server: str, ca_path: Path, *, user: str, credential: Credential | None = None,
                     token: str | None = None, namespace: str | None = None) -> Path:
    """A one-context kubeconfig (context `lab`) for a client certificate or a bearer token."""
    user_entry = ({"client-certificate": str(credential.cert), "client-key": str(credential.key)}
                  if credential is not None else {"token": token})
    context = {"cluster": "lab", "user": user, **({"namespace": namespace} if namespace else {})}
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "lab",
              "clusters": [{"name": "lab", "cluster": {"server": server, "certificate-authority": str(ca_path)}}],
              "users": [{"name": user, "user": user_entry}],
              "contexts": [{"name": "lab", "context": context}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def write_service_account_keys(folder: Path) -> None:
    """sa.key and sa.pub in `folder`: the API server signs ServiceAccount tokens with them."""
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "sa.key").write_bytes(_pem_key(sa_key))
    (folder / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
