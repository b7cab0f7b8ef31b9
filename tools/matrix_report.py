"""The matrix's results as values, and the reports written from them.

A Row per release; hunk outcomes stay tools.patches.HunkResult values and
test counts junit.TestResult values until a report renders them:
build/matrix/matrix.md for people and matrix.json for tools.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools import dep3
from tools.builds import BEHAVIOUR_TESTS, PIN_ONLY_TESTS
from tools.junit import TestResult
from tools.patches import HunkResult

ZERO_FUZZ, OFFSETS, FUZZ, NO = "zero fuzz", "offsets", "fuzz", "no"
UPSTREAM, REFUSED = "already upstream", "n/a"


@dataclass(frozen=True)
class PatchHunk:
    """A hunk of one patch that moved, needed fuzz or failed."""

    patch: str
    hunk: HunkResult

    def note(self) -> str:
        return f"{self.patch}: {self.hunk.short()}"


@dataclass
class Row:
    version: str
    sha256: str  # "verified", or why not
    applies: str  # ZERO_FUZZ, OFFSETS, FUZZ, NO, UPSTREAM or REFUSED
    details: list[str] = field(default_factory=list)  # notes other than hunks
    hunks: list[PatchHunk] = field(default_factory=list)
    test_result: TestResult | None = None
    main: bool = False  # the release upstream.toml pins
    # the patches this release, unpatched, has by measurement (make races);
    # None where it was not measured
    drop: list[str] | None = None

    @property
    def tests(self) -> str:
        return self.test_result.summary() if self.test_result else "n/a"

    @property
    def failing(self) -> list[str]:
        """One line per failing test, from the junit values."""
        return [
            f"failed: {t}" for t in (self.test_result or TestResult(0, 0, 0)).failing
        ]

    @property
    def notes(self) -> list[str]:
        """Hunks first, then the other details, then failing tests; one line each."""
        return [h.note() for h in self.hunks] + self.details + self.failing

    @property
    def ok(self) -> bool:
        """Good enough for the main pin: applies cleanly and tests pass."""
        if self.sha256 != "verified" or self.applies not in (ZERO_FUZZ, OFFSETS):
            return False
        result = self.test_result
        return result is None or (not result.note and not result.failed)


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _grouped(row: Row) -> list[str]:
    """One line per patch: "a.patch: note; note" instead of repeating it."""
    lines: list[str] = []
    last = None
    for hunk in row.hunks:
        if hunk.patch == last:
            lines[-1] += f"; {hunk.hunk.short()}"
        else:
            lines.append(hunk.note())
        last = hunk.patch
    return lines + row.details + row.failing


def render_drops(
    rows: list[Row], series: list[str], upstream: dict[str, dep3.AppliedUpstream]
) -> list[str]:
    """Which patches to drop at which release: those the release, unpatched,
    passes every test of (make races), beside what DEP-3 claims."""
    lines = [
        "",
        "## Patches to drop at each release",
        "",
        "A release *has* a patch when, unpatched, it passes every behaviour "
        "test that proves the patch (`make races`); only then is the patch "
        "dropped there. A release `make races` did not measure gets no advice.",
        "",
        "| release | drop (measured) | keep | DEP-3 Applied-Upstream disagrees |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        if row.main:
            continue
        claimed = [
            name
            for name in series
            if (found := upstream.get(name)) is not None
            and dep3.dropped_at_release(found, row.version)
        ]
        if row.drop is None:
            cells = ["not measured", "-", "-"]
        else:
            keep = [n for n in series if n not in row.drop]
            disagree = [n for n in claimed if n not in row.drop]
            cells = [
                ", ".join(f"`{n}`" for n in names) or "-"
                for names in (row.drop, keep, disagree)
            ]
        lines.append(f"| {row.version} | " + " | ".join(cells) + " |")
    if upstream:
        lines += ["", "| patch | DEP-3 Applied-Upstream |", "| --- | --- |"]
        for name in series:
            if name in upstream:
                lines.append(f"| `{name}` | {_cell(str(upstream[name]))} |")
    return lines + [""]


def render_markdown(
    rows: list[Row],
    series: list[str],
    python: str,
    upstream: dict[str, dep3.AppliedUpstream] | None = None,
) -> str:
    names = ", ".join(f"`{n}`" for n in series) or "(empty series)"
    lines = [
        "# The series against aiohttp releases",
        "",
        f"Series: {names}. Behaviour tests: `{BEHAVIOUR_TESTS}` on Python {python}, "
        "against each release with the series applied.",
        "",
        "| version | sha256 | applies | details | behaviour tests |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        version = f"**{row.version}** (main pin)" if row.main else row.version
        details = "<br>".join(_cell(d) for d in _grouped(row)) or "-"
        cells = [version, row.sha256, row.applies, details, _cell(row.tests)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "applies: *zero fuzz* every hunk at its line; *offsets* every hunk "
        "exact but moved; *fuzz* only with context lines ignored (fuzz 2); "
        "*no* a hunk fails even with fuzz; *already upstream* the release "
        "applies the connect timeout in BaseConnector.connect itself.",
        f"For releases other than the main pin, `{PIN_ONLY_TESTS[0]}` is "
        "deselected: it checks the version number.",
    ]
    lines += render_drops(rows, series, upstream or {})
    return "\n".join(lines)


def render_json(
    rows: list[Row],
    series: list[str],
    python: str,
    upstream: dict[str, dep3.AppliedUpstream] | None = None,
) -> str:
    data = {
        "python": python,
        "series": series,
        "applied_upstream": {
            name: asdict(found) for name, found in (upstream or {}).items()
        },
        "rows": [
            {k: v for k, v in asdict(row).items() if k != "test_result"}
            | {
                "tests": row.tests,
                "test_result": asdict(row.test_result) if row.test_result else None,
            }
            for row in rows
        ],
    }
    return json.dumps(data, indent=1) + "\n"


def write_reports(
    rows: list[Row],
    series: list[str],
    out: Path,
    upstream: dict[str, dep3.AppliedUpstream] | None = None,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    python = platform.python_version()
    (out / "matrix.md").write_text(render_markdown(rows, series, python, upstream))
    (out / "matrix.json").write_text(render_json(rows, series, python, upstream))
