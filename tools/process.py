"""Child processes for the tools: a clean environment, and git run with no
hook, config command or signing program of the checkout, on the
repository named.

A floor below tools.project, which re-exports all of it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from tools.names import ToolError

# Variables that would make a child see something other than what a target
# built: another source tree on sys.path, aiohttp's pure-Python fallback,
# CodSpeed's instrumentation hooks of an outer run, a venv of the caller.
LEAKY_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "AIOHTTP_NO_EXTENSIONS", "VIRTUAL_ENV")
LEAKY_PREFIXES = ("CODSPEED_",)


def clean_env(
    extra: Mapping[str, str] | None = None, *, keep: Iterable[str] = ()
) -> dict[str, str]:
    """os.environ without the variables above (except `keep`), plus `extra`."""
    kept = set(keep)
    env = environ_without(
        lambda k: (
            k not in kept and (k in LEAKY_VARIABLES or k.startswith(LEAKY_PREFIXES))
        )
    )
    env.update(extra or {})
    return env


def environ_without(drop: Callable[[str], bool]) -> dict[str, str]:
    """os.environ without the variables drop(name) is true for."""
    return {k: v for k, v in os.environ.items() if not drop(k)}


def git_identity(
    name: str,
    email: str,
    date: str | None = None,
    roles: tuple[str, ...] = ("AUTHOR", "COMMITTER"),
) -> dict[str, str]:
    """GIT_AUTHOR_* and GIT_COMMITTER_* (or only `roles`) for one identity."""
    env = {}
    for role in roles:
        env[f"GIT_{role}_NAME"] = name
        env[f"GIT_{role}_EMAIL"] = email
        if date is not None:
            env[f"GIT_{role}_DATE"] = date
    return env


# A checkout's .git/config and hooks/ may hold anything (a patch once wrote
# through a symlink into them): our own git commands run no hook, no
# fsmonitor command and no signing program, whatever they say.
SAFE_GIT_CONFIG = {
    "core.hooksPath": os.devnull,
    "core.fsmonitor": "false",
    "commit.gpgSign": "false",
    "tag.gpgSign": "false",
}
# Variables that point git at another repository, index or config than the
# one a tool names (a `make` run from inside a git hook has GIT_DIR set).
GIT_LOCATION_VARIABLES = tuple(
    "GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_COMMON_DIR "
    "GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_PREFIX GIT_CONFIG "
    "GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT".split()
)


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment where no user or system git config changes output,
    and no hook or config command of a checkout runs."""
    env = environ_without(
        lambda k: (
            k in GIT_LOCATION_VARIABLES
            or k.startswith(("GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_"))
        )
    )
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        LC_ALL="C",
        TZ="UTC",
        GIT_CONFIG_COUNT=str(len(SAFE_GIT_CONFIG)),
    )
    for n, (key, value) in enumerate(SAFE_GIT_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{n}"] = key
        env[f"GIT_CONFIG_VALUE_{n}"] = value
    env.update(extra or {})
    return env


def git_ceiling(repo: Path) -> dict[str, str]:
    """Stop git from taking a directory above repo for the repository: a
    checkout without its .git must not become the project's own clone."""
    return {"GIT_CEILING_DIRECTORIES": str(Path(os.path.abspath(repo)).parent)}


def git(
    repo: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    input: str | None = None,
    where: str | Path | None = None,
) -> str:
    """Run git in repo; on failure name `where` (default: repo) and git's words.

    Pass where= when repo is a temporary directory, which will not exist
    by the time the user reads the message.
    """
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        input=input,
        encoding="utf-8",
        errors="surrogateescape",
        env=git_env({**git_ceiling(repo), **(env or {})}),
    )
    if check and done.returncode:
        said = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise ToolError(f"{where or repo}: `git {' '.join(args)}` failed: {said}")
    return done.stdout


def export_tree(tree: Path, commit: str, dest: Path, paths: Iterable[str] = ()) -> None:
    """Write the commit's files (or only `paths`) to dest: nothing untracked."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(tree), "archive", "--format=tar", commit, *paths],
        capture_output=True,
        env=git_env(git_ceiling(tree)),
    )
    if archive.returncode:
        raise ToolError(
            f"{tree}: `git archive {commit}` failed: "
            + " ".join(archive.stderr.decode(errors="replace").split())
        )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
