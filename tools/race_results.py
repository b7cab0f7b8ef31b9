"""What `make races` measured, as values and as reports.

An Outcome per build: each test's outcome and the patches it proves
(recorded by tests/patch/conftest.py's --record-outcomes). From those:
the race table (build/races/races.md, a section of docs/measurements.md),
build/races/races.json, and which patches of each series a release, as
upstream made it, already has. tools/races.py builds and runs; tools/matrix.py
reads races.json here for its drop advice, and the tests of the real series
read the recorded table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools import measurements
from tools.builds import BEHAVIOUR_TESTS
from tools.project import BUILD

OUT = BUILD / "races"
RESULTS = OUT / "races.json"
PASSED = "passed"
HAS_TITLE = "### What each unpatched release already has"
FORWARD_HAS_TITLE = "### What each unpatched release has of the forward series"


@dataclass
class Outcome:
    """What one build's run of the tests gave: node id -> test record."""

    build: str
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""  # why there are no results, if there are none


# the marker a series' proving tests carry, as recorded per test
MARKER_KEY = {"main": "proves", "forward": "forward"}


def functions(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    """Test function -> scenario and the patches it proves in each series."""
    rows: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        for test in outcome.tests.values():
            row = rows.setdefault(
                test["function"],
                {"scenario": test["scenario"], "proves": set(), "forward": set()},
            )
            for key in MARKER_KEY.values():
                row[key].update(test.get(key, []))
    return rows


def cell(outcome: Outcome, function: str) -> tuple[int, int]:
    """(failed, run) cases of a test function in one build."""
    cases = [t for t in outcome.tests.values() if t["function"] == function]
    return sum(t["outcome"] != PASSED for t in cases), len(cases)


def has_patches(outcome: Outcome, numbers: list[str], key: str = "proves") -> list[str]:
    """The patch numbers whose every proving test passes in this build."""
    found = []
    for number in numbers:
        proving = [t for t in outcome.tests.values() if number in t.get(key, [])]
        if proving and all(t["outcome"] == PASSED for t in proving):
            found.append(number)
    return found


def patch_number(name: str) -> str:
    return name.split("-", 1)[0]


def unpatched(outcomes: list[Outcome]) -> list[Outcome]:
    """The columns of releases as upstream made them, with results."""
    return [o for o in outcomes if " + " not in o.build and not o.note]


def has_table(
    title: str, intro: str, outcomes: list[Outcome], names: list[str], key: str
) -> list[str]:
    numbers = [patch_number(n) for n in names]
    lines = [
        "",
        title,
        "",
        intro,
        "",
        "| release | has | lacks |",
        "| --- | --- | --- |",
    ]
    for outcome in unpatched(outcomes):
        has = has_patches(outcome, numbers, key)
        lacks = [n for n in numbers if n not in has]
        lines.append(
            f"| {outcome.build} | {', '.join(has) or '-'} | {', '.join(lacks) or '-'} |"
        )
    return lines


def render(outcomes: list[Outcome], series: dict[str, list[str]]) -> str:
    rows = functions(outcomes)
    names = [o.build for o in outcomes]
    lines = [
        "### The race table",
        "",
        f"Behaviour tests (`{BEHAVIOUR_TESTS}`) against each build; a cell is "
        "*pass* or the number of failing cases out of those run. *proves* names the "
        "patch of the series whose fix the test shows (it fails on the "
        "pristine main pin), *forward* the forward patch (it fails on the "
        "release the forward series is pinned to).",
        "",
        "| test | scenario | proves | forward | " + " | ".join(names) + " |",
        "| --- | --- | --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for function, row in rows.items():
        cells = []
        for outcome in outcomes:
            failed, run = cell(outcome, function)
            if outcome.note or not run:
                cells.append("n/a")
            else:
                cells.append("pass" if not failed else f"**FAIL {failed}/{run}**")
        proves, forward = (
            ", ".join(sorted(row[k])) or "-" for k in MARKER_KEY.values()
        )
        scenario = row["scenario"].replace("|", "\\|")
        test = function.split("::", 1)[1]
        lines.append(
            f"| `{test}` | {scenario} | {proves} | {forward} | "
            + " | ".join(cells)
            + " |"
        )
    notes = [f"- {o.build}: {o.note}" for o in outcomes if o.note]
    if notes:
        lines += ["", *notes]
    lines += has_table(
        HAS_TITLE,
        "A release has a patch when it passes every case of every test that "
        "proves the patch; only then does `make matrix` advise dropping it.",
        outcomes,
        series.get("main", []),
        "proves",
    )
    lines += has_table(
        FORWARD_HAS_TITLE,
        "The same for the forward series: a release that has a forward "
        "patch's fix no longer needs that patch sent.",
        outcomes,
        series.get("forward", []),
        "forward",
    )
    return "\n".join(lines) + "\n"


def to_json(outcomes: list[Outcome], series: dict[str, list[str]]) -> dict[str, Any]:
    numbers = {name: [patch_number(n) for n in names] for name, names in series.items()}
    return {
        "series": series,
        "builds": {
            o.build: {
                "note": o.note,
                "tests": o.tests,
                "has": [] if o.note else has_patches(o, numbers.get("main", [])),
                "has_forward": []
                if o.note
                else has_patches(o, numbers.get("forward", []), "forward"),
            }
            for o in outcomes
        },
    }


def release_has(results: dict[str, Any], release: str) -> list[str] | None:
    """The patch numbers an unpatched release has, per races.json; None if
    the release was not raced (or its run gave no results)."""
    build = results.get("builds", {}).get(release)
    if build is None or build.get("note"):
        return None
    return list(build.get("has", []))


def recorded_has(document: str, title: str = HAS_TITLE) -> dict[str, list[str]]:
    """Release -> patch numbers it has, from the table under `title` of the
    race table as recorded in docs/measurements.md ({} when there is none)."""
    text = measurements.section(document, "races") or ""
    if title not in text:
        return {}
    has = {}
    for line in text.split(title, 1)[1].splitlines():
        if line.startswith("#"):
            break  # the next table
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("release", "---"):
            has[cells[0]] = [] if cells[1] == "-" else cells[1].split(", ")
    return has


def load_results(path: Path = RESULTS) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
