"""What the tools' command lines share: a user's error is one line, exit 1."""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar

from tools.project import ToolError

__all__ = ["ToolError", "picked", "reports_errors"]

F = TypeVar("F", bound=Callable[..., int])
T = TypeVar("T")


def picked(text: str | None, known: dict[str, T]) -> tuple[list[T], list[str]]:
    """What a comma-separated list of names picks from known (all of it when
    the list is empty), in known's order, and the names it has no item for."""
    wanted = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not wanted:
        return list(known.values()), []
    unknown = [n for n in wanted if n not in known]
    return [item for name, item in known.items() if name in wanted], unknown


def fault_message(exc: OSError) -> str:
    """A filesystem fault (a full disk, a read-only folder) in one line."""
    where = ": ".join(str(f) for f in (exc.filename, exc.filename2) if f)
    return (
        f"{where + ': ' if where else ''}{exc.strerror or exc}. Free space or "
        "fix the permissions, then run the command again (the patch queue "
        "finishes or undoes what this run began); `make clean` removes what "
        "is left"
    )


def reports_errors(main: F) -> F:
    """Turn ToolError, a failed subprocess and a filesystem fault into one
    `error: ...` line and exit 1."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        try:
            return main(*args, **kwargs)
        except ToolError as exc:
            print(f"error: {exc}", file=sys.stderr)
        except subprocess.CalledProcessError as exc:
            cmd = shlex.join(map(str, exc.cmd))
            print(f"error: `{cmd}` exited {exc.returncode}", file=sys.stderr)
        except OSError as exc:
            print(f"error: {fault_message(exc)}", file=sys.stderr)
        return 1

    return wrapper  # type: ignore[return-value]
