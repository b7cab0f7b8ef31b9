"""SIGKILL make apply / unapply / refresh at every step; nothing is lost.

No hook in the tools: a sitecustomize on PYTHONPATH adds an audit hook that
counts the steps that change something (a subprocess started, a rename, a
delete, a file opened for writing, the renameat2 call) and SIGKILLs the
process just before step N. For N = 1, 2, ... until a run completes, from
the same starting project each time:

- the checkout is the old one or the new one (HEAD, refs and files);
- patches/ is byte-identical to before (or, for refresh, to the new export);
- the next run succeeds, leaves exactly the result of an uninterrupted run,
  and no temp dir or journal behind;
- with FORCE=1 and work in the checkout, that work exists exactly once:
  in the checkout or in build/aiohttp.discarded/.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tools.throwaway import Project, line_patch, one_error_line
from tools import fsops
from tools.project import clean

# A minute of kills and reruns: `make test-slow` (in .ci/run), not `make test`.
pytestmark = pytest.mark.slow

P1 = line_patch("Change line four", 4, "changed 4")
P2 = line_patch("Change line twelve", 12, "changed 12")

SITECUSTOMIZE = """
import os, signal, sys

_AT = int(os.environ.get("FAULT_AT", "0"))
_ROOT = os.environ["FAULT_ROOT"]
_ERRNO = int(os.environ.get("FAULT_ERRNO", "0"))  # 0: SIGKILL; else this OSError
_COUNT = 0
_STEPS = {"subprocess.Popen", "os.rename", "os.remove", "shutil.rmtree",
          "shutil.copyfile", "ctypes.call_function", "open"}
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
# git commands that change nothing: stopping before one is no new case
_READS = {"cat-file", "diff", "diff-tree", "for-each-ref", "log", "mailinfo",
          "merge-base", "reflog", "rev-list", "rev-parse", "status", "symbolic-ref"}


def _git_reads(argv):
    args = [str(a) for a in argv]
    if not args or os.path.basename(args[0]) != "git":
        return False
    i = 1
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in ("-C", "-c") else 1
    return i < len(args) and args[i] in _READS


def _hook(event, args):
    global _COUNT
    if event not in _STEPS:
        return
    if event == "subprocess.Popen" and _git_reads(args[1]):
        return
    path = os.fsdecode(args[0]) if isinstance(args[0], (str, bytes)) else ""
    if event in ("open", "os.remove"):
        # files inside temp dirs are not steps: the dir is dropped as a whole
        if not path.startswith(_ROOT) or "/tmp/patchq/" in path or "/.unpack-" in path:
            return
    if event == "open":
        mode, flags = args[1], args[2]
        writes = any(c in mode for c in "wax+") if isinstance(mode, str) else False
        if not (writes or (isinstance(flags, int) and flags & _WRITE)):
            return
    _COUNT += 1
    if _COUNT == _AT:
        open(os.environ["FAULT_FIRED"], "w").close()
        if _ERRNO:
            raise OSError(_ERRNO, os.strerror(_ERRNO), path or event)
        os.kill(os.getpid(), signal.SIGKILL)


sys.addaudithook(_hook)
"""

State = tuple[tuple[str, dict[str, bytes]], dict[str, bytes]]


def run(
    project: Project, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.patchq", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
    )


def leftovers(project: Project) -> list[str]:
    build = project.root / "build"
    found = [str(p) for p in build.glob("tmp/*") if p.name != "patchq"]
    found += [str(p) for p in build.glob("tmp/patchq/*")]
    found += [str(p) for p in build.glob(".aiohttp.*")]
    found += [str(p) for p in build.glob("patchq-swap.json")]
    return found


def make_clean(project: Project) -> None:
    """What `make clean` runs (`patchq recover`, `project clean`), in-process."""
    build = project.root / "build"
    with fsops.locked(build, "make clean"):
        fsops.start(build)
    clean(project.root)


def kill_at_every_step(
    template: Project,
    tmp_path: Path,
    args: list[str],
    check: Callable[[Project, bool], None],
    fault: int = 0,
) -> int:
    """Run args killed (or, with fault, failing with that errno) before step
    1, 2, ...; check(project, recovered). A fault must end in one error line,
    and leave nothing `make clean` cannot remove."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    base_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    for n in range(1, 500):
        work = tmp_path / f"run{n}"
        shutil.copytree(template.root, work, symlinks=True)
        project = Project(work)
        env = {
            **base_env,
            "PYTHONPATH": str(hooks),
            "FAULT_AT": str(n),
            "FAULT_ROOT": str(work),
            "FAULT_ERRNO": str(fault),
            "FAULT_FIRED": str(tmp_path / f"fired{n}"),
        }
        done = run(project, args, env)
        if not (tmp_path / f"fired{n}").exists():  # the run has fewer steps
            assert done.returncode == 0, done.stderr
            check(project, True)
            shutil.rmtree(work)
            return n
        if done.returncode == 0:  # a fault the run got past (a cleanup's)
            check(project, True)
            shutil.rmtree(work)
            continue
        if fault:
            assert done.returncode == 1, (n, done.stderr)
            assert os.strerror(fault) in one_error_line(done.stderr), n
        else:
            assert done.returncode == -9, (n, done.stderr)
        check(project, False)
        if fault:
            make_clean(project)
            assert leftovers(project) == [], n
        again = run(project, args, base_env)
        assert again.returncode == 0, (n, again.stderr)
        check(project, True)
        assert leftovers(project) == [], n
        shutil.rmtree(work)
    raise AssertionError("the run never completed")


