"""Counts from a pytest junit XML file (the matrix and the PR cover letter).

pytest writes an expected failure (xfail) as a skipped test case whose
<skipped> has type="pytest.xfail", and counts it in the suite's skipped=;
the counts here keep the two apart, as pytest's own summary line does. (An
unexpected pass of a non-strict xfail is a plain pass in junit; aiohttp's
setup.cfg sets xfail_strict, which makes it a failure.)
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

XFAIL = "pytest.xfail"


@dataclass
class TestResult:
    passed: int
    failed: int  # failures and errors
    skipped: int  # skipped, not counting expected failures
    failing: list[str] = field(default_factory=list)
    note: str = ""  # e.g. a timeout; then the counts are not meaningful
    xfailed: int = 0  # expected failures (xfail that failed)

    def summary(self) -> str:
        """pytest's words and order: "675 passed, 6 skipped, 2 xfailed"."""
        if self.note:
            return self.note
        text = f"{self.passed} passed"
        for count, word in (
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.xfailed, "xfailed"),
        ):
            if count:
                text += f", {count} {word}"
        return text


def read_junit(path: Path) -> TestResult:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    count = {
        k: sum(int(s.get(k, 0)) for s in suites)
        for k in ("tests", "failures", "errors", "skipped")
    }
    failing = [
        f"{case.get('classname')}::{case.get('name')}"
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    xfailed = sum(
        1
        for case in root.iter("testcase")
        for skip in case.findall("skipped")
        if skip.get("type") == XFAIL
    )
    failed = count["failures"] + count["errors"]
    passed = count["tests"] - failed - count["skipped"]
    return TestResult(
        passed, failed, count["skipped"] - xfailed, failing, xfailed=xfailed
    )
