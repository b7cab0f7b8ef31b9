"""The race table: the behaviour tests about slots, waiters, traces and
limits, run against each build, and which patches each release has.

    python -m tools.races [--builds 3.10.10,3.14.5] [--no-record]

A build is aiohttp compiled with its C extensions from a sha256-pinned
sdist, unpatched or with a series applied at zero fuzz:

  - the main pin (upstream.toml), unpatched, and with patches/series;
  - each release that matrix.toml's [races] lists, unpatched;
  - the forward series' pin (forward/upstream.toml) with forward/patches.

Each build runs tests/patch (all but the check of the version number) in a
venv holding the dependencies of its aiohttp line, pinned in
requirements/behaviour.txt (3.10) or behaviour-newer.txt (3.11 and later).
A row is a test function, a cell says how many of its cases failed.

A release *has* a patch when, unpatched, it passes every case of every test
marked proves_patch(<that patch's number>): that, and not a DEP-3 header,
is what `make matrix` advises dropping a patch on. Likewise for the forward
series and proves_forward(<number>): a release that has a forward patch's
fix is one where that forward patch can go.

Writes build/races/races.md and races.json and records the table in
docs/measurements.md. Exit status 1 when the patched main pin fails a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools import sdist
from tools.builds import (
    PIN_ONLY_TESTS,
    build_key,
    install_build,
    requirements_venv,
    run_behaviour_tests,
)
from tools.cli import ToolError, picked, reports_errors
from tools.compat import tomllib
from tools.measurements import invocation, record
from tools.patches import Patch, apply_patch, read_patch, read_series
from tools.project import (
    BUILD,
    MATRIX_FILE,
    REQUIREMENTS,
    ROOT,
    Pin,
    clean_env,
    load_pin,
    matrix_pins,
    series_patches,
    series_pin_file,
    venv_python,
    version_key,
)
from tools.race_results import (
    MARKER_KEY,
    OUT,
    PASSED,
    RESULTS,
    Outcome,
    render,
    to_json,
)

# the main series' pins for its dependency set, whichever series is selected
CONSTRAINTS = REQUIREMENTS / "constraints.txt"
BEHAVIOUR = REQUIREMENTS / "behaviour.txt"
BEHAVIOUR_NEWER = REQUIREMENTS / "behaviour-newer.txt"
RUN_TIMEOUT = 900  # seconds for one build's tests; each test bounds its waits
# 3.11 brought propcache and newer yarl and aiosignal than 3.10 accepts.
NEWER_LINE = (3, 11)


class RacesError(ToolError):
    """A problem with matrix.toml's [races] or the arguments."""


@dataclass(frozen=True)
class Build:
    """One column: a pinned sdist, unpatched or with a series."""

    name: str
    pin: Pin
    patches: tuple[Patch, ...] = ()
    series: str = ""  # the series applied ("" for the unpatched release)

    @property
    def requirements(self) -> Path:
        release = version_key(self.pin.version)[0]  # (3, 10, 11)
        newer = release[:2] >= NEWER_LINE
        return BEHAVIOUR_NEWER if newer else BEHAVIOUR


# ---------------------------------------------------------------- builds


def race_releases(path: Path = MATRIX_FILE) -> list[str]:
    """matrix.toml's [races] releases: the unpatched releases to compare."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("races", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RacesError(f"{path}: cannot read [races] ({exc})") from exc
    releases = table.get("releases", [])
    if not isinstance(releases, list) or not all(isinstance(r, str) for r in releases):
        raise RacesError(f'{path}: [races] releases must be a list of "x.y.z"')
    return releases


def patches_of(series: str) -> tuple[Patch, ...]:
    return tuple(read_patch(e) for e in read_series(series_patches(series)))


def builds() -> list[Build]:
    """Every column, whichever series the environment selects."""
    main = load_pin(series_pin_file("main"))
    pins = {p.version: p for p in matrix_pins(main=main)}
    releases = race_releases()
    unknown = [v for v in releases if v not in pins]
    if unknown:
        raise RacesError(
            f"{MATRIX_FILE}: [races] lists {', '.join(unknown)}, which [sdists] "
            "does not pin; add its sha256 there first."
        )
    forward = load_pin(series_pin_file("forward"))
    out = [
        Build(main.version, main),
        Build(f"{main.version} + series", main, patches_of("main"), "main"),
    ]
    out += [Build(v, pins[v]) for v in releases if v != main.version]
    out.append(
        Build(
            f"{forward.version} + forward",
            forward,
            patches_of("forward"),
            "forward",
        )
    )
    return out


def select(all_builds: list[Build], names: str | None) -> list[Build]:
    chosen, unknown = picked(names, {b.name: b for b in all_builds})
    if unknown:
        raise RacesError(
            f"no build named {', '.join(map(repr, unknown))}; "
            f"builds: {', '.join(b.name for b in all_builds)}"
        )
    return chosen


def ensure_venv(requirements: Path) -> Path:
    """The venv for one dependency set. behaviour.txt goes with
    constraints.txt, as everywhere; the newer set pins its own setuptools,
    and each build's version is checked instead (check_installed)."""
    constraints = CONSTRAINTS if requirements == BEHAVIOUR else None
    return requirements_venv(
        OUT / "venvs" / requirements.stem, requirements, constraints
    )


