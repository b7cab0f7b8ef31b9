"""Build the patched aiohttp sdist and manylinux wheels, reproducibly.

    python -m tools.wheel build           dist/: the sdist + this Python's wheel
    python -m tools.wheel build --all     dist/: the sdist + cp39 ... cp313 wheels
    python -m tools.wheel smoke           each wheel in dist/, in a fresh venv of
                                          its own Python: label, C extensions,
                                          tests/patch

The sdist is built once from a clean export of the checkout's HEAD, with
the series label set at build time in the export's setup.cfg (no patch
edits the version), then re-packed with sorted members and fixed times.
Every wheel is built FROM THAT SDIST, unpacked at one fixed path, by a build
venv of its own Python holding only the pinned setuptools; then
`auditwheel repair` gives it its manylinux tag. Every build gets the same
settings: SOURCE_DATE_EPOCH from the pinned release, PYTHONHASHSEED, LC_ALL
and TZ, no debug info, build paths mapped away, no rpath. So two builds of
the same series give the same bytes.

dist/ holds only distributions (so `twine check dist/*` and `twine upload
dist/*` work); their checksums are in dist.sha256 beside it, for
`sha256sum -c dist.sha256`.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import io
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from build import ProjectBuilder

from tools import sdist
from tools.checkout_state import stale_or_local
from tools.cli import reports_errors
from tools.compat import extract_tar
from tools.hashlock import install_line, lock_path, locks_dir, shown, write_lock
from tools.interpreters import SUPPORTED, Python, find, looked_in
from tools.project import (
    BUILD,
    CHECKOUT,
    CONSTRAINTS,
    DIST,
    REQUIREMENTS,
    ROOT,
    Pin,
    SeriesVersion,
    ToolError,
    clean_env,
    export_tree,
    files_digest,
    git,
    load_pin,
    make_venv,
    pip,
    require_checkout,
    series_version,
    stamped_venv,
    venv_python,
)

WORK = BUILD / "wheel"
BUILD_VENVS = BUILD / "venvs"
C_EXTENSIONS = ("_helpers", "_http_parser", "_http_writer", "_websocket")


class WheelError(ToolError):
    pass


# ---------------------------------------------------------------- pythons


def running_python() -> Python:
    return Python(f"{sys.version_info[0]}.{sys.version_info[1]}", sys.executable)


def find_python(version: str) -> Python | None:
    """version wherever this machine keeps it (tools.interpreters), else the
    running Python if it is that version."""
    here = running_python()
    return find(version) or (here if here.version == version else None)


def missing(version: str) -> str:
    return f"no Python {version} {looked_in()}"


def supported_pythons() -> list[Python]:
    """Every supported Python on this machine; one line for each missing."""
    pythons = []
    for version in SUPPORTED:
        python = find_python(version)
        if python is None:
            print(f"skip cp{version.replace('.', '')}: {missing(version)}")
        else:
            pythons.append(python)
    return pythons


# ---------------------------------------------------------------- inputs


def checked_head(pin: Pin, tree: Path = CHECKOUT) -> str:
    """HEAD of the checkout, if it is exactly what patches/ describes."""
    require_checkout(tree)
    problems = stale_or_local(tree, pin)
    if problems:
        raise WheelError(
            f"{tree} does not match patches/ ({'; '.join(problems)}). "
            "Wheels are built from the series only: run `make refresh` to "
            "export your work, or `make apply` to rebuild from patches/."
        )
    return git(tree, "rev-parse", "HEAD").strip()


def build_venv(python: Python) -> Path:
    """build/venvs/wheel-cpXY: python with the pinned pip and setuptools only.

    Remade when the interpreter or the pins change (the venv's stamp).
    """
    venv = BUILD_VENVS / f"wheel-{python.tag}"
    return stamped_venv(venv, python.path, constraints=files_digest(CONSTRAINTS))


# ---------------------------------------------------------------- building


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


def build_env(venv: Path, src: Path, epoch: int) -> dict[str, str]:
    """The one set of reproducibility settings every build runs with."""
    py = str(venv_python(venv))
    cc = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_config_var('CC') or 'cc')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    extra = {
        "SOURCE_DATE_EPOCH": str(epoch),
        "PYTHONHASHSEED": "0",
        "LC_ALL": "C",
        "TZ": "UTC",
        # Python's LDSHARED carries -rpath to the interpreter's lib dir
        "LDSHARED": f"{cc} -shared",
        # quoted: setuptools splits CFLAGS like a shell (a path with a space)
        "CFLAGS": "-g0 " + shlex.quote(f"-ffile-prefix-map={src}=."),
        "PATH": os.pathsep.join(
            [str(venv / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
    }
    env = clean_env(extra)
    for name in ("LDFLAGS", "CPPFLAGS"):  # the caller's would change the bytes
        env.pop(name, None)
    return env


def _pep517(
    src: Path,
    venv: Path,
    kind: Literal["sdist", "wheel"],
    out: Path,
    env: dict[str, str],
) -> Path:
    """Build kind ("sdist" or "wheel") of src with venv's Python; log to a file."""
    log = WORK / "logs" / f"{kind}-{venv.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)

    def runner(
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None:
        with log.open("a") as f:
            done = subprocess.run(
                cmd, cwd=cwd, env={**env, **(extra_environ or {})}, stdout=f, stderr=f
            )
        if done.returncode:
            tail = "\n".join(log.read_text().splitlines()[-15:])
            raise WheelError(f"building the {kind} failed; see {log}:\n{tail}")

    log.write_text("")
    builder = ProjectBuilder(
        src, python_executable=str(venv_python(venv)), runner=runner
    )
    return Path(builder.build(kind, out))


def set_label(cfg: Path, version: SeriesVersion) -> None:
    """Put the series label in setup.cfg's empty `tag_build =` line."""
    text = cfg.read_text()
    if "tag_build = \n" not in text:
        raise WheelError(f"{cfg}: no empty `tag_build =` line to put the label in")
    cfg.write_text(text.replace("tag_build = \n", f"tag_build = +{version.label}\n"))


def build_sdist(head: str, epoch: int, pin: Pin, version: SeriesVersion) -> Path:
    """The patched sdist from a clean export of head, re-packed."""
    src = WORK / "export" / f"{pin.name}-{pin.version}"
    export_tree(CHECKOUT, head, src)
    set_label(src / "setup.cfg", version)
    for p in [src, *src.rglob("*")]:
        os.utime(p, (epoch, epoch), follow_symlinks=False)
    venv = build_venv(running_python())
    built = _pep517(src, venv, "sdist", WORK / "sdist", build_env(venv, src, epoch))
    repack_sdist(built, epoch)
    return built


def build_wheel(archive: Path, python: Python, epoch: int) -> Path:
    """python's manylinux wheel from the sdist, unpacked at one fixed path."""
    unpacked = WORK / "src"
    shutil.rmtree(unpacked, ignore_errors=True)
    unpacked.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        extract_tar(tar, unpacked)  # Debian 12's 3.11.2 has no filter=
    (src,) = unpacked.iterdir()
    venv = build_venv(python)
    env = build_env(venv, src, epoch)
    raw = _pep517(src, venv, "wheel", WORK / "raw" / python.tag, env)
    repaired = WORK / "repaired" / python.tag
    cmd = [sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", str(repaired)]
    done = subprocess.run([*cmd, str(raw)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise WheelError(f"auditwheel repair {raw.name} failed:\n{done.stderr}")
    (wheel,) = repaired.glob("*.whl")
    if "manylinux" not in wheel.name:
        raise WheelError(f"{wheel.name}: auditwheel gave no manylinux tag")
    return wheel


@contextmanager
def work_lock() -> Iterator[None]:
    """One build at a time: they share build/wheel/ and its fixed paths."""
    WORK.parent.mkdir(parents=True, exist_ok=True)
    with (WORK.parent / "wheel.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def sums_file(out: Path) -> Path:
    """dist.sha256 beside dist/: a checksum file is not a distribution."""
    return out.with_name(out.name + ".sha256")


def build(out: Path = DIST, pythons: list[Python] | None = None) -> list[Path]:
    """out/: the sdist and one wheel per Python; their sha256 in sums_file(out);
    each wheel's hash lock in hashlock.locks_dir(out)."""
    pythons = pythons or [running_python()]
    pin = load_pin()  # once: every step below builds the same release
    head = checked_head(pin)
    epoch = sdist.source_date_epoch(sdist.fetch(pin), pin)
    with work_lock():
        shutil.rmtree(WORK, ignore_errors=True)
        archive = build_sdist(head, epoch, pin, series_version())
        print(f"built {archive.name}")
        wheels = []
        for python in pythons:
            wheels.append(build_wheel(archive, python, epoch))
            print(f"built {wheels[-1].name} with {python.path}")
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(locks_dir(out), ignore_errors=True)
        out.mkdir(parents=True)
        built = [Path(shutil.copy(f, out)) for f in (archive, *wheels)]
    twine_check(built)
    sums = "".join(
        f"{sdist.sha256_of(p)}  {out.name}/{p.name}\n" for p in sorted(built)
    )
    sums_file(out).write_text(sums)
    print(f"{sums_file(out)}:\n{sums}", end="")
    version = str(series_version())
    for python, whl in zip(pythons, wheels):
        lock = write_lock(out / whl.name, python.path, out, pin.name, version)
        print(f"{shown(lock)}: {install_line(out, wheel_tag(whl))}")
    return built


def twine_check(files: list[Path]) -> None:
    """What an index checks on upload; fails on warnings too."""
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise WheelError(f"twine check failed:\n{done.stdout}{done.stderr}")


# ---------------------------------------------------------------- smoke

SMOKE_CHECK = """\
import importlib, importlib.metadata as md, sys
import aiohttp, aiohttp.http_parser
label, upstream, extensions = sys.argv[1:]
assert md.version("aiohttp") == label, md.version("aiohttp")
assert aiohttp.__version__ == upstream, aiohttp.__version__
assert aiohttp.__file__.startswith(sys.prefix), aiohttp.__file__
for name in extensions.split(","):
    mod = importlib.import_module("aiohttp." + name)
    assert mod.__file__.endswith(".so"), mod.__file__
assert aiohttp.http_parser.HttpRequestParser.__module__ == "aiohttp._http_parser"
print("aiohttp", label, "(__version__", aiohttp.__version__ + ") from",
      aiohttp.__file__, "with C extensions")
"""


def wheel_tag(wheel: Path) -> str:
    """ "cp39" of aiohttp-...-cp39-cp39-manylinux....whl"""
    return wheel.name.split("-")[2]


def smoke_one(wheel: Path, python: Python, version: SeriesVersion) -> None:
    """Install the wheel where the checkout is out of reach, as the README
    says (by its hash lock), and test it."""
    lock = lock_path(wheel.parent, wheel_tag(wheel))
    if not lock.exists():
        raise WheelError(
            f"{lock}: no hash lock for {wheel.name}; run `make wheel` or `make wheels`"
        )
    with tempfile.TemporaryDirectory(prefix="aiohttp-smoke-") as tmp:
        work = Path(tmp)
        vpy = str(make_venv(work / "venv", python.path))
        by_hash = ["--require-hashes", "--find-links", str(wheel.parent)]
        pip(work / "venv", "install", "--quiet", *by_hash, "-r", str(lock))
        # then what the tests need; the constraints keep the wheel's aiohttp
        reqs = ["-c", str(CONSTRAINTS), "-r", str(REQUIREMENTS / "behaviour.txt")]
        pip(work / "venv", "install", "--quiet", *reqs)
        tests = work / "tests"
        skip = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "tests" / "patch", tests, ignore=skip)
        # nothing may point it back at the checkout; test_build asks the pin
        env = clean_env({"AIOHTTP_PINNED_VERSION": version.upstream})
        check = [vpy, "-c", SMOKE_CHECK, str(version), version.upstream]
        subprocess.run([*check, ",".join(C_EXTENSIONS)], check=True, cwd=work, env=env)
        pytest = [vpy, "-m", "pytest", "-p", "no:cacheprovider", "-W", "error"]
        config = ["--rootdir", str(work), "-c", os.devnull, str(tests)]
        done = subprocess.run([*pytest, *config], cwd=work, env=env)
        if done.returncode:
            raise WheelError(f"behaviour tests failed against {wheel.name}")


def smoke(dist: Path = DIST) -> None:
    """Each aiohttp wheel in dist/ in its own Python; a missing one is skipped."""
    wheels = sorted(
        dist.glob("aiohttp-*.whl"), key=lambda w: (len(wheel_tag(w)), wheel_tag(w))
    )
    if not wheels:
        raise WheelError(f"{dist}: no aiohttp wheel; run `make wheel` or `make wheels`")
    series = series_version()
    for wheel in wheels:
        tag = wheel_tag(wheel)
        version = f"{tag[2]}.{tag[3:]}"
        python = find_python(version)
        if python is None:
            print(f"skip {wheel.name}: {missing(version)}")
            continue
        print(f"== {wheel.name} on {python.path}", flush=True)
        smoke_one(wheel, python, series)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.wheel",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["build", "smoke"])
    parser.add_argument(
        "--all",
        action="store_true",
        help=f"build: a wheel for each of Python {', '.join(SUPPORTED)} found",
    )
    args = parser.parse_args(argv)
    if args.command == "smoke":
        smoke()
    else:
        pythons = supported_pythons() if args.all else [running_python()]
        if not pythons:
            raise WheelError("no supported Python found to build wheels with")
        build(pythons=pythons)
    return 0


if __name__ == "__main__":
    sys.exit(main())
