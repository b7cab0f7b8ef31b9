"""Counts from a pytest junit XML file (the matrix and the PR cover letter)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TestResult:
    passed: int
    failed: int  # failures and errors
    skipped: int
    failing: list[str] = field(default_factory=list)
    note: str = ""  # e.g. a timeout; then the counts are not meaningful

    def summary(self) -> str:
        if self.note:
            return self.note
        text = f"{self.passed} passed"
        if self.failed:
            text += f", {self.failed} failed"
        if self.skipped:
            text += f", {self.skipped} skipped"
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
    failed = count["failures"] + count["errors"]
    passed = count["tests"] - failed - count["skipped"]
    return TestResult(passed, failed, count["skipped"], failing)