def check_installed(build: Build, venv: Path) -> None:
    """The venv imports the release under test and no other (that it is
    the compiled one, test_c_parser_is_the_one_in_use shows in each column)."""
    done = subprocess.run(
        [str(venv_python(venv)), "-c", "import aiohttp; print(aiohttp.__version__)"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=OUT,
    )
    if done.stdout.strip() != build.pin.version:
        raise RacesError(
            f"{venv}: imports aiohttp {done.stdout.strip() or '(none)'} "
            f"{done.stderr.strip()[-200:]}, not {build.pin.version}; "
            f"remove {venv} and run again"
        )


def install(build: Build, venv: Path) -> None:
    """Compile the build once (the wheel is kept by its inputs), install it."""
    label = build.series or "pristine"
    wheel_dir = (
        OUT
        / "wheels"
        / f"{build.pin.version}+{label}-{build_key(build.pin, list(build.patches))}"
    )
    if any(wheel_dir.glob("*.whl")):
        install_build(venv, ROOT, wheel_dir)  # the cached wheel; no tree needed
        return
    archive = sdist.fetch(build.pin)  # verified before anything is built
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="races-") as tmp:
        tree = Path(tmp) / "src"
        sdist.unpack(archive, tree)
        for patch in build.patches:
            apply_patch(tree, patch, patch.name, allow_fuzz=False)
        install_build(venv, tree, wheel_dir)


def run_tests(build: Build, venv: Path) -> Outcome:
    OUT.mkdir(parents=True, exist_ok=True)
    slug = build.name.replace(" ", "").replace("+", "-")
    result = OUT / f"outcomes-{slug}.json"
    log = OUT / f"pytest-{slug}.log"
    result.unlink(missing_ok=True)
    args = [f"--record-outcomes={result}"]
    for test in PIN_ONLY_TESTS:
        args += ["--deselect", test]
    if not run_behaviour_tests(venv, args, log, RUN_TIMEOUT):
        return Outcome(build.name, note=f"timed out after {RUN_TIMEOUT} s; see {log}")
    if not result.exists():
        return Outcome(build.name, note=f"pytest did not run; see {log}")
    return Outcome(build.name, json.loads(result.read_text(encoding="utf-8")))


# ---------------------------------------------------------------- main


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.races",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--builds", help="comma-separated build names (default: all)")
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not write the table into docs/measurements.md",
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    chosen = select(builds(), args.builds)
    series = {
        name: [e.name for e in read_series(series_patches(name))] for name in MARKER_KEY
    }
    outcomes = []
    for i, build in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {build.name}: building…", flush=True)
        venv = ensure_venv(build.requirements)
        install(build, venv)
        check_installed(build, venv)
        print(f"[{i}/{len(chosen)}] {build.name}: testing…", flush=True)
        outcome = run_tests(build, venv)
        failed = sum(t["outcome"] != PASSED for t in outcome.tests.values())
        print(
            f"[{i}/{len(chosen)}] {build.name}: "
            f"{outcome.note or f'{failed} of {len(outcome.tests)} cases failed'}",
            flush=True,
        )
        outcomes.append(outcome)
    report = render(outcomes, series)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "races.md").write_text(report, encoding="utf-8")
    RESULTS.write_text(json.dumps(to_json(outcomes, series), indent=1) + "\n")
    print(report)
    print(f"wrote {OUT / 'races.md'} and races.json ({time.monotonic() - start:.0f} s)")
    if not args.no_record and not args.builds:
        record(
            "races",
            report,
            invocation("tools.races", argv),
            title="The race table: slots, waiters, traces and limits (make races)",
        )
    patched = [o for o in outcomes if " + " in o.build]  # series and forward
    bad = [
        o
        for o in patched
        if o.note or any(t["outcome"] != PASSED for t in o.tests.values())
    ]
    for o in bad:
        print(f"error: {o.build} fails its behaviour tests", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
