"""make wheel: same inputs, same bytes; the label names the series; the
compiled extensions carry no build paths."""

from __future__ import annotations

import gzip
import tarfile
import zipfile
from pathlib import Path

import pytest

from tools import wheel
from tools.changelog import series_version


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first = tmp_path_factory.mktemp("first")
    second = tmp_path_factory.mktemp("second")
    wheel.build(out=first)
    wheel.build(out=second)
    return first, second


def test_two_clean_builds_are_byte_identical(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    sums = (first / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == 2
    for line in sums:
        digest, name = line.split("  ")
        assert wheel.sha256(first / name) == digest


def test_wheel_is_labelled_manylinux_with_extensions(
    two_builds: tuple[Path, Path],
) -> None:
    (whl,) = two_builds[0].glob("*.whl")
    assert whl.name.startswith(f"aiohttp-{series_version()}-")
    assert "manylinux" in whl.name
    with zipfile.ZipFile(whl) as zf:
        shared = [n for n in zf.namelist() if n.endswith(".so")]
        assert any("_http_parser" in n for n in shared)
        for name in shared:
            blob = zf.read(name)
            for leak in (str(wheel.ROOT).encode(), str(wheel.WORK).encode(), b"pyenv"):
                assert leak not in blob, (name, leak)
        metadata = zf.read(f"aiohttp-{series_version()}.dist-info/METADATA")
        assert f"Version: {series_version()}".encode() in metadata


def test_sdist_is_normalised(two_builds: tuple[Path, Path]) -> None:
    (sdist,) = two_builds[0].glob("*.tar.gz")
    with gzip.open(sdist) as gz:
        assert gz.read(1)
    with tarfile.open(sdist) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert len({m.mtime for m in members}) == 1
    assert any(m.name.endswith("aiohttp/connector.py") for m in members)


def test_repack_is_deterministic(tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.mkdir()
    (src / "b.txt").write_text("b")
    (src / "a.txt").write_text("a")
    outs = []
    for n in (1, 2):
        out = tmp_path / f"{n}.tar.gz"
        with tarfile.open(out, "w:gz") as tar:
            tar.add(src / "b.txt", "x/b.txt")
            tar.add(src / "a.txt", "x/a.txt")
        wheel.repack_sdist(out, 1_000_000_000)
        outs.append(out.read_bytes())
        (src / "a.txt").touch()  # a different mtime must not matter
    assert outs[0] == outs[1]
