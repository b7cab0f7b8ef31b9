"""Throwaway projects in a temp dir, for the tooling tests.

A throwaway project is a copy of tools/ with its own upstream.toml,
patches/ and build/; its commands run with AIOHTTP_SERIES_ROOT pointing at
it. Its pin is a synthetic sdist made here (a few aiohttp-like files, or
lines.txt), so no test downloads or needs the real pin. Also the small
sources and patches the matrix tests share.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from tools import matrix, sdist
from tools.patches import Patch
from tools.project import (
    PIN_FILE,
    ROOT_VARIABLE,
    SERIES_VARIABLE,
    Pin,
    load_pin,
    require_checkout,
)

# This checkout: where tools/ is copied from (never a throwaway root).
ROOT = Path(__file__).resolve().parents[2]


def make_patch(subject: str, diff: str, *, body: str = "") -> str:
    """A format-patch style mail, as `make refresh` writes them.

    The diff may be indented; textwrap.dedent is not used because it would
    turn the single-space context lines into empty ones.
    """
    lines = diff.rstrip().lstrip("\n").splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return (
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Test Author <test@localhost>\n"
        "Date: Sat, 1 Jan 2000 00:00:00 +0000\n"
        f"Subject: [PATCH] {subject}\n\n"
        + (f"{body}\n" if body else "")
        + "---\n"
        + "".join(line[indent:] + "\n" for line in lines)
    )


def version_patch(version: str) -> str:
    """Marks aiohttp/__init__.py's version (of the sdist fake_aiohttp makes)."""
    return make_patch(
        "Mark the version",
        f"""
        diff --git a/aiohttp/__init__.py b/aiohttp/__init__.py
        --- a/aiohttp/__init__.py
        +++ b/aiohttp/__init__.py
        @@ -1,3 +1,3 @@
        -__version__ = "{version}"
        +__version__ = "{version}+test"
         
         from typing import TYPE_CHECKING, Tuple
        """,
        body="Why: to see it in the checkout.\n\nForwarded: not-needed",
    )


LOG_PATCH = make_patch(
    "Rename the access logger",
    """
    diff --git a/aiohttp/log.py b/aiohttp/log.py
    --- a/aiohttp/log.py
    +++ b/aiohttp/log.py
    @@ -1,5 +1,5 @@
     import logging
     
    -access_logger = logging.getLogger("aiohttp.access")
    +access_logger = logging.getLogger("aiohttp.access2")
     client_logger = logging.getLogger("aiohttp.client")
     internal_logger = logging.getLogger("aiohttp.internal")
    """,
)


PROBE_TEST = """
    diff --git a/tests/test_probe.py b/tests/test_probe.py
    new file mode 100644
    --- /dev/null
    +++ b/tests/test_probe.py
    @@ -0,0 +1,9 @@
    +from aiohttp.log import access_logger, internal_logger
    +
    +
    +def test_access_logger_renamed() -> None:
    +    assert access_logger.name == "aiohttp.access2"
    +
    +
    +async def test_internal_logger_kept() -> None:
    +    assert internal_logger.name == "aiohttp.internal"
"""

# adds a test that fails without the patch, and one that passes without it
PROBED_LOG_PATCH = (
    LOG_PATCH.rstrip("\n")
    + "\n"
    + "\n".join(line[4:] for line in PROBE_TEST.strip("\n").splitlines())
    + "\n"
)


@dataclass
class Project:
    root: Path

    @property
    def checkout(self) -> Path:
        return self.root / "build" / "aiohttp"

    def write_series(self, patches: dict[str, str], series: str | None = None) -> None:
        pdir = self.root / "patches"
        pdir.mkdir(exist_ok=True)
        for name, text in patches.items():
            (pdir / name).write_text(text)
        lines = series if series is not None else "".join(f"{n}\n" for n in patches)
        (pdir / "series").write_text(lines)

    @property
    def pin_file(self) -> Path:
        return self.root / "upstream.toml"

    @property
    def version(self) -> str:
        """The release this project pins."""
        return load_pin(self.pin_file).version

    def run(
        self, *args: str, module: str = "tools.patchq", python: str = sys.executable
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", module, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            # a throwaway project has one series, laid out as the main one
            env={**os.environ, ROOT_VARIABLE: str(self.root), SERIES_VARIABLE: "main"},
        )

    def pin(self, version: str, files: dict[str, str | bytes]) -> str:
        """Pin upstream.toml to a small sdist of these files; its sha256."""
        sha = make_sdist(self.root / "build" / "cache", version, files)
        (self.root / "upstream.toml").write_text(pin_text(version, sha))
        return sha

    def patch_files(self) -> dict[str, bytes]:
        pdir = self.root / "patches"
        return {
            str(p.relative_to(pdir)): p.read_bytes()
            for p in sorted(pdir.rglob("*"))
            if p.is_file()
        }

    def tree_state(self) -> tuple[str, dict[str, bytes]]:
        """The checkout as a user sees it: HEAD, refs and working files."""
        refs = self.git("for-each-ref", "--format=%(refname) %(objectname)")
        head = self.git("rev-parse", "HEAD")
        files = {
            str(p.relative_to(self.checkout)): p.read_bytes()
            for p in sorted(self.checkout.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(self.checkout).parts
        }
        return head + refs, files

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(self.checkout), *args],
            capture_output=True,
            text=True,
            check=True,
            env={
                **os.environ,
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_AUTHOR_NAME": "t",
                "GIT_AUTHOR_EMAIL": "t@localhost",
                "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@localhost",
            },
        ).stdout

    def snapshot(self) -> dict[str, bytes]:
        """Every file of the checkout, .git included: to prove nothing changed."""
        return {
            str(p.relative_to(self.checkout)): p.read_bytes()
            for p in sorted(self.checkout.rglob("*"))
            if p.is_file() and not p.is_symlink()
        }


