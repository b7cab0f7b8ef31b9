"""make matrix (tools/matrix.py): classification, detection and reports.

Everything runs on synthetic trees and sdists, or on the cached 3.10.10
sdist; nothing is downloaded, built or tested here.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.tools.throwaway import VERSION_PATCH, make_patch
from tools import junit, matrix, sdist
from tools.patchq import Patch, SeriesEntry, read_patch

BASE = "".join(f"line {n}\n" for n in range(1, 21))
# Changes line 10, with lines 7-9 and 11-13 as context.
CHANGE_10 = """
    diff --git a/pkg/mod.py b/pkg/mod.py
    --- a/pkg/mod.py
    +++ b/pkg/mod.py
    @@ -7,7 +7,7 @@
     line 7
     line 8
     line 9
    -line 10
    +LINE 10
     line 11
     line 12
     line 13
    """
CHANGE_2 = """
    diff --git a/pkg/mod.py b/pkg/mod.py
    --- a/pkg/mod.py
    +++ b/pkg/mod.py
    @@ -1,4 +1,4 @@
     line 1
    -line 2
    +LINE 2
     line 3
     line 4
    """


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


def test_tidy_keeps_notes_it_does_not_know() -> None:
    assert matrix._tidy("x.py: the change is already in the tree") == (
        "x.py: the change is already in the tree"
    )


# ---------------------------------------------------------------- upstream

SESSION_WRAPS = """
from .helpers import ceil_timeout

class ClientSession:
    async def _request(self, req, traces, real_timeout):
        try:
            async with ceil_timeout(
                real_timeout.connect, ceil_threshold=real_timeout.ceil_threshold
            ):
                conn = await self._connector.connect(
                    req, traces=traces, timeout=real_timeout
                )
        except TimeoutError:
            raise
        return conn
"""
SESSION_PLAIN = """
class ClientSession:
    async def _request(self, req, traces, real_timeout):
        async with helpers.ceil_timeout(real_timeout.total):
            await self._prepare()  # a timeout around something else
        return await self._connector.connect(req, traces=traces, timeout=real_timeout)
"""
CONNECTOR_PLAIN = """
class BaseConnector:
    async def connect(self, req, traces, timeout):
        return await self._create_connection(req, traces, timeout)

class TCPConnector(BaseConnector):
    async def _create_connection(self, req, traces, timeout):
        async with ceil_timeout(timeout.sock_connect):  # not the connect timeout
            pass
"""
CONNECTOR_TIMES = """
class BaseConnector:
    async def connect(self, req, traces, timeout):
        if (conn := await self._get(req.connection_key, traces)) is not None:
            return conn
        async with helpers.ceil_timeout(timeout.connect, timeout.ceil_threshold):
            return await self._create_connection(req, traces, timeout)
