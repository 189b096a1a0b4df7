"""Static checks of the services' one Dockerfile (no Docker engine here to build it): for each
SERVICE build argument, the stages, the non-root user, and every COPY source exists in the build
context (services/). That the image's command serves the app: tests/integration/test_service_startup.py."""

import ast
import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
DOCKERFILE = (SERVICES / "Dockerfile").read_text()


def wsgi_app(service: str) -> str:
    tree = ast.parse((SERVICES / service / "gunicorn.conf.py").read_text())
    return next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["wsgi_app"])


def test_dockerfile_key_properties():
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, flags=re.M)
    assert stages and all(re.fullmatch(r"python:3\.11-slim-\w+", image) for image in stages)
    final = DOCKERFILE.split("\nFROM ")[-1]
    user = re.findall(r"^USER (\S+)", final, flags=re.M)
    assert user and re.fullmatch(r"[1-9]\d*:[1-9]\d*", user[-1]), "final stage must run as a non-root numeric user"
    assert re.search(r"^EXPOSE 8080$", final, flags=re.M)
    assert 'CMD ["gunicorn", "--config", "/app/gunicorn.conf.py"]' in final
    assert not re.search(r"apt-get|gcc|build-essential", final), "no build tools in the final image"
    assert "**/__pycache__" in (SERVICES / ".dockerignore").read_text().split()


@pytest.mark.parametrize("service", ["webgatos", "sqrt"])
def test_every_copy_source_exists_for_the_service(service):
    sources = [line.split()[-2] for line in DOCKERFILE.splitlines()
               if line.startswith("COPY ") and "--from" not in line]
    assert sources
    for source in sources:
        assert (SERVICES / source.replace("${SERVICE}", service)).exists(), source
    assert wsgi_app(service) == f"{service}:create_app()"