# ---------------------------------------------------------------- small sdists

SMALL_FILE = "lines.txt"
SMALL_LINES = [f"line {n}" for n in range(1, 21)]


def make_sdist(cache: Path, version: str, files: dict[str, str | bytes]) -> str:
    """A small aiohttp-<version>.tar.gz in cache, the same bytes every time.

    Returns its sha256. Much faster to unpack than the real sdist, for the
    tests that rebuild a checkout many times (fault injection, rebase).
    """
    top = f"aiohttp-{version}"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        members = {"PKG-INFO": f"Name: aiohttp\nVersion: {version}\n", **files}
        for name, content in sorted(members.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), 946684800, 0o644
            tar.addfile(info, io.BytesIO(data))
    data = gzip.compress(raw.getvalue(), mtime=0)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / f"{top}.tar.gz").write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def small_files(lines: list[str] = SMALL_LINES) -> dict[str, str | bytes]:
    return {SMALL_FILE: "".join(f"{line}\n" for line in lines)}


def line_patch(
    subject: str, number: int, text: str, lines: list[str] = SMALL_LINES
) -> str:
    """A patch replacing line `number` (1-based) of lines.txt, 3 lines of context."""
    start = max(number - 3, 1)
    end = min(number + 3, len(lines))
    body = []
    for n in range(start, end + 1):
        old = lines[n - 1]
        body += [f"-{old}", f"+{text}"] if n == number else [f" {old}"]
    size = end - start + 1
    return make_patch(
        subject,
        f"diff --git a/{SMALL_FILE} b/{SMALL_FILE}\n--- a/{SMALL_FILE}\n"
        f"+++ b/{SMALL_FILE}\n@@ -{start},{size} +{start},{size} @@\n"
        + "\n".join(body),
    )


