"""tools/intree.py: the tests each patch adds must fail without it, in time."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.tools.throwaway import LOG_PATCH, PROBED_LOG_PATCH, make_patch
from tools import intree, patches
from tools.intree import CodePatch, InTreeError, Run


def patch_of(name: str, text: str, tmp_path: Path) -> patches.Patch:
    path = tmp_path / name
    path.write_text(text)
    return patches.read_patch(patches.SeriesEntry(name, path, 1))


def test_added_tests_are_the_top_level_test_functions_of_test_modules() -> None:
    diff = (
        "--- a/tests/test_connector.py\n"
        "+++ b/tests/test_connector.py\n"
        "@@ -1,2 +1,9 @@\n"
        "+async def test_new_async(loop) -> None:\n"
        "+def test_new_sync() -> None:\n"
        "+    def test_nested() -> None:\n"
        "+def helper_not_a_test() -> None:\n"
        "-def test_removed() -> None:\n"
        " def test_unchanged() -> None:\n"
        "--- a/aiohttp/connector.py\n"
        "+++ b/aiohttp/connector.py\n"
        "@@ -1 +1,2 @@\n"
        "+def test_in_the_package() -> None:\n"
        "--- a/tests/conftest.py\n"
        "+++ b/tests/conftest.py\n"
        "@@ -1 +1,2 @@\n"
        "+def test_in_a_conftest() -> None:\n"
    )
    assert intree.added_tests(diff) == [
        "tests/test_connector.py::test_new_async",
        "tests/test_connector.py::test_new_sync",
    ]


def test_code_patches_skip_patches_outside_the_package(tmp_path: Path) -> None:
    fragment = make_patch(
        "Add a fragment",
        """
        diff --git a/CHANGES/1.bugfix.rst b/CHANGES/1.bugfix.rst
        new file mode 100644
        --- /dev/null
        +++ b/CHANGES/1.bugfix.rst
        @@ -0,0 +1 @@
        +Fixed it.
        """,
    )
    patches = [
        patch_of("0001-fragment.patch", fragment, tmp_path),
        patch_of("0002-log.patch", PROBED_LOG_PATCH, tmp_path),
    ]
    assert intree.code_patches(patches) == [
        CodePatch(
            2,
            "0002-log.patch",
            (
                "tests/test_probe.py::test_access_logger_renamed",
                "tests/test_probe.py::test_internal_logger_kept",
            ),
        )
    ]


def test_a_code_patch_without_a_test_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InTreeError, match="adds no test function"):
        intree.code_patches([patch_of("0001-log.patch", LOG_PATCH, tmp_path)])


def test_a_patch_to_compiled_sources_is_refused(tmp_path: Path) -> None:
    pyx = make_patch(
        "Touch the parser",
        """
        diff --git a/aiohttp/_http_parser.pyx b/aiohttp/_http_parser.pyx
        --- a/aiohttp/_http_parser.pyx
        +++ b/aiohttp/_http_parser.pyx
        @@ -1 +1,2 @@
        +# comment
         #cython: language_level=3
        """,
    )
    with pytest.raises(InTreeError, match="_http_parser.pyx"):
        intree.code_patches([patch_of("0001-pyx.patch", pyx, tmp_path)])


def test_plan_fails_before_the_patch_and_on_pristine_passes_with_it() -> None:
    first = CodePatch(1, "a", ("tests/test_a.py::test_a",))
    third = CodePatch(3, "c", ("tests/test_c.py::test_c",))
    runs = intree.plan([first, third])
    assert [(r.patch.index, r.code, r.expect_fail) for r in runs] == [
        (1, 0, True),
        (1, 1, False),
        (3, 0, True),
        (3, 2, True),
        (3, 3, False),
    ]
    assert [r.against for r in runs] == [
        "pristine",
        "with the patch",
        "pristine",
        "patches 1-2 only",
        "with the patch",
    ]


PATCH = CodePatch(2, "p", ("tests/test_x.py::test_a", "tests/test_x.py::test_b"))
BEFORE, WITH = Run(PATCH, 1, expect_fail=True), Run(PATCH, 2, expect_fail=False)


@pytest.mark.parametrize(
    ("run", "cases", "returncode", "expected"),
    [
        (BEFORE, {"test_a[x]": "failed", "test_a[y]": "failed", "test_b": "failed"},
         1, "ok"),
        (BEFORE, {"test_a[x]": "failed", "test_a[y]": "passed", "test_b": "failed"}, 1,
         "passed without the patch: test_a[y]"),
        (BEFORE, {"test_a": "failed"}, 1, "did not run: test_b"),
        (BEFORE, {"test_a": "failed", "test_b": "skipped"}, 1,
         "skipped without the patch: test_b"),
        (BEFORE, None, 4, "pytest exited 4 without results"),
        (BEFORE, None, None, "did not finish in time (a test hangs)"),
        (WITH, {"test_a": "passed", "test_b": "passed"}, 0, "ok"),
        (WITH, {"test_a": "passed", "test_b": "failed"}, 1,
         "failed with the patch: test_b"),
    ],
)  # fmt: skip
def test_verdict(
    run: Run, cases: dict[str, str] | None, returncode: int | None, expected: str
) -> None:
    assert intree.verdict(run, cases, returncode) == expected


def test_read_cases_counts_a_teardown_error_as_a_failure(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite tests="3">'
        '<testcase classname="tests.test_x" name="test_a[pyloop]">'
        '<failure message="boom"/></testcase>'
        '<testcase classname="tests.test_x" name="test_b[pyloop]"/>'
        '<testcase classname="tests.test_x" name="test_b[pyloop]">'
        '<error message="teardown"/></testcase>'
        '<testcase classname="tests.test_x" name="test_c"><skipped/></testcase>'
        '<testcase classname="tests.test_x" name="test_d"/>'
        "</testsuite></testsuites>"
    )
    assert intree.read_cases(junit) == {
        "test_a[pyloop]": "failed",
        "test_b[pyloop]": "failed",
        "test_c": "skipped",
        "test_d": "passed",
    }


def test_a_hanging_run_is_killed_at_the_bound(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "tests").mkdir(parents=True)
    (tree / "setup.cfg").write_text("[tool:pytest]\n")
    (tree / "tests" / "test_hang.py").write_text(
        "import time\n\n\ndef test_hang():\n    time.sleep(600)\n"
    )
    cases, returncode, seconds = intree.run_pytest(
        Path(sys.executable), tree, tmp_path, ("tests/test_hang.py",), tmp_path, 3
    )
    assert (cases, returncode) == (None, None)
    assert seconds < 60
