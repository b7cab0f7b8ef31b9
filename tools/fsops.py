"""The filesystem steps that keep the patch queue from ever losing work.

- One lock (build/patchq.lock, fcntl.flock): a second `make apply` waits,
  saying so, instead of racing the first. The kernel drops the lock when
  its holder dies, even by SIGKILL.
- Temporary directories in one place (build/tmp/patchq/), removed at the
  start of the next command and by `make clean`.
- Backups under unique names (time, pid and a random part), never to the
  second only.
- Directory swaps through a journal (build/patchq-swap.json): the new
  directory is complete before the journal is written; the swap itself is
  one renameat2(RENAME_EXCHANGE) where the kernel has it, else two renames.
  The next command reads a journal left by a killed one: a swap that
  happened is finished (the old directory goes where it was meant to go),
  one that did not is undone (the new directory is dropped). So a SIGKILL
  at any point leaves the old or the new directory, never neither, and
  never loses the old one when it was to be kept.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tools.names import ToolError, within

LOCK = "patchq.lock"
JOURNAL = "patchq-swap.json"
TMP = Path("tmp") / "patchq"  # under build/

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def tmp_root(build: Path) -> Path:
    return build / TMP


def new_tmp_dir(build: Path, prefix: str) -> Path:
    """A new directory in build/tmp/patchq/, with the umask's permissions."""
    root = tmp_root(build)
    within(build.parent, root)
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o777 & ~umask)  # mkdtemp makes it private
    return path


def unique_name(parent: Path) -> Path:
    """A path in parent that no other run can pick: time, pid, random."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    # mkdtemp reserves the name; the caller renames a directory onto it
    reserved = Path(tempfile.mkdtemp(prefix=f"{stamp}-{os.getpid()}-", dir=parent))
    reserved.rmdir()
    return reserved


def write_atomic(path: Path, data: bytes) -> None:
    """Replace path's contents in one rename: readers see old or new."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if path.exists():
            shutil.copymode(path, tmp)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def locked(build: Path, what: str) -> Iterator[None]:
    """Hold build/patchq.lock; wait (saying who holds it) if another does."""
    within(build.parent, build / LOCK)  # build/ itself, or the lock, a link out
    build.mkdir(parents=True, exist_ok=True)
    path = build / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
    with open(fd, "r+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another command"
            print(
                f"waiting for {holder} to finish (lock {path})",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"`{what}` (pid {os.getpid()})\n")
        f.flush()
        yield


def start(build: Path) -> list[str]:
    """Under the lock: finish or undo a killed swap, then clear temp dirs."""
    notes = recover(build)
    shutil.rmtree(tmp_root(build), ignore_errors=True)
    for stray in build.glob(".aiohttp.*"):  # temp checkouts of older versions
        shutil.rmtree(stray, ignore_errors=True)
    return notes


# ---------------------------------------------------------------- swap


def _renameat2() -> Any:
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    func.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    return func


def exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step; False where the kernel cannot."""
    func = _renameat2()
    if func is None:
        return False
    if func(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE):
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise OSError(err, os.strerror(err), str(a), None, str(b))
    return True


def swap_in(
    build: Path,
    new: Path,
    target: Path,
    *,
    keep_old: Path | None = None,
    then: dict[str, str] | None = None,
) -> None:
    """Put the complete directory new at target.

    The old target is moved to keep_old when given, else deleted. then maps
    paths to text written (atomically) once the swap has happened: what
    belongs with the new directory, such as the checkout's state.
    """
    journal = {
        "new": str(new),
        "new_ino": new.stat().st_ino,
        "target": str(target),
        "old_to": str(keep_old or new.with_name(new.name + ".old")),
        "keep_old": keep_old is not None,
        "then": then or {},
    }
    write_atomic(build / JOURNAL, json.dumps(journal, indent=1).encode())
    _forward(journal)
    _finish(build, journal)


def _swapped(j: dict[str, Any]) -> bool:
    try:
        return os.lstat(j["target"]).st_ino == j["new_ino"]
    except FileNotFoundError:
        return False


def _forward(j: dict[str, Any]) -> None:
    new, target, old_to = Path(j["new"]), Path(j["target"]), Path(j["old_to"])
    if not target.exists():
        os.rename(new, target)
    elif exchange(new, target):
        os.rename(new, old_to)  # new's name now holds the old directory
    else:
        os.rename(target, old_to)
        os.rename(new, target)


def _finish(build: Path, j: dict[str, Any]) -> None:
    for path, text in j["then"].items():
        write_atomic(Path(path), text.encode())
    if not j["keep_old"]:
        shutil.rmtree(j["old_to"], ignore_errors=True)
    (build / JOURNAL).unlink(missing_ok=True)


def recover(build: Path) -> list[str]:
    """Finish a swap a killed command had made, or undo one it had not."""
    try:
        within(build.parent, build / JOURNAL)
        j = json.loads((build / JOURNAL).read_text())
    except FileNotFoundError:
        return []
    except ValueError:  # cannot happen (written atomically); do not guess
        (build / JOURNAL).unlink()
        return []
    new, target, old_to = Path(j["new"]), Path(j["target"]), Path(j["old_to"])
    try:  # only what a swap of ours names: paths inside the project
        within(build.parent, new, target, old_to, *map(Path, j["then"]))
    except ToolError as exc:
        raise ToolError(
            f"{build / JOURNAL}: not a swap the tools began ({exc}); delete it "
            "and run the command again"
        ) from None
    if _swapped(j):
        if new.exists():  # exchanged, but the old one not yet moved
            os.rename(new, old_to)
        _finish(build, j)
        return [f"recovered: finished replacing {target} after an interruption"]
    if not target.exists() and old_to.exists():  # between two plain renames
        os.rename(old_to, target)
    shutil.rmtree(new, ignore_errors=True)
    (build / JOURNAL).unlink(missing_ok=True)
    return [f"recovered: {target} left as it was before an interrupted run"]
