"""Create the virtual environments the make targets run in.

    python -m tools.envs patched    .venv: pinned tools + aiohttp built from
                                    build/aiohttp as it is (edits included)
    python -m tools.envs pristine   build/venvs/pristine: the same, with
                                    aiohttp built from the pristine tag
    python -m tools.envs audit      build/venvs/audit: the patched build and
                                    the add-ons in requirements/audit.txt
    python -m tools.envs pristine --export-source DIR
                                    DIR: the pinned tag's files, no venv

aiohttp is compiled with its C extensions from a clean export of the
checkout, so building never leaves artefacts in build/aiohttp. Each step is
skipped when its inputs are unchanged (the venv's stamp records them).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.cli import reports_errors
from tools.project import (
    BUILD,
    CHECKOUT,
    CONSTRAINTS,
    MAIN,
    REQUIREMENTS,
    VENVS,
    clean_env,
    export_tree,
    files_digest,
    git,
    git_identity,
    load_pin,
    make_venv,
    pip,
    read_stamp,
    require_checkout,
    venv_python,
    write_stamp,
)

# Our tools' requirements go into the main series' patched venv, which is
# also the tools' venv; the forward series' venvs hold only what its
# release's own tests need.
OUR_REQUIREMENTS = ("tools.txt", "lint.txt", "bench.txt") if MAIN else ()
EXTRA = {"audit": ("audit.txt",)}
STASH_IDENTITY = git_identity("envs", "envs@localhost")


def snapshot(tree: Path, rev: str | None) -> str:
    """A commit holding rev, or the working tree (uncommitted edits too)."""
    if rev is not None:
        return git(tree, "rev-parse", f"{rev}^{{commit}}").strip()
    stash = git(tree, "stash", "create", env=STASH_IDENTITY).strip()
    return stash or git(tree, "rev-parse", "HEAD").strip()


def export_source(dest: Path, tree: Path = CHECKOUT) -> Path:
    """dest/: pristine's files (the pinned tag of the checkout), afresh.

    What `make test-upstream-pristine` runs pristine's own tests in.
    """
    require_checkout(tree)
    shutil.rmtree(dest, ignore_errors=True)
    export_tree(tree, load_pin().tag, dest)
    return dest


def install_pinned(venv: Path, args: list[str]) -> None:
    """pip install -c constraints.txt args..., done by uv, the pinned one.

    uv installs the hundred-odd pins in seconds where pip takes a minute or
    more, which is most of what a fresh `make test` waits for. It is put in
    the venv by pip first, at the version requirements/tools.txt pins.
    """
    pins = REQUIREMENTS / "tools.txt"
    pip(venv, "install", "--quiet", "-c", str(CONSTRAINTS), "-c", str(pins), "uv")
    uv = [str(venv / "bin" / "uv"), "pip", "install", "--quiet"]
    python = ["--python", str(venv_python(venv)), "--no-config"]
    subprocess.run(
        [*uv, *python, "-c", str(CONSTRAINTS), *args], check=True, env=clean_env()
    )


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
    pin = load_pin()
    venv = venv or VENVS[name]
    extra = EXTRA.get(name, OUR_REQUIREMENTS) if extra is None else extra
    rev = pin.tag if name == "pristine" else None
    require_checkout(tree)
    commit = snapshot(tree, rev)
    tree_id = git(tree, "rev-parse", f"{commit}^{{tree}}").strip()
    if not venv_python(venv).exists():
        make_venv(venv, python)
    stamp = read_stamp(venv)
    ours = [REQUIREMENTS / f for f in extra if (REQUIREMENTS / f).exists()]
    # aiohttp's own pinned test requirements come from the tree itself.
    upstream_reqs = git(tree, "show", f"{commit}:requirements/test.txt")
    digest = files_digest(CONSTRAINTS, *ours, extra=upstream_reqs)
    req_digest = digest if requirements else stamp.get("requirements")
    new_reqs = stamp.get("requirements") != req_digest
    if not new_reqs and stamp.get("tree") == tree_id:
        print(f"{venv}: up to date (aiohttp tree {tree_id[:12]})")
        return venv
    scratch = BUILD / "tmp"  # make clean removes what a kill leaves
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="envs-") as tmp:
        src = Path(tmp) / "aiohttp"
        export_tree(tree, commit, src)
        if new_reqs:
            args = ["-r", str(src / "requirements" / "test.txt")]
            for r in ours:
                args += ["-r", str(r)]
            install_pinned(venv, args)
        # the patched (or pristine) tree over whatever else is there: no
        # requirement can have put another aiohttp in its place
        pip(
            venv,
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--force-reinstall",
            str(src),
        )
    source = rev or f"working tree of {tree}"
    write_stamp(venv, requirements=req_digest or "", tree=tree_id, rev=source)
    print(f"{venv}: aiohttp from {source} (tree {tree_id[:12]})")
    return venv


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.envs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("name", choices=sorted(VENVS))
    parser.add_argument(
        "--export-source",
        type=Path,
        metavar="DIR",
        help="pristine only: write the pinned tag's files to DIR, build no venv",
    )
    parser.add_argument("--venv", type=Path, help="another venv to install into")
    parser.add_argument(
        "--aiohttp-only",
        action="store_true",
        help="install only aiohttp (for venvs whose packages tox manages)",
    )
    args = parser.parse_args(argv)
    if args.export_source is not None:
        if args.name != "pristine":
            parser.error("--export-source is for `pristine` only")
        export_source(args.export_source)
        return 0
    ensure(args.name, venv=args.venv, requirements=not args.aiohttp_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
