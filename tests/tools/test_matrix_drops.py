"""make matrix says which patches to drop at which release from what the
release, unpatched, passes (the race results of make races), and flags a
DEP-3 Applied-Upstream field that claims more (throwaway patches,
synthetic sdists)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.tools.throwaway import (
    CHANGE_2,
    CHANGE_10,
    CONNECTOR_TIMES,
    SESSION_PLAIN,
    fake_sdist,
    make_patch,
    options,
    quiet,
)
from tools import matrix, matrix_report
from tools.patches import Patch, SeriesEntry, read_patch

UPSTREAM_FIELDS = """\
Bug: https://github.com/aio-libs/aiohttp/issues/9598
Forwarded: https://github.com/aio-libs/aiohttp/pull/9600
Applied-Upstream: 3.10.11, https://github.com/aio-libs/aiohttp/pull/9673
Last-Update: 2026-11-21"""


def patch(tmp_path: Path, name: str, diff: str, body: str = "") -> Patch:
    path = tmp_path / name
    path.write_text(make_patch(name, diff, body=body))
    return read_patch(SeriesEntry(name, path, 1))


def series(tmp_path: Path) -> list[Patch]:
    return [
        patch(
            tmp_path, "0001-move.patch", CHANGE_10, body=f"Why.\n\n{UPSTREAM_FIELDS}"
        ),
        patch(tmp_path, "0002-ours.patch", CHANGE_2, body="Why.\n\nForwarded: no"),
    ]


def measured(has: dict[str, list[str]]) -> dict[str, object]:
    """races.json as make races writes it, for releases that have patches."""
    return {"builds": {v: {"note": "", "has": numbers} for v, numbers in has.items()}}


def test_a_patch_is_dropped_only_where_its_tests_pass(tmp_path: Path) -> None:
    patches = series(tmp_path)
    results = measured({"3.10.11": ["0001"], "3.12.15": ["0001", "0002"]})
    assert matrix.drops(patches, "3.10.11", results) == ["0001-move.patch"]
    assert matrix.drops(patches, "3.12.15", results) == [
        "0001-move.patch",
        "0002-ours.patch",
    ]
    # not raced: no advice, whatever DEP-3 claims
    assert matrix.drops(patches, "3.11.18", results) is None
    found = matrix.applied_upstream(patches)
    assert list(found) == ["0001-move.patch"]
    assert found["0001-move.patch"].release == "3.10.11"


def test_a_release_whose_run_failed_gets_no_advice(tmp_path: Path) -> None:
    results = {"builds": {"3.10.11": {"note": "timed out", "has": []}}}
    assert matrix.drops(series(tmp_path), "3.10.11", results) is None


def test_check_version_records_the_drops(tmp_path: Path) -> None:
    opts = options(tmp_path, series(tmp_path))
    opts.measured = measured({"3.10.11": ["0001"]})
    pin = fake_sdist(opts.cache_dir, "3.10.11", SESSION_PLAIN, CONNECTOR_TIMES)
    row = matrix.check_version(pin, opts, quiet)
    assert (row.applies, row.drop) == (matrix.UPSTREAM, ["0001-move.patch"])


def test_reports_say_what_to_drop_where_and_flag_dep3(tmp_path: Path) -> None:
    patches = series(tmp_path)
    names = [p.name for p in patches]
    rows = [
        matrix.Row("3.10.10", "verified", matrix.ZERO_FUZZ, main=True),
        # DEP-3 says 3.10.11 has 0001, but its tests fail there
        matrix.Row("3.10.11", "verified", matrix.UPSTREAM, drop=[]),
        matrix.Row("3.12.15", "verified", matrix.UPSTREAM, drop=["0001-move.patch"]),
        matrix.Row("3.13.5", "verified", matrix.UPSTREAM),  # not measured
    ]
    upstream = matrix.applied_upstream(patches)
    text = matrix_report.render_markdown(rows, names, "3.11.7", upstream)
    section = text[text.index("## Patches to drop") :].splitlines()
    table = section[
        section.index(
            "| release | drop (measured) | keep | DEP-3 Applied-Upstream disagrees |"
        ) :
    ]
    assert table[2:5] == [
        "| 3.10.11 | - | `0001-move.patch`, `0002-ours.patch` | `0001-move.patch` |",
        "| 3.12.15 | `0001-move.patch` | `0002-ours.patch` | - |",
        "| 3.13.5 | not measured | - | - |",
    ]
    assert (
        "| `0001-move.patch` | 3.10.11, https://github.com/aio-libs/aiohttp/pull/9673 |"
        in section
    )
    data = json.loads(matrix_report.render_json(rows, names, "3.11.7", upstream))
    assert [r["drop"] for r in data["rows"]] == [None, [], ["0001-move.patch"], None]
