"""make matrix (tools/matrix.py): classification, detection and reports.

Everything runs on synthetic trees and sdists; nothing is downloaded,
built or tested here. tests/integration/test_matrix_real.py checks the
real pin and matrix.toml.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tools.throwaway import (
    BASE,
    CHANGE_2,
    CHANGE_10,
    CONNECTOR_PLAIN,
    CONNECTOR_TIMES,
    SESSION_PLAIN,
    SESSION_WRAPS,
    fake_sdist,
    make_patch,
    options,
    quiet,
)
from tools import builds, junit, matrix, matrix_report, patches
from tools.patches import Patch, SeriesEntry, read_patch
from tools.project import Pin, ToolError, matrix_pins


def patch(tmp_path: Path, name: str, diff: str) -> Patch:
    path = tmp_path / name
    path.write_text(make_patch(name, diff))
    return read_patch(SeriesEntry(name, path, 1))


def tree(tmp_path: Path, text: str, name: str = "pristine") -> Path:
    root = tmp_path / name
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text(text)
    return root


# ---------------------------------------------------------------- applying


def test_exact_series_applies_with_zero_fuzz(tmp_path: Path) -> None:
    pristine = tree(tmp_path, BASE)
    dest = tmp_path / "patched"
    got = matrix.apply_series(pristine, dest, [patch(tmp_path, "a.patch", CHANGE_10)])
    assert (got.status, got.notes) == (matrix.ZERO_FUZZ, [])
    assert "LINE 10\n" in (dest / "pkg" / "mod.py").read_text()
    assert (pristine / "pkg" / "mod.py").read_text() == BASE  # copied, not edited


def test_moved_hunks_are_offsets_with_their_distance(tmp_path: Path) -> None:
    pristine = tree(tmp_path, "extra\n" * 3 + BASE)
    got = matrix.apply_series(
        pristine, tmp_path / "out", [patch(tmp_path, "a.patch", CHANGE_10)]
    )
    assert got.status == matrix.OFFSETS
    assert got.notes == ["a.patch: pkg/mod.py hunk #1 (line 7): offset 3 lines"]


def test_changed_context_needs_fuzz(tmp_path: Path) -> None:
    pristine = tree(tmp_path, BASE.replace("line 7\n", "line seven\n"))
    got = matrix.apply_series(
        pristine, tmp_path / "out", [patch(tmp_path, "a.patch", CHANGE_10)]
    )
    assert got.status == matrix.FUZZ
    assert got.notes == ["a.patch: pkg/mod.py hunk #1 (line 7): with fuzz 1"]


def test_fuzz_retry_starts_from_a_fresh_copy(tmp_path: Path) -> None:
    # The zero-fuzz attempt applies a.patch before b.patch fails; the fuzz
    # attempt must not meet a.patch's change already in the tree.
    pristine = tree(tmp_path, BASE.replace("line 7\n", "line seven\n"))
    dest = tmp_path / "out"
    series = [
        patch(tmp_path, "a.patch", CHANGE_2),
        patch(tmp_path, "b.patch", CHANGE_10),
    ]
    got = matrix.apply_series(pristine, dest, series)
    assert got.status == matrix.FUZZ
    text = (dest / "pkg" / "mod.py").read_text()
    assert "LINE 2\n" in text and "LINE 10\n" in text


def test_changed_lines_do_not_apply_and_name_the_hunk(tmp_path: Path) -> None:
    pristine = tree(tmp_path, BASE.replace("line 10\n", "line ten\n"))
    series = [
        patch(tmp_path, "a.patch", CHANGE_2),
        patch(tmp_path, "b.patch", CHANGE_10),
    ]
    got = matrix.apply_series(pristine, tmp_path / "out", series)
    assert got.status == matrix.NO
    assert got.notes == [
        "b.patch: pkg/mod.py hunk #1 (line 7): does not apply at line 7"
    ]
    [failed] = got.hunks  # values, not only words
    assert (failed.patch, failed.hunk.file, failed.hunk.number) == (
        "b.patch",
        "pkg/mod.py",
        1,
    )
    assert (failed.hunk.outcome, failed.hunk.line, failed.hunk.old_line) == (
        patches.FAILED,
        7,
        7,
    )


def test_a_change_already_in_the_tree_is_named_by_file(tmp_path: Path) -> None:
    pristine = tree(tmp_path, BASE.replace("line 10\n", "LINE 10\n"))
    got = matrix.apply_series(
        pristine, tmp_path / "out", [patch(tmp_path, "a.patch", CHANGE_10)]
    )
    assert got.status == matrix.NO
    assert [h.hunk.outcome for h in got.hunks][:1] == [patches.ALREADY]
    assert got.notes[0] == "a.patch: pkg/mod.py: the change is already in the tree"


# ---------------------------------------------------------------- upstream


def source_tree(tmp_path: Path, client: str, connector: str) -> Path:
    package = tmp_path / "src" / "aiohttp"
    package.mkdir(parents=True)
    (package / "client.py").write_text(client)
    (package / "connector.py").write_text(connector)
    return package.parent


@pytest.mark.parametrize(
    ("client", "connector", "wraps", "times", "moved"),
    [
        (SESSION_WRAPS, CONNECTOR_PLAIN, True, False, False),  # 3.10.10
        (SESSION_PLAIN, CONNECTOR_TIMES, False, True, True),  # 3.10.11 on
        (SESSION_PLAIN, CONNECTOR_PLAIN, False, False, False),  # no timeout at all
        (SESSION_WRAPS, CONNECTOR_TIMES, True, True, False),  # both: not moved
    ],
    ids=["before", "upstream", "neither", "both"],
)
def test_detect_where_the_connect_timeout_is(
    tmp_path: Path, client: str, connector: str, wraps: bool, times: bool, moved: bool
) -> None:
    got = matrix.detect(source_tree(tmp_path, client, connector))
    assert (got.session_wraps, got.connector_times, got.moved) == (wraps, times, moved)


# ---------------------------------------------------------------- versions


def test_release_with_the_change_is_already_upstream(tmp_path: Path) -> None:
    opts = options(tmp_path, [patch(tmp_path, "a.patch", CHANGE_10)])
    pin = fake_sdist(opts.cache_dir, "9.9.9", SESSION_PLAIN, CONNECTOR_TIMES)
    row = matrix.check_version(pin, opts, quiet)
    assert (row.sha256, row.applies, row.tests) == ("verified", matrix.UPSTREAM, "n/a")
    assert "BaseConnector.connect applies it" in row.details[0]
    assert not (opts.out / "work" / "9.9.9").exists()  # unpacked trees removed


def test_release_without_the_change_gets_the_series_applied(tmp_path: Path) -> None:
    opts = options(tmp_path, [patch(tmp_path, "a.patch", CHANGE_10)])
    pin = fake_sdist(opts.cache_dir, "9.9.8", SESSION_WRAPS, CONNECTOR_PLAIN)
    row = matrix.check_version(pin, opts, quiet)
    # the synthetic sdist has no pkg/mod.py: the patch cannot apply
    assert (row.sha256, row.applies) == ("verified", matrix.NO)


def test_sdist_failing_its_pin_is_refused(tmp_path: Path) -> None:
    opts = options(tmp_path, [])
    pin = fake_sdist(opts.cache_dir, "9.9.9", SESSION_PLAIN, CONNECTOR_TIMES)
    wrong = Pin(pin.name, pin.version, pin.sdist, "0" * 64)
    row = matrix.check_version(wrong, opts, quiet)
    assert (row.sha256, row.applies) == ("MISMATCH", matrix.REFUSED)
    assert "sha256 is" in row.details[0]
    assert not row.ok


MAIN = Pin("aiohttp", "3.10.10", "aiohttp-3.10.10.tar.gz", "e" * 64)  # synthetic


def test_pins_are_sorted_by_release_and_exclude_the_main_pin(tmp_path: Path) -> None:
    main = MAIN
    toml = tmp_path / "matrix.toml"
    toml.write_text(
        f'[sdists]\n"3.10.11" = "{"b" * 64}"\n"3.10.9" = "{"a" * 64}"\n'
        f'"3.10.2" = "{"c" * 64}"\n"3.10.10" = "{main.sha256}"\n'
    )
    pins = matrix_pins(toml, main)
    assert [p.version for p in pins] == ["3.10.2", "3.10.9", "3.10.10", "3.10.11"]
    assert pins[2] is main
    assert pins[1] == Pin("aiohttp", "3.10.9", "aiohttp-3.10.9.tar.gz", "a" * 64)
    assert [p.version for p in matrix.select(pins, "3.10.10, 3.10.2")] == [
        "3.10.2",
        "3.10.10",
    ]
    with pytest.raises(matrix.MatrixError, match="not pinned: 3.9.0"):
        matrix.select(pins, "3.9.0")


def test_a_second_pin_for_the_main_release_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "matrix.toml"
    toml.write_text(f'[sdists]\n"3.10.10" = "{"d" * 64}"\n')
    with pytest.raises(ToolError, match="upstream.toml pins"):
        matrix_pins(toml, MAIN)


# ---------------------------------------------------------------- reports


def test_junit_counts_and_failing_tests(tmp_path: Path) -> None:
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<testsuites><testsuite tests="5" failures="1" errors="1" skipped="1">'
        '<testcase classname="t.a" name="ok"/>'
        '<testcase classname="t.a" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="t.b" name="broken"><error message="y"/></testcase>'
        '<testcase classname="t.b" name="skip"><skipped/></testcase>'
        '<testcase classname="t.b" name="ok2"/>'
        "</testsuite></testsuites>"
    )
    got = junit.read_junit(xml)
    assert (got.passed, got.failed, got.skipped) == (2, 2, 1)
    assert got.failing == ["t.a::bad", "t.b::broken"]
    assert got.summary() == "2 passed, 2 failed, 1 skipped"


def sample_rows() -> list[matrix.Row]:
    passed = junit.TestResult(26, 0, 0)
    return [
        matrix.Row("3.10.0", "verified", matrix.NO, ["a.patch: x.py | y hunk #1"]),
        matrix.Row("3.10.10", "verified", matrix.ZERO_FUZZ, [], [], passed, True),
        matrix.Row("3.10.11", "verified", matrix.UPSTREAM, ["moved", "second"]),
    ]


def test_markdown_table_has_a_row_per_release() -> None:
    text = matrix_report.render_markdown(sample_rows(), ["a.patch"], "3.11.7")
    lines = text.splitlines()
    header = lines.index("| version | sha256 | applies | details | behaviour tests |")
    assert lines[header + 1] == "| --- | --- | --- | --- | --- |"
    assert lines[header + 2 : header + 5] == [
        "| 3.10.0 | verified | no | a.patch: x.py \\| y hunk #1 | n/a |",
        "| **3.10.10** (main pin) | verified | zero fuzz | - | 26 passed |",
        "| 3.10.11 | verified | already upstream | moved<br>second | n/a |",
    ]
    assert "`a.patch`" in text and "Python 3.11.7" in text


def test_json_report_round_trips() -> None:
    data = json.loads(matrix_report.render_json(sample_rows(), ["a.patch"], "3.11.7"))
    assert data["series"] == ["a.patch"]
    assert [r["applies"] for r in data["rows"]] == [
        "no",
        "zero fuzz",
        "already upstream",
    ]
    assert data["rows"][1]["test_result"]["passed"] == 26
    assert data["rows"][1]["tests"] == "26 passed"  # rendered from the counts
    assert data["rows"][0]["test_result"] is None


def test_main_pin_is_ok_only_when_clean_and_green() -> None:
    rows = sample_rows()
    assert rows[1].ok
    rows[1].test_result = junit.TestResult(25, 1, 0)
    assert not rows[1].ok
    assert not matrix.Row("3.10.10", "verified", matrix.FUZZ).ok


def test_build_key_follows_the_patches(tmp_path: Path) -> None:
    pin = MAIN
    a, b = patch(tmp_path, "a.patch", CHANGE_10), patch(tmp_path, "b.patch", CHANGE_2)
    assert builds.build_key(pin, [a]) == builds.build_key(pin, [a])
    assert builds.build_key(pin, [a]) != builds.build_key(pin, [b])
    assert builds.build_key(pin, [a]) != builds.build_key(pin, [])


def moved(number: int, line: int, lines: int) -> patches.HunkResult:
    header = f"@@ -{line},7 +{line},7 @@"
    plural = "line" if lines == 1 else "lines"
    detail = f"(offset {lines} {plural})"
    return patches.HunkResult("f", number, header, patches.MOVED, line, detail)


def test_markdown_names_each_patch_once_per_row() -> None:
    row = matrix.Row(
        "3.10.9",
        "verified",
        matrix.OFFSETS,
        [],
        [
            matrix_report.PatchHunk("a.patch", moved(1, 4, 1)),
            matrix_report.PatchHunk("a.patch", moved(2, 20, 2)),
            matrix_report.PatchHunk("b.patch", moved(1, 9, 3)),
        ],
        junit.TestResult(25, 1, 0, ["t::x"]),
    )
    text = matrix_report.render_markdown([row], ["a.patch", "b.patch"], "3.11.7")
    assert (
        "| a.patch: f hunk #1 (line 4): offset 1 line; f hunk #2 (line 20): "
        "offset 2 lines<br>b.patch: f hunk #1 (line 9): offset 3 lines<br>"
        "failed: t::x | 25 passed, 1 failed |"
    ) in text
    data = json.loads(matrix_report.render_json([row], ["a.patch"], "3.11.7"))
    assert data["rows"][0]["hunks"][1] == {
        "patch": "a.patch",
        "hunk": {
            "file": "f",
            "number": 2,
            "header": "@@ -20,7 +20,7 @@",
            "outcome": "moved",
            "line": 20,
            "detail": "(offset 2 lines)",
        },
    }
