"""What the tools' command lines share: a user's error is one line, exit 1."""

from __future__ import annotations

import functools
import shlex
import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar

from tools.project import ToolError

__all__ = ["ToolError", "reports_errors"]

F = TypeVar("F", bound=Callable[..., int])


def reports_errors(main: F) -> F:
    """Turn ToolError and a failed subprocess into `error: ...` and exit 1."""

    @functools.wraps(main)
    def wrapper(*args: object, **kwargs: object) -> int:
        try:
            return main(*args, **kwargs)
        except ToolError as exc:
            print(f"error: {exc}", file=sys.stderr)
        except subprocess.CalledProcessError as exc:
            cmd = shlex.join(map(str, exc.cmd))
            print(f"error: `{cmd}` exited {exc.returncode}", file=sys.stderr)
        return 1

    return wrapper  # type: ignore[return-value]