def snapshot(project: Project) -> State:
    return project.tree_state(), project.patch_files()


def reference(template: Project, tmp_path: Path, args: list[str]) -> State:
    """The result of an uninterrupted run."""
    ref = Project(tmp_path / "reference")
    shutil.copytree(template.root, ref.root, symlinks=True)
    done = run(ref, args, {**os.environ})
    assert done.returncode == 0, done.stderr
    return snapshot(ref)


@pytest.fixture
def template(small_project: Project) -> Project:
    small_project.write_series({"0001-Change-line-four.patch": P1})
    assert small_project.run("apply").returncode == 0
    return small_project


def test_apply_killed_at_every_step(template: Project, tmp_path: Path) -> None:
    template.write_series(
        {"0001-Change-line-four.patch": P1, "0002-Change-line-twelve.patch": P2}
    )
    old = snapshot(template)
    new = reference(template, tmp_path, ["apply"])
    assert new[0] != old[0]

    def check(project: Project, recovered: bool) -> None:
        now = snapshot(project)
        assert now[1] == old[1]  # patches/ untouched
        assert now[0] == new[0] if recovered else now[0] in (old[0], new[0])

    steps = kill_at_every_step(template, tmp_path, ["apply"], check)
    assert steps > 10  # the hook saw the run's steps


def test_unapply_killed_at_every_step(template: Project, tmp_path: Path) -> None:
    old = snapshot(template)
    new = reference(template, tmp_path, ["unapply"])

    def check(project: Project, recovered: bool) -> None:
        now = snapshot(project)
        assert now[1] == old[1]
        assert now[0] == new[0] if recovered else now[0] in (old[0], new[0])

    kill_at_every_step(template, tmp_path, ["unapply"], check)


def test_refresh_killed_at_every_step(template: Project, tmp_path: Path) -> None:
    lines = template.checkout / "lines.txt"
    lines.write_text(lines.read_text().replace("line 16", "changed 16"))
    template.git("commit", "-q", "-a", "-m", "Change line sixteen")
    old = snapshot(template)
    new = reference(template, tmp_path, ["refresh"])
    assert new[1] != old[1] and new[0] == old[0]

    def check(project: Project, recovered: bool) -> None:
        now = snapshot(project)
        assert now[0] == old[0]  # refresh never changes the checkout
        assert now[1] == new[1] if recovered else now[1] in (old[1], new[1])
        if recovered:  # and it knows the export is its own
            assert "up to date" in project.run("apply").stdout

    kill_at_every_step(template, tmp_path, ["refresh"], check)


def test_forced_apply_killed_at_every_step_keeps_the_work(
    template: Project, tmp_path: Path
) -> None:
    (template.checkout / "notes.txt").write_text("my only copy\n")
    template.write_series(
        {"0001-Change-line-four.patch": P1, "0002-Change-line-twelve.patch": P2}
    )

    def check(project: Project, recovered: bool) -> None:
        build = project.root / "build"
        copies = [build / "aiohttp" / "notes.txt"]
        copies += build.glob("aiohttp.discarded/*/notes.txt")
        if not recovered:  # exchanged, not yet moved: the journal says where
            copies += build.glob("tmp/patchq/*/notes.txt")
        found = [c.read_text() for c in copies if c.exists()]
        assert found == ["my only copy\n"]
        if recovered:
            assert not (build / "aiohttp" / "notes.txt").exists()

    kill_at_every_step(template, tmp_path, ["apply", "--force"], check)


def test_apply_on_a_full_disk_at_every_step(template: Project, tmp_path: Path) -> None:
    """A write that fails (ENOSPC) at any step: one line, then `make clean`
    and a second run give the uninterrupted result (issue 19, item 14)."""
    template.write_series(
        {"0001-Change-line-four.patch": P1, "0002-Change-line-twelve.patch": P2}
    )
    old = snapshot(template)
    new = reference(template, tmp_path, ["apply"])

    def check(project: Project, recovered: bool) -> None:
        now = snapshot(project)
        assert now[1] == old[1]
        assert now[0] == new[0] if recovered else now[0] in (old[0], new[0])

    kill_at_every_step(template, tmp_path, ["apply"], check, fault=errno.ENOSPC)


def test_refresh_in_a_read_only_folder_at_every_step(
    template: Project, tmp_path: Path
) -> None:
    lines = template.checkout / "lines.txt"
    lines.write_text(lines.read_text().replace("line 16", "changed 16"))
    template.git("commit", "-q", "-a", "-m", "Change line sixteen")
    old = snapshot(template)
    new = reference(template, tmp_path, ["refresh"])

    def check(project: Project, recovered: bool) -> None:
        now = snapshot(project)
        assert now[0] == old[0]
        assert now[1] == new[1] if recovered else now[1] in (old[1], new[1])

    kill_at_every_step(template, tmp_path, ["refresh"], check, fault=errno.EACCES)
