"""redis_exporter's pinned version: the Makefile builds the one the lab looks for."""

import re

from lab.host.paths import REPO_ROOT
from lab.observe import exporters


def test_the_makefile_builds_the_version_the_lab_looks_for():
    pinned = re.search(r"^REDIS_EXPORTER_VERSION := (\S+)$", (REPO_ROOT / "Makefile").read_text(), flags=re.M)
    assert pinned and pinned[1] == exporters.REDIS_EXPORTER_VERSION
    assert exporters.REDIS_EXPORTER_DIR.name == f"redis_exporter-{pinned[1]}"


def test_a_missing_exporter_names_the_make_target(monkeypatch, tmp_path):
    monkeypatch.setattr(exporters, "REDIS_EXPORTER_DIR", tmp_path / "absent")
    monkeypatch.setattr(exporters.shutil, "which", lambda name: None)
    monkeypatch.delenv("REDIS_EXPORTER_BIN", raising=False)
    monkeypatch.delenv("LAB_ASSETS", raising=False)
    try:
        exporters.redis_exporter_binary()
    except exporters.binaries.MissingBinary as missing:
        assert str(missing).startswith("redis_exporter not found: run `make redis-exporter`")
    else:
        raise AssertionError("no MissingBinary")