def make(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`make -s args` in cwd as from a fresh shell: nothing of an outer make
    that runs these tests (its flags, its level, the variables given to it)."""
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    (given,) = re.findall(r"^USER_VARIABLES := (.*)$", text, re.M)
    outer = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", *given.split()}
    clean = {k: v for k, v in os.environ.items() if k not in outer}
    return subprocess.run(
        ["make", "-s", "--no-print-directory", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**clean, **env},
    )


def one_error_line(stderr: str) -> str:
    """The single `error:` line a refusal prints (and no traceback)."""
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def pin_text(version: str, sha: str) -> str:
    return (
        "[upstream]\n"
        'name = "aiohttp"\n'
        f'version = "{version}"\n'
        f'sdist = "aiohttp-{version}.tar.gz"\n'
        f'sha256 = "{sha}"\n'
        "\n[series]\n"
        'label = "test"\n'
    )


# ---------------------------------------------------------------- an aiohttp-like sdist

FAKE_VERSION = "7.8.9"  # no real release: nothing may depend on the real pin
LOG_LINES = [
    "import logging",
    "",
    'access_logger = logging.getLogger("aiohttp.access")',
    'client_logger = logging.getLogger("aiohttp.client")',
    'internal_logger = logging.getLogger("aiohttp.internal")',
    'server_logger = logging.getLogger("aiohttp.server")',
    'web_logger = logging.getLogger("aiohttp.web")',
]


def fake_aiohttp(version: str) -> dict[str, str | bytes]:
    """The files of the real sdist the queue treats specially, small.

    vendor/llhttp/.git is a submodule pointer git cannot track; the
    generated llhttp sources are hidden by the sdist's own .gitignore;
    aiohttp.egg-info is rewritten by any build.
    """
    return {
        "aiohttp/__init__.py": (
            f'__version__ = "{version}"\n\nfrom typing import TYPE_CHECKING, Tuple\n'
        ),
        "aiohttp/log.py": "".join(f"{line}\n" for line in LOG_LINES),
        "aiohttp.egg-info/SOURCES.txt": "aiohttp/__init__.py\naiohttp/log.py\n",
        "vendor/llhttp/.git": "gitdir: ../../.git/modules/vendor/llhttp\n",
        "vendor/llhttp/.gitignore": "build/\n",
        "vendor/llhttp/build/c/llhttp.c": "/* generated */\n",
    }


# ---------------------------------------------------------------- matrix

BASE = "".join(f"line {n}\n" for n in range(1, 21))  # pkg/mod.py
# Changes line 10, with lines 7-9 and 11-13 as context.
CHANGE_10 = """
    diff --git a/pkg/mod.py b/pkg/mod.py
    --- a/pkg/mod.py
    +++ b/pkg/mod.py
    @@ -7,7 +7,7 @@
     line 7
     line 8
     line 9
    -line 10
    +LINE 10
     line 11
     line 12
     line 13
    """
CHANGE_2 = """
    diff --git a/pkg/mod.py b/pkg/mod.py
    --- a/pkg/mod.py
    +++ b/pkg/mod.py
    @@ -1,4 +1,4 @@
     line 1
    -line 2
    +LINE 2
     line 3
     line 4
    """

SESSION_WRAPS = """
from .helpers import ceil_timeout

class ClientSession:
    async def _request(self, req, traces, real_timeout):
        try:
            async with ceil_timeout(
                real_timeout.connect, ceil_threshold=real_timeout.ceil_threshold
            ):
                conn = await self._connector.connect(
                    req, traces=traces, timeout=real_timeout
                )
        except TimeoutError:
            raise
        return conn
"""
SESSION_PLAIN = """
class ClientSession:
    async def _request(self, req, traces, real_timeout):
        async with helpers.ceil_timeout(real_timeout.total):
            await self._prepare()  # a timeout around something else
        return await self._connector.connect(req, traces=traces, timeout=real_timeout)
"""
CONNECTOR_PLAIN = """
class BaseConnector:
    async def connect(self, req, traces, timeout):
        return await self._create_connection(req, traces, timeout)

class TCPConnector(BaseConnector):
    async def _create_connection(self, req, traces, timeout):
        async with ceil_timeout(timeout.sock_connect):  # not the connect timeout
            pass
"""
CONNECTOR_TIMES = """
class BaseConnector:
    async def connect(self, req, traces, timeout):
        if (conn := await self._get(req.connection_key, traces)) is not None:
            return conn
        async with helpers.ceil_timeout(timeout.connect, timeout.ceil_threshold):
            return await self._create_connection(req, traces, timeout)
"""


def fake_sdist(cache: Path, version: str, client: str, connector: str) -> Pin:
    """A tiny aiohttp-<version>.tar.gz in cache, pinned to its own sha256."""
    name = f"aiohttp-{version}.tar.gz"
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(cache / name, "w:gz") as tar:
        for rel, text in (("client.py", client), ("connector.py", connector)):
            data = text.encode()
            info = tarfile.TarInfo(f"aiohttp-{version}/aiohttp/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return Pin("aiohttp", version, name, sdist.sha256_of(cache / name))


def options(tmp_path: Path, patches: list[Patch]) -> matrix.Options:
    """Matrix options for synthetic sdists: no build, no tests."""
    return matrix.Options(
        patches,
        out=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        tests=False,
        main_version=FAKE_VERSION,
    )


def quiet(step: str) -> None:
    pass


# ---------------------------------------------------------------- the real pin


def real_sdist() -> Path:
    """The real pinned sdist, which `make apply` fetched: for tests/integration.

    Fails (never skips) without the checkout, so `make test` cannot pass
    them silently before `make apply`.
    """
    require_checkout()
    return sdist.fetch(load_pin())


def real_pin_project(root: Path) -> Project:
    """A throwaway project with the real pin and sdist and an empty series."""
    shutil.copytree(
        ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(PIN_FILE, root / "upstream.toml")  # the selected series' pin
    archive = real_sdist()
    (root / "build" / "cache").mkdir(parents=True)
    os.link(archive, root / "build" / "cache" / archive.name)
    project = Project(root)
    project.write_series({})
    return project


def front_door(root: Path) -> Path:
    """root/: the Makefile and tools with a small pin, as `make -n` needs."""
    root.mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", root / "Makefile")
    shutil.copytree(
        ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "upstream.toml").write_text(pin_text("1.0", "0" * 64))
    return root