"""


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


def test_detect_on_the_real_3_10_10_sources(tmp_path: Path, cached_sdist: Path) -> None:
    with tarfile.open(cached_sdist) as tar:
        files = {
            name: tar.extractfile(f"aiohttp-3.10.10/aiohttp/{name}").read().decode()  # type: ignore[union-attr]
            for name in ("client.py", "connector.py")
        }
    got = matrix.detect(
        source_tree(tmp_path, files["client.py"], files["connector.py"])
    )
    assert got == matrix.Upstream(session_wraps=True, connector_times=False)


# ---------------------------------------------------------------- versions


def fake_sdist(cache: Path, version: str, client: str, connector: str) -> sdist.Pin:
    """A tiny aiohttp-<version>.tar.gz in cache, pinned to its own sha256."""
    name = f"aiohttp-{version}.tar.gz"
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(cache / name, "w:gz") as tar:
        for rel, text in (("client.py", client), ("connector.py", connector)):
            data = text.encode()
            info = tarfile.TarInfo(f"aiohttp-{version}/aiohttp/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return sdist.Pin("aiohttp", version, name, sdist.sha256_of(cache / name))


def options(tmp_path: Path, patches: list[Patch]) -> matrix.Options:
    return matrix.Options(
        patches,
        out=tmp_path / "out",
        cache_dir=tmp_path / "cache",
        tests=False,
        main_version="3.10.10",
    )


def quiet(step: str) -> None:
    pass


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
    wrong = sdist.Pin(pin.name, pin.version, pin.sdist, "0" * 64)
    row = matrix.check_version(wrong, opts, quiet)
    assert (row.sha256, row.applies) == ("MISMATCH", matrix.REFUSED)
    assert "sha256 is" in row.details[0]
    assert not row.ok


def test_real_3_10_10_with_a_throwaway_series(
    tmp_path: Path, cached_sdist: Path
) -> None:
    version_patch = tmp_path / "version.patch"
    version_patch.write_text(VERSION_PATCH)
    opts = options(
        tmp_path, [read_patch(SeriesEntry("version.patch", version_patch, 1))]
    )
    opts.cache_dir.mkdir()
    os.link(cached_sdist, opts.cache_dir / cached_sdist.name)
    steps: list[str] = []
    row = matrix.check_version(sdist.load_pin(), opts, steps.append)
    assert (row.sha256, row.applies, row.details, row.main) == (
        "verified",
        matrix.ZERO_FUZZ,
        [],
        True,
    )
    assert row.ok
    assert steps == ["fetching", "unpacking", "applying"]


def test_pins_are_sorted_by_release_and_exclude_the_main_pin(tmp_path: Path) -> None:
    main = sdist.load_pin()
    toml = tmp_path / "matrix.toml"
    toml.write_text(
        f'[sdists]\n"3.10.11" = "{"b" * 64}"\n"3.10.9" = "{"a" * 64}"\n'
        f'"3.10.2" = "{"c" * 64}"\n"3.10.10" = "{main.sha256}"\n'
    )
    pins = matrix.load_pins(toml, main)
    assert [p.version for p in pins] == ["3.10.2", "3.10.9", "3.10.10", "3.10.11"]
    assert pins[2] is main
    assert pins[1] == sdist.Pin("aiohttp", "3.10.9", "aiohttp-3.10.9.tar.gz", "a" * 64)
    assert [p.version for p in matrix.select(pins, "3.10.10, 3.10.2")] == [
        "3.10.2",
        "3.10.10",
    ]
    with pytest.raises(matrix.MatrixError, match="not pinned: 3.9.0"):
        matrix.select(pins, "3.9.0")


def test_a_second_pin_for_the_main_release_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "matrix.toml"
    toml.write_text(f'[sdists]\n"3.10.10" = "{"d" * 64}"\n')
    with pytest.raises(matrix.MatrixError, match="upstream.toml pins"):
        matrix.load_pins(toml)


def test_matrix_toml_pins_every_3_10_release() -> None:
    versions = {p.version for p in matrix.load_pins()}
    assert {f"3.10.{n}" for n in range(12)} <= versions
    assert any(v.startswith("3.11.") for v in versions)
    assert any(v.startswith(("3.12.", "3.13.")) for v in versions)


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
        matrix.Row(
            "3.10.10", "verified", matrix.ZERO_FUZZ, [], "26 passed", passed, True
        ),
        matrix.Row("3.10.11", "verified", matrix.UPSTREAM, ["moved", "second"]),
    ]


def test_markdown_table_has_a_row_per_release() -> None:
    text = matrix.render_markdown(sample_rows(), ["a.patch"], "3.11.7")
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
    data = json.loads(matrix.render_json(sample_rows(), ["a.patch"], "3.11.7"))
    assert data["series"] == ["a.patch"]
    assert [r["applies"] for r in data["rows"]] == [
        "no",
        "zero fuzz",
        "already upstream",
    ]
    assert data["rows"][1]["test_result"]["passed"] == 26
    assert data["rows"][0]["test_result"] is None


def test_main_pin_is_ok_only_when_clean_and_green() -> None:
    rows = sample_rows()
    assert rows[1].ok
    rows[1].test_result = junit.TestResult(25, 1, 0)
    assert not rows[1].ok
    assert not matrix.Row("3.10.10", "verified", matrix.FUZZ).ok


def test_build_key_follows_the_patches(tmp_path: Path) -> None:
    pin = sdist.load_pin()
    a, b = patch(tmp_path, "a.patch", CHANGE_10), patch(tmp_path, "b.patch", CHANGE_2)
    assert matrix.build_key(pin, [a]) == matrix.build_key(pin, [a])
    assert matrix.build_key(pin, [a]) != matrix.build_key(pin, [b])
    assert matrix.build_key(pin, [a]) != matrix.build_key(pin, [])


def test_markdown_names_each_patch_once_per_row() -> None:
    row = matrix.Row(
        "3.10.9",
        "verified",
        matrix.OFFSETS,
        [
            "a.patch: f hunk #1: offset 1 line",
            "a.patch: f hunk #2: offset 2 lines",
            "b.patch: g hunk #1: offset 3 lines",
            "failed: t::x",
        ],
    )
    text = matrix.render_markdown([row], ["a.patch", "b.patch"], "3.11.7")
    assert (
        "| a.patch: f hunk #1: offset 1 line; f hunk #2: offset 2 lines<br>"
        "b.patch: g hunk #1: offset 3 lines<br>failed: t::x |"
    ) in text
