"""Create the virtual environments the make targets run in.

    python -m tools.envs patched    .venv: pinned tools + aiohttp built from
                                    build/aiohttp as it is (edits included)
    python -m tools.envs pristine   build/venvs/pristine: the same, with
                                    aiohttp built from the pristine tag
    python -m tools.envs audit      build/venvs/audit: the patched build and
                                    the add-ons in requirements/audit.txt

aiohttp is compiled with its C extensions from a clean export of the
checkout, so building never leaves artefacts in build/aiohttp. Each step is
skipped when its inputs are unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tools import sdist
from tools.cli import reports_errors
from tools.patchq import CHECKOUT, QueueError, git

ROOT = sdist.ROOT
REQUIREMENTS = ROOT / "requirements"
CONSTRAINTS = REQUIREMENTS / "constraints.txt"
OUR_REQUIREMENTS = ("tools.txt", "lint.txt", "bench.txt")
VENVS = {
    "patched": ROOT / ".venv",
    "pristine": ROOT / "build" / "venvs" / "pristine",
    # the patched build next to third-party add-ons, for `make audit-addons`
    "audit": ROOT / "build" / "venvs" / "audit",
}
EXTRA = {"audit": ("audit.txt",)}
SOURCE_STAMP = "aiohttp-source.json"  # inside the venv: which tree it holds
STASH_IDENTITY = {
    "GIT_AUTHOR_NAME": "envs",
    "GIT_AUTHOR_EMAIL": "envs@localhost",
    "GIT_COMMITTER_NAME": "envs",
    "GIT_COMMITTER_EMAIL": "envs@localhost",
}


def snapshot(tree: Path, rev: str | None) -> str:
    """A commit holding rev, or the working tree (uncommitted edits too)."""
    if rev is not None:
        return git(tree, "rev-parse", f"{rev}^{{commit}}").strip()
    stash = git(tree, "stash", "create", env=STASH_IDENTITY).strip()
    return stash or git(tree, "rev-parse", "HEAD").strip()


def export(tree: Path, commit: str, dest: Path) -> None:
    """Write the commit's files to dest (nothing of .git, nothing untracked)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(tree), "archive", "--format=tar", commit],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


def pip(venv: Path, *args: str) -> None:
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if k != "AIOHTTP_NO_EXTENSIONS"}
    subprocess.run([*cmd, *args], check=True, env=env)


def make_venv(venv: Path, python: str = sys.executable) -> Path:
    """A new venv with the pinned pip and setuptools; returns its python."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip(venv, "install", "--quiet", "-c", str(CONSTRAINTS), "pip", "setuptools")
    return venv / "bin" / "python"


def ensure(
    name: str,
    *,
    venv: Path | None = None,
    python: str = sys.executable,
    tree: Path = CHECKOUT,
    extra: tuple[str, ...] | None = None,
    requirements: bool = True,
) -> Path:
    """Make the venv hold the pinned requirements and the wanted aiohttp.

    requirements=False leaves the venv's other packages alone (tox installs
    them) and only keeps aiohttp in step with the tree.
    """
    pin = sdist.load_pin()
    venv = venv or VENVS[name]
    extra = EXTRA.get(name, OUR_REQUIREMENTS) if extra is None else extra
    rev = pin.tag if name == "pristine" else None
    if not (tree / ".git").is_dir():
        raise QueueError(f"{tree}: no checkout. Run `make apply` first.")
    commit = snapshot(tree, rev)
    tree_id = git(tree, "rev-parse", f"{commit}^{{tree}}").strip()
    if not (venv / "bin" / "python").exists():
        make_venv(venv, python)
    stamp_file = venv / SOURCE_STAMP
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        stamp = {}
    ours = [REQUIREMENTS / f for f in extra if (REQUIREMENTS / f).exists()]
    # aiohttp's own pinned test requirements come from the tree itself.
    upstream_reqs = git(tree, "show", f"{commit}:requirements/test.txt")
    digest = hashlib.sha256(upstream_reqs.encode())
    for p in [CONSTRAINTS, *ours]:
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    req_digest = digest.hexdigest() if requirements else stamp.get("requirements")
    new_reqs = stamp.get("requirements") != req_digest
    if not new_reqs and stamp.get("tree") == tree_id:
        print(f"{venv}: up to date (aiohttp tree {tree_id[:12]})")
        return venv
    scratch = ROOT / "build" / "tmp"  # make clean removes what a kill leaves
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="envs-") as tmp:
        src = Path(tmp) / "aiohttp"
        export(tree, commit, src)
        if new_reqs:
            args = ["-r", str(src / "requirements" / "test.txt")]
            for r in ours:
                args += ["-r", str(r)]
            # the tree is named too, so nothing can pull another aiohttp
            pip(
                venv,
                "install",
                "--quiet",
                "-c",
                str(CONSTRAINTS),
                *args,
                "--no-build-isolation",
                str(src),
            )
        else:
            pip(
                venv,
                "install",
                "--quiet",
                "--no-build-isolation",
                "--no-deps",
                "--force-reinstall",
                str(src),
            )
    stamp.update(requirements=req_digest, tree=tree_id)
    stamp["rev"] = rev or "working tree of " + str(tree)
    stamp_file.write_text(json.dumps(stamp, indent=1) + "\n")
    print(f"{venv}: aiohttp from {stamp['rev']} (tree {tree_id[:12]})")
    return venv


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.envs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=sorted(VENVS))
    parser.add_argument("--venv", type=Path, help="another venv to install into")
    parser.add_argument(
        "--aiohttp-only",
        action="store_true",
        help="install only aiohttp (for venvs whose packages tox manages)",
    )
    args = parser.parse_args(argv)
    ensure(args.name, venv=args.venv, requirements=not args.aiohttp_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
