"""Fetch, verify and unpack the pinned upstream sdist."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from tools.compat import UnsafeArchive, extract_tar
from tools.project import (
    CACHE_DIR,
    Pin,
    ToolError,
)

__all__ = [
    "BROKEN_ARCHIVE",
    "SdistError",
    "fetch",
    "sha256_of",
    "source_date_epoch",
    "unpack",
    "verify",
]

# What a truncated or corrupt .tar.gz raises while it is read.
BROKEN_ARCHIVE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


class SdistError(ToolError):
    """A problem with the pinned source; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, pin: Pin) -> None:
    actual = sha256_of(path)
    if actual != pin.sha256.lower():
        raise SdistError(
            f"{path}: sha256 is {actual}, but upstream.toml pins {pin.sha256}. "
            "Nothing was unpacked and build/aiohttp is untouched. If the pin "
            "is right, delete this file so it is downloaded again; if the "
            "file is right, fix sha256 in upstream.toml."
        )


def fetch(pin: Pin, cache_dir: Path = CACHE_DIR) -> Path:
    """Return the verified sdist, downloading it into the cache if needed."""
    cached = cache_dir / pin.sdist
    if not cached.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--dest",
                tmp,
                f"{pin.name}=={pin.version}",
            ]
            print(f"downloading {pin.name}=={pin.version} sdist", file=sys.stderr)
            done = subprocess.run(cmd, capture_output=True, text=True)
            downloaded = Path(tmp) / pin.sdist
            if done.returncode or not downloaded.exists():
                raise SdistError(
                    f"{cached}: could not download {pin.name}=={pin.version} "
                    f"with pip:\n{done.stderr.strip()}\nCheck access to the "
                    "package index, or place the file there by hand."
                )
            verify(downloaded, pin)  # never cache a file that fails the pin
            downloaded.replace(cached)
    verify(cached, pin)
    return cached


def _broken(archive: Path, exc: BaseException) -> SdistError:
    return SdistError(
        f"{archive}: matches its sha256 pin but cannot be read as a .tar.gz "
        f"({exc or type(exc).__name__}); the pin names a broken file: check "
        "the sha256 against the package index and fix the pin."
    )


def _pkg_info(archive: Path) -> tuple[Message, int]:
    """The sdist's own PKG-INFO headers and the file's mtime."""
    top = archive.name.removesuffix(".tar.gz")
    try:
        with tarfile.open(archive) as tar:
            member = tar.getmember(f"{top}/PKG-INFO")
            data = tar.extractfile(member)
            text = data.read(1 << 20).decode("utf-8", "replace") if data else ""
    except KeyError:
        raise SdistError(f"{archive}: has no {top}/PKG-INFO; is it an sdist?") from None
    except BROKEN_ARCHIVE as exc:
        raise _broken(archive, exc) from exc
    return HeaderParser().parsestr(text), int(member.mtime)


def _project(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503 normal form


def source_date_epoch(archive: Path, pin: Pin) -> int:
    """The release time: mtime of the sdist's PKG-INFO (stable for the pin).

    First the archive's own PKG-INFO must name the pinned project and
    version: a pin whose version was edited without its file and sha256
    must not tag one release as another.
    """
    info, mtime = _pkg_info(archive)
    name, version = info.get("Name", ""), info.get("Version", "")
    if _project(name) != _project(pin.name) or version != pin.version:
        raise SdistError(
            f"{archive}: its PKG-INFO says {name} {version}, but the pin says "
            f"{pin.name} {pin.version}; set version, sdist and sha256 of the pin "
            "to one release (the sdist's file name and `sha256sum`)."
        )
    return mtime


def unpack(archive: Path, dest: Path) -> None:
    """Unpack the sdist's top directory's contents into dest.

    Members that would escape dest are refused and nothing is chowned, so
    a root unpack gives files git will not call of dubious ownership. The
    unpack goes through a temporary directory beside dest.
    """
    top = archive.name.removesuffix(".tar.gz")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".unpack-") as tmp:
        try:
            with tarfile.open(archive) as tar:
                extract_tar(tar, Path(tmp))
        except UnsafeArchive as exc:
            raise SdistError(f"{archive}: refused: {exc}") from exc
        except BROKEN_ARCHIVE as exc:
            raise _broken(archive, exc) from exc
        src = Path(tmp) / top
        if not src.is_dir():
            raise SdistError(f"{archive}: has no top-level {top}/ directory")
        dest.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            shutil.move(str(child), dest / child.name)
