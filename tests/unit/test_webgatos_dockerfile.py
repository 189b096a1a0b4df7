"""Static checks of both services' Dockerfiles (no Docker engine here to build them)."""

import re
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"


@pytest.mark.parametrize("service", ["webgatos", "sqrt"])
def test_dockerfile_key_properties(service):
    text = (SERVICES / service / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.M)
    assert stages and all(re.fullmatch(r"python:3\.11-slim-\w+", image.split()[0]) for image in stages)
    final = text.split("\nFROM ")[-1]
    user = re.findall(r"^USER (\S+)", final, flags=re.M)
    assert user and re.fullmatch(r"[1-9]\d*:[1-9]\d*", user[-1]), "final stage must run as a non-root numeric user"
    assert re.search(r"^EXPOSE 8080$", final, flags=re.M)
    assert f'"{service}:create_app()"' in final and '"gunicorn", "--config"' in final
    assert not re.search(r"apt-get|gcc|build-essential", final), "no build tools in the final image"
    for required in ("requirements.txt", "gunicorn.conf.py", f"{service}/"):
        assert required in text
    ignored = (SERVICES / service / ".dockerignore").read_text().split()
    assert "**/__pycache__" in ignored
