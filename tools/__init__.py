"""Tooling for the aiohttp connect-timeout patch series."""

# Checked before any tool module loads, in syntax every Python 3 parses, so
# an interpreter that is too old gets one line instead of a traceback.
import sys

if sys.version_info < (3, 9):
    sys.stderr.write(
        "error: these tools need Python 3.9 or newer; %s is %d.%d. "
        "Run with PYTHON=/path/to/python3.9+ (for example `make apply "
        "PYTHON=python3.11`).\n" % (sys.executable, sys.version_info[0], sys.version_info[1])
    )
    sys.exit(1)
