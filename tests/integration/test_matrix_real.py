"""make matrix against the real pin, matrix.toml and series (run by `make
test` after `make apply`, which fetched the sdist)."""

from __future__ import annotations

import dataclasses
import os
import tarfile
from pathlib import Path

from tests.tools.throwaway import options, real_sdist, version_patch
from tools import matrix
from tools.patches import SeriesEntry, read_patch
from tools.project import load_pin, matrix_pins

MODULES = ("client.py", "connector.py")  # what matrix.detect reads


def test_detect_on_the_real_pinned_sources(tmp_path: Path) -> None:
    """The pinned release wraps connect() in ClientSession: what the series moves."""
    archive, pin = real_sdist(), load_pin()
    package = tmp_path / "src" / "aiohttp"
    package.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for name in MODULES:
            member = tar.extractfile(f"aiohttp-{pin.version}/aiohttp/{name}")
            assert member is not None, name
            (package / name).write_bytes(member.read())
    got = matrix.detect(package.parent)
    assert got == matrix.Upstream(session_wraps=True, connector_times=False)


def test_the_real_pin_with_a_throwaway_series(tmp_path: Path) -> None:
    archive, pin = real_sdist(), load_pin()
    marked = tmp_path / "version.patch"
    marked.write_text(version_patch(pin.version))
    opts = options(tmp_path, [read_patch(SeriesEntry("version.patch", marked, 1))])
    opts = dataclasses.replace(opts, main_version=pin.version)
    opts.cache_dir.mkdir()
    os.link(archive, opts.cache_dir / archive.name)
    steps: list[str] = []
    row = matrix.check_version(pin, opts, steps.append)
    assert (row.sha256, row.applies, row.details, row.main) == (
        "verified",
        matrix.ZERO_FUZZ,
        [],
        True,
    )
    assert row.ok
    assert steps == ["fetching", "unpacking", "applying"]


def test_matrix_toml_pins_every_3_10_release() -> None:
    versions = {p.version for p in matrix_pins()}
    assert {f"3.10.{n}" for n in range(12)} <= versions
    assert any(v.startswith("3.11.") for v in versions)
    assert any(v.startswith(("3.12.", "3.13.")) for v in versions)
