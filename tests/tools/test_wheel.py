"""make wheel / wheels: same inputs, same bytes, for two Pythons; manylinux
tags; the label in the metadata and not in __version__; no build paths in
the extensions; dist/ holds only what twine accepts."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tools import sdist, wheel
from tools.changelog import series_version


def two_pythons() -> list[wheel.Python]:
    """The running Python and the oldest other supported one found."""
    here = wheel.running_python()
    for version in wheel.SUPPORTED:
        other = wheel.find_python(version) if version != here.version else None
        if other is not None:
            return [here, other]
    pytest.skip("needs a second supported Python (pyenv's 3.9 ... 3.13)")


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    pythons = two_pythons()
    first = tmp_path_factory.mktemp("first") / "dist"
    second = tmp_path_factory.mktemp("second") / "dist"
    wheel.build(out=first, pythons=pythons)
    wheel.build(out=second, pythons=pythons)
    return first, second


def test_two_clean_builds_are_byte_identical_for_two_pythons(
    two_builds: tuple[Path, Path],
) -> None:
    first, second = two_builds
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    tags = {wheel.wheel_tag(p) for p in first.glob("*.whl")}
    assert len(tags) == 2, tags
    assert wheel.sums_file(first).read_bytes() == wheel.sums_file(second).read_bytes()


def test_checksums_sit_beside_dist_and_verify(two_builds: tuple[Path, Path]) -> None:
    dist = two_builds[0]
    sums = wheel.sums_file(dist)
    assert sums.parent == dist.parent and sums.name == "dist.sha256"
    assert sorted(p.suffix for p in dist.iterdir()) == [".gz", ".whl", ".whl"]
    lines = sums.read_text().splitlines()
    assert sorted(line.split("  ")[1] for line in lines) == sorted(
        f"dist/{p.name}" for p in dist.iterdir()
    )
    done = subprocess.run(
        ["sha256sum", "-c", sums.name], cwd=dist.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_twine_check_accepts_dist_and_only_distributions(
    two_builds: tuple[Path, Path], tmp_path: Path
) -> None:
    def twine_check(dist: Path) -> subprocess.CompletedProcess[str]:
        files = sorted(str(p) for p in dist.iterdir())  # what `dist/*` expands to
        return subprocess.run(
            [sys.executable, "-m", "twine", "check", "--strict", *files],
            capture_output=True,
            text=True,
        )

    done = twine_check(two_builds[0])
    assert done.returncode == 0, done.stdout + done.stderr
    # the old layout, a checksum file inside dist/, is what twine refuses
    old = tmp_path / "dist"
    shutil.copytree(two_builds[0], old)
    (old / "SHA256SUMS").write_text("x  y\n")
    done = twine_check(old)
    assert done.returncode != 0
    assert "SHA256SUMS" in done.stdout + done.stderr


def test_wheels_are_manylinux_with_extensions_and_no_build_paths(
    two_builds: tuple[Path, Path],
) -> None:
    wheels = sorted(two_builds[0].glob("*.whl"))
    for whl in wheels:
        tag = wheel.wheel_tag(whl)
        assert whl.name.startswith(f"aiohttp-{series_version()}-{tag}-{tag}-")
        assert re.search(r"-manylinux[^-]*_x86_64\.whl$", whl.name), whl.name
        with zipfile.ZipFile(whl) as zf:
            shared = [n for n in zf.namelist() if n.endswith(".so")]
            for ext in wheel.C_EXTENSIONS:
                assert any(n.startswith(f"aiohttp/{ext}.cpython-") for n in shared)
            for name in shared:
                blob = zf.read(name)
                for leak in (str(wheel.ROOT), str(wheel.WORK), "pyenv", "/tmp/"):
                    assert leak.encode() not in blob, (whl.name, name, leak)


def test_label_is_in_the_metadata_and_not_in_dunder_version(
    two_builds: tuple[Path, Path],
) -> None:
    """What an installed wheel reports: `pip show` and importlib.metadata give
    the label, aiohttp.__version__ (and so the User-Agent) stays upstream's."""
    upstream = sdist.load_pin().version
    for whl in two_builds[0].glob("*.whl"):
        with zipfile.ZipFile(whl) as zf:
            metadata = zf.read(f"aiohttp-{series_version()}.dist-info/METADATA")
            init = zf.read("aiohttp/__init__.py").decode()
        assert f"\nVersion: {series_version()}\n".encode() in metadata
        assert init.startswith(f'__version__ = "{upstream}"\n')


def test_sdist_is_normalised(two_builds: tuple[Path, Path]) -> None:
    (archive,) = two_builds[0].glob("*.tar.gz")
    with gzip.open(archive) as gz:
        assert gz.read(1)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        cfg = tar.extractfile(f"aiohttp-{series_version()}/setup.cfg")
        assert cfg is not None
        assert f"tag_build = +{series_version().split('+')[1]}\n" in cfg.read().decode()
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


def fake_python(root: Path, release: str, reports: str) -> Path:
    exe = root / "versions" / release / "bin" / "python3"
    exe.parent.mkdir(parents=True)
    exe.write_text(f"#!/bin/sh\necho {reports}\n")
    exe.chmod(0o755)
    return exe


def fake_path(tmp_path: Path) -> Path:
    """A PATH of one empty directory: no pythonX.Y of this machine on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    return bin_dir


def test_finds_the_newest_pyenv_release_and_says_which_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(fake_path(tmp_path)))
    fake_python(tmp_path, "3.9.1", "3.9")
    newest = fake_python(tmp_path, "3.9.18", "3.9")
    fake_python(tmp_path, "3.13.0t", "3.13")  # free-threaded: not cp313
    fake_python(tmp_path, "3.12.1", "3.8")  # not what its name says
    found = wheel.supported_pythons()
    here = wheel.running_python()
    assert [p.tag for p in found] == ["cp39", here.tag]
    assert found[0].path == str(newest)
    out = capsys.readouterr().out.splitlines()
    missing = [v for v in ("3.10", "3.11", "3.12", "3.13") if v != here.version]
    assert out == [
        f"skip cp{v.replace('.', '')}: no Python {v} under {tmp_path}/versions "
        "or on PATH"
        for v in missing
    ]


def test_a_python_on_path_counts_when_pyenv_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    bin_dir = fake_path(tmp_path)
    monkeypatch.setenv("PATH", str(bin_dir))
    exe = bin_dir / "python3.12"
    exe.write_text("#!/bin/sh\necho 3.12\n")
    exe.chmod(0o755)
    assert wheel.find_python("3.12") == wheel.Python("3.12", str(exe))


def test_smoke_skips_a_wheel_whose_python_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(fake_path(tmp_path)))
    dist = tmp_path / "dist"
    dist.mkdir()
    name = "aiohttp-3.10.10+x-cp38-cp38-manylinux_2_17_x86_64.whl"
    (dist / name).write_bytes(b"")
    wheel.smoke(dist)
    assert capsys.readouterr().out == (
        f"skip {name}: no Python 3.8 under {tmp_path}/versions or on PATH\n"
    )
    with pytest.raises(wheel.WheelError, match="no aiohttp wheel"):
        wheel.smoke(tmp_path)
