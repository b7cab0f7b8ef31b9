"""make wheel / wheels on the real series (run after `make apply`): same
inputs, same bytes, for two Pythons; manylinux tags; the label in the
metadata and not in __version__; no build paths in the extensions; dist/
holds only what twine accepts; each wheel's hash lock installs it with
`pip install --require-hashes` and refuses a wrong hash."""

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

from tools import hashlock, sdist, wheel
from tools.project import (
    CHECKOUT,
    DIST,
    ROOT,
    make_venv,
    require_checkout,
    series_version,
)

VERSION = series_version()
# Two full builds for two Pythons: `make test-slow` (in .ci/run), not `make test`.
pytestmark = pytest.mark.slow


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
    require_checkout(CHECKOUT)  # fails, not skips: make test runs this after apply
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
    locks = sorted(p.name for p in hashlock.locks_dir(dist).iterdir())
    assert locks == sorted(f"{wheel.wheel_tag(w)}.txt" for w in dist.glob("*.whl"))
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
        assert whl.name.startswith(f"aiohttp-{VERSION}-{tag}-{tag}-")
        assert re.search(r"-manylinux[^-]*_x86_64\.whl$", whl.name), whl.name
        with zipfile.ZipFile(whl) as zf:
            shared = [n for n in zf.namelist() if n.endswith(".so")]
            for ext in wheel.C_EXTENSIONS:
                assert any(n.startswith(f"aiohttp/{ext}.cpython-") for n in shared)
            for name in shared:
                blob = zf.read(name)
                for leak in (str(ROOT), str(wheel.WORK), "pyenv", "/tmp/"):
                    assert leak.encode() not in blob, (whl.name, name, leak)


def test_label_is_in_the_metadata_and_not_in_dunder_version(
    two_builds: tuple[Path, Path],
) -> None:
    """What an installed wheel reports: `pip show` and importlib.metadata give
    the label, aiohttp.__version__ (and so the User-Agent) stays upstream's."""
    upstream = VERSION.upstream
    for whl in two_builds[0].glob("*.whl"):
        with zipfile.ZipFile(whl) as zf:
            metadata = zf.read(f"aiohttp-{VERSION}.dist-info/METADATA")
            init = zf.read("aiohttp/__init__.py").decode()
        assert f"\nVersion: {VERSION}\n".encode() in metadata
        assert init.startswith(f'__version__ = "{upstream}"\n')


def test_sdist_is_normalised(two_builds: tuple[Path, Path]) -> None:
    (archive,) = two_builds[0].glob("*.tar.gz")
    with gzip.open(archive) as gz:
        assert gz.read(1)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        cfg = tar.extractfile(f"aiohttp-{VERSION}/setup.cfg")
        assert cfg is not None
        assert f"tag_build = +{VERSION.label}\n" in cfg.read().decode()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    assert len({m.mtime for m in members}) == 1
    assert any(m.name.endswith("aiohttp/connector.py") for m in members)


def pins(lock: str) -> list[str]:
    return [line for line in lock.splitlines() if not line.startswith("#")]


def test_each_wheel_has_a_hash_lock_of_it_and_its_pinned_dependencies(
    two_builds: tuple[Path, Path],
) -> None:
    first, second = two_builds
    for whl in first.glob("*.whl"):
        lock = hashlock.lock_path(first, wheel.wheel_tag(whl))
        text = lock.read_text()
        own = f"aiohttp=={VERSION} \\\n    --hash=sha256:{sdist.sha256_of(whl)}\n"
        assert own in text
        requirements = [line for line in text.splitlines() if line[:1].isalnum()]
        assert len(requirements) >= 7  # aiohttp, yarl, multidict, attrs, ...
        for line in requirements:
            assert re.fullmatch(r"[a-z0-9-]+==\S+ \\", line), line
        assert text.count("--hash=sha256:") >= len(requirements)
        again = hashlock.lock_path(second, lock.stem).read_text()
        assert pins(text) == pins(again)  # the header names the dist directory


def pip_install(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    python = str(venv / "bin" / "python")
    return subprocess.run(
        [python, "-m", "pip", "--disable-pip-version-check", "install", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_lock_installs_with_require_hashes_and_refuses_a_wrong_hash(
    two_builds: tuple[Path, Path], tmp_path: Path
) -> None:
    """The README's one line, in a fresh venv of the wheel's own Python."""
    dist = two_builds[0]
    here = wheel.running_python()
    lock = hashlock.lock_path(dist, here.tag)
    venv = tmp_path / "venv"
    make_venv(venv, here.path)
    done = pip_install(
        venv, "--require-hashes", "--find-links", str(dist), "-r", str(lock)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    version = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import importlib.metadata as md, aiohttp._http_parser;"
         "print(md.version('aiohttp'))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert version == str(VERSION)
    # the same lock with one digit of the wheel's hash changed
    right = sdist.sha256_of(next(dist.glob(f"*-{here.tag}-*.whl")))
    wrong = right[:-1] + ("0" if right[-1] != "0" else "1")
    bad = tmp_path / "bad.txt"
    bad.write_text(lock.read_text().replace(right, wrong))
    fresh = tmp_path / "fresh"
    make_venv(fresh, here.path)
    done = pip_install(
        fresh, "--require-hashes", "--find-links", str(dist), "-r", str(bad)
    )
    assert done.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in done.stderr
    assert right in done.stderr and wrong in done.stderr
    leftover = subprocess.run(
        [str(fresh / "bin" / "python"), "-c", "import aiohttp"], capture_output=True
    )
    assert leftover.returncode != 0, "nothing is installed from a failed check"


def test_readme_shows_the_one_line_install_by_hash() -> None:
    readme = (ROOT / "README.md").read_text()
    assert hashlock.install_line(DIST, "cp311") in readme
