"""Build the patched aiohttp sdist and manylinux wheel, reproducibly.

    python -m tools.wheel build    dist/: sdist, wheel, SHA256SUMS
    python -m tools.wheel smoke    install the wheel in a fresh venv, test it

The build runs on a clean export of the checkout's HEAD at a fixed path,
with the series label set at build time in the export's setup.cfg (no
patch edits the version), SOURCE_DATE_EPOCH from the pinned release, no
debug info or rpath carrying build paths, and a re-packed sdist. So two
builds of the same series give the same bytes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from tools import patchq, sdist
from tools.changelog import series_version
from tools.cli import ToolError, reports_errors
from tools.envs import CONSTRAINTS, REQUIREMENTS, export, make_venv

ROOT = sdist.ROOT
DIST = ROOT / "dist"
WORK = ROOT / "build" / "wheel"


class WheelError(ToolError):
    pass


def checked_head(tree: Path = patchq.CHECKOUT) -> str:
    """HEAD of the checkout, if it is exactly what patches/ describes."""
    pin = sdist.load_pin()
    if not (tree / ".git").is_dir():
        raise WheelError(f"{tree}: no checkout. Run `make apply` first.")
    problems = patchq.local_changes(tree, pin)
    entries = patchq.read_series()
    stale = patchq.read_state(tree).stamp != patchq.series_stamp(
        pin, entries, patchq.PATCHES
    )
    if problems or stale:
        raise WheelError(
            f"{tree} does not match patches/ ({'; '.join(problems) or 'stale'}). "
            "Wheels are built from the series only: run `make refresh` to "
            "export your work, or `make apply` to rebuild from patches/."
        )
    return patchq.git(tree, "rev-parse", "HEAD").strip()


def repack_sdist(path: Path, epoch: int) -> None:
    """Rewrite a .tar.gz with sorted members, fixed times, owners and modes."""
    with tarfile.open(path) as tar:
        members = sorted(tar.getmembers(), key=lambda m: m.name)
        blobs = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out:
        for m in members:
            m.mtime, m.uid, m.gid, m.uname, m.gname = epoch, 0, 0, "", ""
            m.mode = 0o755 if m.isdir() or m.mode & 0o111 else 0o644
            m.pax_headers = {}
            out.addfile(m, io.BytesIO(blobs[m.name]) if m.isfile() else None)
    with (
        path.open("wb") as f,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=f, mtime=epoch, compresslevel=9
        ) as gz,
    ):
        gz.write(raw.getvalue())


def build(out: Path = DIST) -> list[Path]:
    pin = sdist.load_pin()
    head = checked_head()
    epoch = sdist.source_date_epoch(sdist.fetch(pin), pin)
    version = series_version()
    shutil.rmtree(WORK, ignore_errors=True)
    src = WORK / f"aiohttp-{pin.version}"  # one fixed path for every build
    export(patchq.CHECKOUT, head, src)
    cfg = src / "setup.cfg"
    label = version.split("+", 1)[1]
    cfg.write_text(cfg.read_text().replace("tag_build = \n", f"tag_build = +{label}\n"))
    for p in [src, *src.rglob("*")]:
        os.utime(p, (epoch, epoch), follow_symlinks=False)
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    env = {
        **os.environ,
        "SOURCE_DATE_EPOCH": str(epoch),
        "PYTHONHASHSEED": "0",
        "LC_ALL": "C",
        "TZ": "UTC",
        # Python's LDSHARED carries -rpath to the interpreter's lib dir
        "LDSHARED": f"{cc} -shared",
        "CFLAGS": f"-g0 -ffile-prefix-map={src}=.",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("AIOHTTP_NO_EXTENSIONS", None)
    raw = WORK / "raw"
    py = sys.executable
    # sdist first, then the wheel from that sdist: proves the sdist is whole
    subprocess.run(
        [py, "-m", "build", "--no-isolation", "--outdir", str(raw), str(src)],
        check=True,
        env=env,
        cwd=WORK,
    )
    (sdist_file,) = raw.glob("*.tar.gz")
    (linux_wheel,) = raw.glob("*.whl")
    repack_sdist(sdist_file, epoch)
    repaired = WORK / "repaired"
    subprocess.run(
        [
            py,
            "-m",
            "auditwheel",
            "repair",
            "--wheel-dir",
            str(repaired),
            str(linux_wheel),
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    (wheel,) = repaired.glob("*.whl")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    built = [Path(shutil.copy(f, out)) for f in (sdist_file, wheel)]
    sums = "".join(f"{sha256(p)}  {p.name}\n" for p in sorted(built))
    (out / "SHA256SUMS").write_text(sums)
    print(sums, end="")
    return built


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def smoke(dist: Path = DIST, python: str = sys.executable) -> None:
    """Install the wheel where the checkout is out of reach and test it."""
    wheels = sorted(dist.glob("aiohttp-*.whl"))
    if len(wheels) != 1:
        raise WheelError(
            f"{dist}: expected one aiohttp wheel, found {len(wheels)}; run `make wheel`"
        )
    expected = series_version()
    with tempfile.TemporaryDirectory(prefix="aiohttp-smoke-") as tmp:
        work = Path(tmp)
        vpy = str(make_venv(work / "venv", python))
        subprocess.run(
            [
                vpy,
                "-m",
                "pip",
                "install",
                "--quiet",
                "-c",
                str(CONSTRAINTS),
                "-r",
                str(REQUIREMENTS / "behaviour.txt"),
                str(wheels[0]),
            ],
            check=True,
        )
        tests = work / "tests"
        shutil.copytree(
            ROOT / "tests" / "patch",
            tests,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        check = (
            "import importlib.metadata as m, aiohttp, aiohttp._http_parser as p, sys;"
            f"v = m.version('aiohttp'); assert v == {expected!r}, v;"
            "assert aiohttp.__file__.startswith(sys.prefix), aiohttp.__file__;"
            "print('aiohttp', v, 'from', aiohttp.__file__, '| C parser', p.__file__)"
        )
        clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        subprocess.run([vpy, "-c", check], check=True, cwd=work, env=clean_env)
        done = subprocess.run(
            [
                vpy,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-W",
                "error",
                "--rootdir",
                str(work),
                "-c",
                os.devnull,
                str(tests),
            ],
            cwd=work,
            env=clean_env,
        )
        if done.returncode:
            raise WheelError(f"behaviour tests failed against {wheels[0].name}")


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.wheel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["build", "smoke"])
    args = parser.parse_args(argv)
    build() if args.command == "build" else smoke()
    return 0


if __name__ == "__main__":
    sys.exit(main())
