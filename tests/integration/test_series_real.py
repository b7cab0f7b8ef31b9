"""The real series in patches/: applies with quilt and git am as with make
apply, round-trips through refresh, and carries its DEP-3 facts. Needs the
real sdist: run by `make test` after `make apply`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tools.gitrepo import files_of
from tests.tools.throwaway import Project, real_pin_project, real_sdist
from tools import dep3, race_results, sdist
from tools.patches import read_patch, read_series
from tools.project import MAIN, MEASUREMENTS, PATCHES, load_pin, series_patches

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@localhost",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@localhost",
}


@pytest.fixture
def real_project(tmp_path: Path) -> Project:
    project = real_pin_project(tmp_path / "proj")
    shutil.rmtree(project.root / "patches")
    shutil.copytree(PATCHES, project.root / "patches")
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    return project


@pytest.fixture
def pristine_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "pristine"
    sdist.unpack(real_sdist(), tree)
    (tree / "vendor/llhttp/.git").unlink()
    return tree


def test_series_lists_every_patch_file() -> None:
    listed = {e.name for e in read_series(PATCHES)}
    on_disk = {p.name for p in PATCHES.glob("*.patch")}
    assert listed == on_disk
    assert listed, "the series is empty"


def test_every_patch_carries_dep3_facts() -> None:
    for entry in read_series(PATCHES):
        message = read_patch(entry).message
        fields = dep3.fields(message)
        assert fields.get("Last-Update"), entry.name
        # written for upstream: sent (yes) or not yet (no), never vendor-only
        assert dep3.forwarded(message) in ("yes", "no"), entry.name
        for bug in fields.get("Bug", []):
            assert bug.startswith("https://github.com/aio-libs/aiohttp/issues/")
        upstream = dep3.applied_upstream(message)
        if upstream is not None:  # a release and upstream's commit on its branch
            assert upstream.release, entry.name
            assert [r.split("/commit/")[0] for r in upstream.references] == [
                "https://github.com/aio-libs/aiohttp"
            ], entry.name


@pytest.mark.skipif(not MAIN, reason="the forward series is where these point")
def test_a_fix_upstream_lacks_names_the_forward_patch_that_carries_it() -> None:
    """Forwarded: no, carried to <release> by forward/patches/<patch> ...:
    every forward patch named exists and is in the forward series."""
    forward = {e.name for e in read_series(series_patches("forward"))}
    for entry in read_series(PATCHES):
        message = read_patch(entry).message
        if dep3.forwarded(message) != "no":
            continue
        [value] = dep3.fields(message)["Forwarded"]
        named = re.findall(r"forward/patches/(\S+\.patch)", value)
        assert named, f"{entry.name}: Forwarded: no names no forward patch"
        assert set(named) <= forward, entry.name


def test_applied_upstream_names_only_what_the_race_table_measured() -> None:
    """A patch names a release in Applied-Upstream only if that release,
    unpatched, passed every test proving the patch in the recorded race
    table, and names one if any raced release did."""
    title = race_results.HAS_TITLE if MAIN else race_results.FORWARD_HAS_TITLE
    has = race_results.recorded_has(MEASUREMENTS.read_text(encoding="utf-8"), title)
    assert has, "docs/measurements.md has no race table: run make races"
    for entry in read_series(PATCHES):
        number = race_results.patch_number(entry.name)
        having = [release for release, numbers in has.items() if number in numbers]
        upstream = dep3.applied_upstream(read_patch(entry).message)
        if upstream is None:
            assert not having, f"{entry.name}: {having} have it; say so"
        else:
            assert upstream.release in having, entry.name


def test_quilt_push_applies_the_series_without_fuzz(
    real_project: Project, pristine_tree: Path
) -> None:
    done = subprocess.run(
        ["quilt", "push", "-a", "--fuzz=0"],
        cwd=pristine_tree,
        env={**os.environ, "QUILT_PATCHES": str(PATCHES)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fuzz" not in done.stdout.lower() and "offset" not in done.stdout
    assert files_of(pristine_tree) == files_of(real_project.checkout)


def test_git_am_applies_the_series(real_project: Project, pristine_tree: Path) -> None:
    def git(*args: str, **kw: object) -> str:
        return subprocess.run(
            ["git", "-C", str(pristine_tree), *args],
            check=True,
            capture_output=True,
            text=True,
            env=GIT_ENV,
            **kw,
        ).stdout  # type: ignore[call-overload]

    git("init", "-q")
    git("add", "-A", "-f")
    git("commit", "-q", "-m", "pristine")
    mails = [str(e.path) for e in read_series(PATCHES)]
    git("am", "--quiet", *mails)
    assert files_of(pristine_tree) == files_of(real_project.checkout)
    fmt = "--format=%an <%ae> %aI %s"
    assert git("log", fmt, f"HEAD~{len(mails)}..") == real_project.git(
        "log", fmt, f"{load_pin().tag}.."
    )


def test_real_series_round_trips_byte_for_byte(real_project: Project) -> None:
    done = real_project.run("refresh")
    assert done.returncode == 0, done.stderr
    assert files_of(real_project.root / "patches") == files_of(PATCHES)
