"""pytest plugin for running aiohttp's own suite against an installed build.

Adds --deselect-file (one node id per line, `# reason` after it) and stops
the run if `aiohttp` would be imported from the source tree instead of the
compiled build in the environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--deselect-file",
        help="file of node ids to deselect, each followed by `# reason`",
    )


def read_deselect_file(path: Path) -> dict[str, str]:
    """Node id -> reason. Every entry must give its reason."""
    entries: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        node, sep, reason = line.partition("#")
        if not sep or not reason.strip():
            raise pytest.UsageError(f"{path}:{lineno}: give a reason after '#'")
        entries[node.strip()] = reason.strip()
    return entries


def pytest_configure(config: pytest.Config) -> None:
    import aiohttp

    origin = Path(aiohttp.__file__).resolve()
    if config.rootpath.resolve() in origin.parents:
        raise pytest.UsageError(
            f"aiohttp is imported from the source tree ({origin}), not from "
            "the built environment; run bin/pytest, not python -m pytest"
        )


def pytest_report_header(config: pytest.Config) -> str:
    import aiohttp

    return f"aiohttp {aiohttp.__version__} from {Path(aiohttp.__file__).parent}"


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    option = config.getoption("--deselect-file")
    if not option:
        return
    wanted = read_deselect_file(Path(option))
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (dropped if item.nodeid in wanted else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
