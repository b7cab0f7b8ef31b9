"""make changelog: print the changelog drafts of the series.

aiohttp's (the fragments the series adds to build/aiohttp) and this
project's (CHANGES/ at the top, config in pyproject.toml); see
tools.fragments for how each is drafted.
"""

from __future__ import annotations

import sys

from tools.cli import reports_errors
from tools.fragments import aiohttp_draft, our_draft
from tools.project import CHECKOUT, ROOT, require_checkout, series_version


@reports_errors
def main() -> int:
    version = series_version()
    require_checkout(CHECKOUT)
    print("=" * 30, "aiohttp (CHANGES/ in build/aiohttp)", "=" * 30)
    print(aiohttp_draft(CHECKOUT, version))
    print("=" * 30, "this series (CHANGES/)", "=" * 30)
    print(our_draft(ROOT, version))
    return 0


if __name__ == "__main__":
    sys.exit(main())
