"""The race table from recorded outcomes, and what each release has
(synthetic outcomes; `make races` builds and runs the real ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tools import measurements, race_results, races
from tools.project import Pin

SERIES = {"main": ["0001-move.patch", "0002-wake.patch"], "forward": ["0001-f.patch"]}


def case(
    function: str, outcome: str, proves: list[str], forward: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "function": f"test_x.py::{function}",
        "scenario": f"what {function} shows",
        "proves": proves,
        "forward": list(forward),
        "outcome": outcome,
    }


def outcome(build: str, *cases: dict[str, Any], note: str = "") -> race_results.Outcome:
    return race_results.Outcome(
        build, {f"{t['function']}[{i}]": t for i, t in enumerate(cases)}, note
    )


PRISTINE = outcome(
    "3.10.10",
    case("test_move", "failed", ["0001"]),
    case("test_wake", "failed", ["0002"]),
    case("test_wake", "failed", ["0002"]),
    case("test_order", "passed", [], ("0001",)),
)
PATCHED = outcome(
    "3.10.10 + series",
    case("test_move", "passed", ["0001"]),
    case("test_wake", "passed", ["0002"]),
    case("test_wake", "passed", ["0002"]),
    case("test_order", "passed", []),
)
NEWER = outcome(
    "3.14.5",
    case("test_move", "passed", ["0001"]),
    case("test_wake", "passed", ["0002"]),
    case("test_wake", "failed", ["0002"], ("0001",)),  # one case of two fails
    case("test_order", "failed", [], ("0001",)),
)


def test_a_release_has_a_patch_only_when_every_proving_case_passes() -> None:
    assert race_results.has_patches(PRISTINE, ["0001", "0002"]) == []
    assert race_results.has_patches(PATCHED, ["0001", "0002"]) == ["0001", "0002"]
    assert race_results.has_patches(NEWER, ["0001", "0002"]) == ["0001"]
    # a patch no test proves is never had
    assert race_results.has_patches(PATCHED, ["0003"]) == []


def test_table_counts_failing_cases_per_test_function() -> None:
    text = race_results.render([PRISTINE, PATCHED, NEWER], SERIES)
    rows = {line.split(" | ")[0]: line for line in text.splitlines()}
    assert rows["| `test_wake`"].endswith(
        "| 0002 | 0001 | **FAIL 2/2** | pass | **FAIL 1/2** |"
    )
    assert rows["| `test_order`"].endswith("| - | 0001 | pass | pass | **FAIL 1/1** |")
    main, forward = text.split(race_results.HAS_TITLE)[1].split(
        race_results.FORWARD_HAS_TITLE
    )
    assert "| 3.10.10 | - | 0001, 0002 |" in main
    assert "| 3.14.5 | 0001 | 0002 |" in main
    assert "| 3.10.10 + series |" not in main + forward
    # the forward patch 0001's only proving test still fails on 3.14.5
    assert "| 3.14.5 | - | 0001 |" in forward


def test_a_build_without_results_is_no_release_that_has_anything() -> None:
    broken = outcome("3.12.15", note="timed out after 900 s")
    text = race_results.render([PATCHED, broken], SERIES)
    assert "- 3.12.15: timed out after 900 s" in text
    data = race_results.to_json([PATCHED, broken], SERIES)
    assert race_results.release_has(data, "3.12.15") is None
    assert race_results.release_has(data, "3.13.5") is None  # not raced at all
    assert race_results.release_has(
        race_results.to_json([NEWER], SERIES), "3.14.5"
    ) == ["0001"]


def test_builds_pick_their_pinned_dependencies() -> None:
    pin = Pin("aiohttp", "3.10.11", "aiohttp-3.10.11.tar.gz", "0" * 64)
    assert races.Build("3.10.11", pin).requirements.name == "behaviour.txt"
    newer = Pin("aiohttp", "3.11.18", "aiohttp-3.11.18.tar.gz", "0" * 64)
    assert races.Build("3.11.18", newer).requirements.name == "behaviour-newer.txt"


def test_race_releases_are_read_and_checked(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.toml"
    matrix.write_text('[races]\nreleases = ["3.10.11", "3.14.5"]\n')
    assert races.race_releases(matrix) == ["3.10.11", "3.14.5"]
    matrix.write_text("[races]\nreleases = 3\n")
    with pytest.raises(races.RacesError, match="list of"):
        races.race_releases(matrix)


def test_unknown_build_names_are_refused_with_the_known_ones() -> None:
    pin = Pin("aiohttp", "3.10.10", "aiohttp-3.10.10.tar.gz", "0" * 64)
    known = [races.Build("3.10.10", pin), races.Build("3.10.10 + series", pin)]
    assert races.select(known, "3.10.10") == known[:1]
    with pytest.raises(races.RacesError, match="builds: 3.10.10, 3.10.10 \\+ series"):
        races.select(known, "3.9.0")


def test_what_releases_have_is_read_back_from_the_recorded_table() -> None:
    body = race_results.render([PRISTINE, PATCHED, NEWER], SERIES)
    document = measurements.replace_section(
        "", "races", measurements.render_section("races", body, "make races", "Races")
    )
    assert race_results.recorded_has(document) == {"3.10.10": [], "3.14.5": ["0001"]}
    forward = race_results.recorded_has(document, race_results.FORWARD_HAS_TITLE)
    assert forward == {"3.10.10": ["0001"], "3.14.5": []}
    assert race_results.recorded_has("# Measurements\n") == {}
