"""Small synthetic aiohttp-like git checkouts, for the tests of make pr,
changelog and wheel that must not need the real pin or build/aiohttp.

A checkout here is a handful of files committed at a fixed date and tagged
like the pinned release (v<version>), with commits above the tag standing
in for the series. Not a test module: test modules import it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tools.project import Pin, git, git_env, git_identity

AUTHOR = ("Test Author", "test@localhost")
DATE = "2000-01-01T00:00:00+00:00"

# aiohttp's towncrier layout (its sections, with a template the sdist lacks)
TOWNCRIER = """\
[tool.towncrier]
filename = "CHANGES.rst"
directory = "CHANGES/"
title_format = "{version} ({project_date})"
template = "CHANGES/.TEMPLATE.rst"
issue_format = "{issue}"

[[tool.towncrier.section]]
path = ""
"""
TYPES = {
    "bugfix": "Bug fixes",
    "feature": "Features",
    "breaking": "Removals and backward incompatible breaking changes",
    "packaging": "Packaging updates and notes for downstreams",
}


def pyproject() -> str:
    types = "".join(
        f'\n[[tool.towncrier.type]]\ndirectory = "{d}"\nname = "{n}"\n'
        "showcontent = true\n"
        for d, n in TYPES.items()
    )
    return TOWNCRIER + types


def pristine_files(version: str) -> dict[str, str]:
    return {
        "aiohttp/__init__.py": f'__version__ = "{version}"\n',
        "aiohttp/connector.py": "def connect():\n    return 1\n",
        "setup.cfg": "[metadata]\nname = aiohttp\n\n[egg_info]\ntag_build = \n",
        "pyproject.toml": pyproject(),
        "CHANGES/.gitignore": "!.gitignore\n",
        "requirements/test.txt": "",
    }


def write(tree: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = tree / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def commit(
    tree: Path,
    message: str,
    files: dict[str, str],
    author: tuple[str, str] = AUTHOR,
) -> str:
    """Write files and commit them (author at a fixed date); the new HEAD."""
    write(tree, files)
    git(tree, "add", "-A", "-f")
    git(tree, "commit", "-q", "-F", "-", input=message, env=git_identity(*author, DATE))
    return git(tree, "rev-parse", "HEAD").strip()


def pristine_repo(tree: Path, pin: Pin) -> Path:
    """tree: a git checkout of the synthetic release, tagged pin.tag."""
    tree.mkdir(parents=True)
    git(tree, "init", "-q")
    commit(tree, f"aiohttp {pin.version}\n", pristine_files(pin.version))
    git(tree, "tag", pin.tag)
    return tree


def files_of(tree: Path) -> dict[str, bytes]:
    """Every file but git's own (and quilt's), by path."""
    skip = {".git", ".pc"}
    return {
        str(p.relative_to(tree)): p.read_bytes()
        for p in tree.rglob("*")
        if p.is_file() and not skip & set(p.relative_to(tree).parts)
    }


def log(tree: Path, rev_range: str, fmt: str) -> list[str]:
    """One `git log --format=fmt` entry per commit of rev_range, oldest first."""
    out = git(tree, "log", "--reverse", "-z", f"--format={fmt}", rev_range)
    return out.rstrip("\0").split("\0")


def git_am(tree: Path, mboxes: list[Path]) -> subprocess.CompletedProcess[str]:
    """Plain `git am`, no flags, as a reviewer would run it."""
    return subprocess.run(
        ["git", "-C", str(tree), "am", *map(str, mboxes)],
        capture_output=True,
        text=True,
        env=git_env(git_identity("Reviewer", "reviewer@localhost")),
        check=False,
    )
