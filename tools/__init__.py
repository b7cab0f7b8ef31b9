"""Tooling for the aiohttp connect-timeout patch series."""

# Checked before any tool module loads, in syntax every Python 3 parses, so
# an interpreter that is too old gets one line instead of a traceback
# (%-format, not an f-string: Python 2 parses this file too).
import sys

if sys.version_info < (3, 9):  # noqa: UP036 (the check is the point)
    sys.stderr.write(
        "error: these tools need Python 3.9 or newer; %s is %d.%d. "  # noqa: UP031
        "Run with PYTHON=/path/to/python3.9+ (for example `make apply "
        "PYTHON=python3.11`).\n"
        % (sys.executable, sys.version_info[0], sys.version_info[1])
    )
    sys.exit(1)
