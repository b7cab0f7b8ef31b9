"""make matrix says which patches to drop at which release, from each
patch's DEP-3 Applied-Upstream field (throwaway patches, synthetic sdists)."""

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


def test_a_patch_is_dropped_from_its_applied_upstream_release_on(
    tmp_path: Path,
) -> None:
    patches = series(tmp_path)
    assert matrix.drops(patches, "3.10.10") == []
    assert matrix.drops(patches, "3.10.11") == ["0001-move.patch"]
    assert matrix.drops(patches, "3.12.15") == ["0001-move.patch"]
    found = matrix.applied_upstream(patches)
    assert list(found) == ["0001-move.patch"]
    assert found["0001-move.patch"].release == "3.10.11"


def test_check_version_records_the_drops(tmp_path: Path) -> None:
    opts = options(tmp_path, series(tmp_path))
    pin = fake_sdist(opts.cache_dir, "3.10.11", SESSION_PLAIN, CONNECTOR_TIMES)
    row = matrix.check_version(pin, opts, quiet)
    assert (row.applies, row.drop) == (matrix.UPSTREAM, ["0001-move.patch"])


def test_reports_say_what_to_drop_where(tmp_path: Path) -> None:
    patches = series(tmp_path)
    names = [p.name for p in patches]
    rows = [
        matrix.Row("3.10.10", "verified", matrix.ZERO_FUZZ, main=True),
        matrix.Row("3.10.11", "verified", matrix.UPSTREAM, drop=["0001-move.patch"]),
    ]
    upstream = matrix.applied_upstream(patches)
    text = matrix_report.render_markdown(rows, names, "3.11.7", upstream)
    section = text[text.index("## Patches upstream has") :].splitlines()
    assert section[2:] == [
        "| patch | applied upstream | drop at |",
        "| --- | --- | --- |",
        "| `0001-move.patch` | 3.10.11, https://github.com/aio-libs/aiohttp/pull/9673"
        " | 3.10.11 and later |",
        "",
        "| release | drop | keep |",
        "| --- | --- | --- |",
        "| 3.10.11 | `0001-move.patch` | `0002-ours.patch` |",
    ]
    data = json.loads(matrix_report.render_json(rows, names, "3.11.7", upstream))
    assert data["applied_upstream"] == {
        "0001-move.patch": {
            "release": "3.10.11",
            "references": ["https://github.com/aio-libs/aiohttp/pull/9673"],
        }
    }
    assert [r["drop"] for r in data["rows"]] == [[], ["0001-move.patch"]]


def test_a_series_without_the_field_drops_nothing(tmp_path: Path) -> None:
    rows = [matrix.Row("3.10.11", "verified", matrix.UPSTREAM)]
    text = matrix_report.render_markdown(rows, ["a.patch"], "3.11.7", {})
    assert "No patch names an upstream release" in text
    assert "| release | drop | keep |" not in text
