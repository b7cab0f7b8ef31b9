"""make wheel / wheels, the parts that need no checkout: the sdist is
re-packed deterministically, the label goes into setup.cfg, builds get one
clean environment, the Pythons are found (or named as missing), and
`make wheel-smoke` skips a wheel whose Python is missing. The builds
themselves are in tests/integration/test_wheel_real.py."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest

from tools import wheel
from tools.project import Pin, SeriesVersion, ToolError


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


def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH of one empty directory and an empty tool cache: no pythonX.Y of
    this machine (nor a runner's setup-python ones) in reach."""
    monkeypatch.setenv("RUNNER_TOOL_CACHE", str(tmp_path / "no-toolcache"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    return bin_dir


def test_finds_the_newest_pyenv_release_and_says_which_are_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(fake_path(tmp_path, monkeypatch)))
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
        f"skip cp{v.replace('.', '')}: no Python {v} under {tmp_path}/versions, "
        f"{tmp_path}/no-toolcache/Python and on PATH (pythonX.Y)"
        for v in missing
    ]


def test_a_python_on_path_counts_when_pyenv_has_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    bin_dir = fake_path(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", str(bin_dir))
    exe = bin_dir / "python3.12"
    exe.write_text("#!/bin/sh\necho 3.12\n")
    exe.chmod(0o755)
    assert wheel.find_python("3.12") == wheel.Python("3.12", str(exe))


def test_smoke_skips_a_wheel_whose_python_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", str(fake_path(tmp_path, monkeypatch)))
    dist = tmp_path / "dist"
    dist.mkdir()
    name = "aiohttp-9.9.9+x-cp38-cp38-manylinux_2_17_x86_64.whl"
    (dist / name).write_bytes(b"")
    wheel.smoke(dist)
    assert capsys.readouterr().out == (
        f"skip {name}: no Python 3.8 under {tmp_path}/versions, "
        f"{tmp_path}/no-toolcache/Python and on PATH (pythonX.Y)\n"
    )
    with pytest.raises(wheel.WheelError, match="no aiohttp wheel"):
        wheel.smoke(tmp_path)


def test_label_goes_into_the_empty_tag_build_line(tmp_path: Path) -> None:
    cfg = tmp_path / "setup.cfg"
    cfg.write_text("[egg_info]\ntag_build = \ntag_date = 0\n")
    wheel.set_label(cfg, SeriesVersion("9.9.9", "connect.timeout.7"))
    assert cfg.read_text() == (
        "[egg_info]\ntag_build = +connect.timeout.7\ntag_date = 0\n"
    )
    with pytest.raises(wheel.WheelError, match="no empty `tag_build =` line"):
        wheel.set_label(cfg, SeriesVersion("9.9.9", "again"))


def test_build_env_is_clean_and_fixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PYTHONPATH", "AIOHTTP_NO_EXTENSIONS", "LDFLAGS", "CPPFLAGS"):
        monkeypatch.setenv(name, "leak")
    monkeypatch.setenv("PYTHONHASHSEED", "random")
    src = tmp_path / "a dir" / "aiohttp-9.9.9"
    env = wheel.build_env(Path(sys.prefix), src, 1_000_000_000)
    assert not {"PYTHONPATH", "AIOHTTP_NO_EXTENSIONS", "LDFLAGS", "CPPFLAGS"} & set(env)
    assert env["SOURCE_DATE_EPOCH"] == "1000000000"
    assert (env["PYTHONHASHSEED"], env["LC_ALL"], env["TZ"]) == ("0", "C", "UTC")
    assert env["CFLAGS"] == f"-g0 '-ffile-prefix-map={src}=.'"
    assert "-rpath" not in env["LDSHARED"]


def test_build_needs_a_checkout(tmp_path: Path) -> None:
    pin = Pin("aiohttp", "9.9.9", "aiohttp-9.9.9.tar.gz", "0" * 64)
    with pytest.raises(ToolError, match="Run `make apply` first"):
        wheel.checked_head(pin, tmp_path / "none")
