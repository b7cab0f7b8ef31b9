"""Fetch, verify and unpack the pinned upstream sdist."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import tomllib

from tools.cli import ToolError

ROOT = Path(__file__).resolve().parent.parent
PIN_FILE = ROOT / "upstream.toml"
CACHE_DIR = ROOT / "build" / "cache"


class SdistError(ToolError):
    """A problem with the pinned source; the message says what to do."""


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    sdist: str
    sha256: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"


def load_pin(path: Path = PIN_FILE) -> Pin:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))["upstream"]
        return Pin(data["name"], data["version"], data["sdist"], data["sha256"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise SdistError(
            f"{path}: cannot read the pin ({exc!r}); it needs an [upstream] "
            "table with name, version, sdist and sha256"
        ) from exc


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, pin: Pin) -> None:
    actual = sha256_of(path)
    if actual != pin.sha256:
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


def source_date_epoch(archive: Path, pin: Pin) -> int:
    """The release time: mtime of the sdist's PKG-INFO (stable for the pin)."""
    top = archive.name.removesuffix(".tar.gz")
    with tarfile.open(archive) as tar:
        return int(tar.getmember(f"{top}/PKG-INFO").mtime)


def unpack(archive: Path, dest: Path) -> None:
    """Unpack the sdist's top directory's contents into dest.

    The "data" filter refuses members that escape dest and does not chown,
    so a root unpack gives files git will not call of dubious ownership.
    """
    top = archive.name.removesuffix(".tar.gz")
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        src = Path(tmp) / top
        if not src.is_dir():
            raise SdistError(f"{archive}: has no top-level {top}/ directory")
        dest.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            shutil.move(str(child), dest / child.name)
