"""make apply / unapply / refresh on throwaway series (tools/patchq.py),
pinned to a small aiohttp-like sdist (throwaway.fake_aiohttp)."""

from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import pytest

from tests.tools.throwaway import LOG_PATCH, Project, make_patch, version_patch
from tools.checkout_state import stale_or_local
from tools.project import ToolError, load_pin


@pytest.fixture
def project(fake_project: Project) -> Project:
    """Here `project` is the synthetic one, not conftest's real-sdist one."""
    return fake_project


@pytest.fixture
def mark(project: Project) -> str:
    """A patch marking the version of the project's pinned release."""
    return version_patch(project.version)


def sdist_files(project: Project) -> dict[str, bytes]:
    pin = load_pin(project.pin_file)
    top = f"aiohttp-{pin.version}/"
    with tarfile.open(project.root / "build" / "cache" / pin.sdist) as tar:
        return {
            m.name.removeprefix(top): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def tree_files(tree: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(tree)): p.read_bytes()
        for p in tree.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(tree).parts[:1]
    }


def test_apply_records_one_commit_per_patch_with_the_header(
    project: Project, mark: str
) -> None:
    project.write_series({"a.patch": mark, "b.patch": LOG_PATCH})
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    log = project.git("log", "--format=%an <%ae>|%aI|%s", f"v{project.version}..")
    assert log.splitlines() == [
        "Test Author <test@localhost>|2000-01-01T00:00:00+00:00|"
        "Rename the access logger",
        "Test Author <test@localhost>|2000-01-01T00:00:00+00:00|Mark the version",
    ]
    body = project.git("log", "-1", "--format=%b", "HEAD~1")
    assert body == "Why: to see it in the checkout.\n\nForwarded: not-needed\n\n"
    text = (project.checkout / "aiohttp" / "__init__.py").read_text()
    assert text.startswith(f'__version__ = "{project.version}+test"')


def test_pristine_commit_holds_every_sdist_file(
    project: Project,
) -> None:
    assert project.run("apply").returncode == 0
    tracked = set(project.git("ls-files", "-z").split("\0")) - {""}
    expected = set(sdist_files(project)) - {"vendor/llhttp/.git"}
    assert tracked == expected
    # hidden by the sdist's own vendor/llhttp/.gitignore, needed by the build
    assert "vendor/llhttp/build/c/llhttp.c" in tracked
    # a root unpack must not keep the archive's owner (git's "dubious ownership")
    owners = {(project.checkout / f).stat().st_uid for f in tracked}
    assert owners == {os.getuid()}


def test_rerun_without_changes_is_a_fast_no_op(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    head = project.git("rev-parse", "HEAD")
    start = time.monotonic()
    done = project.run("apply")
    assert time.monotonic() - start < 2
    assert "up to date" in done.stdout
    assert project.git("rev-parse", "HEAD") == head


def test_a_changed_series_rebuilds_from_the_tag(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    project.write_series({"b.patch": LOG_PATCH})
    assert project.run("apply").returncode == 0, project.run("apply").stderr
    assert project.git("log", "--format=%s", f"v{project.version}..").split("\n")[
        0
    ] == ("Rename the access logger")
    assert (
        f'"{project.version}"' in (project.checkout / "aiohttp/__init__.py").read_text()
    )


def test_rebuilt_commits_are_identical(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    head = project.git("rev-parse", "HEAD")
    project.write_series({"a.patch": mark}, series="# comment\na.patch\n")
    assert project.run("apply").returncode == 0
    assert project.git("rev-parse", "HEAD") == head


def test_wrong_hash_stops_and_leaves_the_checkout(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    before = project.snapshot()
    sha = load_pin(project.pin_file).sha256
    wrong = ("1" if sha[0] == "0" else "0") + sha[1:]
    project.pin_file.write_text(project.pin_file.read_text().replace(sha, wrong))
    project.write_series({"b.patch": LOG_PATCH})  # so apply has work to do
    done = project.run("apply")
    assert done.returncode == 1
    assert "sha256" in done.stderr and "upstream.toml" in done.stderr
    assert f"aiohttp-{project.version}.tar.gz" in done.stderr
    assert done.stderr.count("error:") == 1
    assert project.snapshot() == before


def test_hunk_that_does_not_apply_names_patch_file_and_hunk(
    project: Project, mark: str
) -> None:
    bad = LOG_PATCH.replace('getLogger("aiohttp.access")', 'getLogger("nope")')
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    before = project.snapshot()
    project.write_series({"a.patch": mark, "b.patch": bad})
    done = project.run("apply")
    assert done.returncode == 1
    assert "b.patch" in done.stderr
    assert "hunk #1 of aiohttp/log.py (@@ -1,5 +1,5 @@)" in done.stderr
    assert project.snapshot() == before
    assert not list((project.root / "build").glob(".aiohttp.*"))


def test_malformed_patch_without_header(project: Project) -> None:
    project.write_series({"a.patch": "just some text\n"})
    done = project.run("apply")
    assert done.returncode == 1
    assert "a.patch" in done.stderr and "malformed" in done.stderr
    assert not project.checkout.exists()


def test_malformed_hunk_counts(project: Project, mark: str) -> None:
    broken = mark.replace("@@ -1,3 +1,3 @@", "@@ -1,5 +1,3 @@")
    project.write_series({"a.patch": broken})
    done = project.run("apply")
    assert done.returncode == 1
    assert "a.patch: hunk #1 of aiohttp/__init__.py" in done.stderr
    assert "malformed" in done.stderr


def test_path_outside_the_tree_is_refused(project: Project) -> None:
    evil = make_patch(
        "Escape",
        """
        diff --git a/../evil.txt b/../evil.txt
        new file mode 100644
        --- /dev/null
        +++ b/../evil.txt
        @@ -0,0 +1 @@
        +pwned
        """,
    )
    project.write_series({"evil.patch": evil})
    done = project.run("apply")
    assert done.returncode == 1
    assert "evil.patch" in done.stderr and "outside the tree" in done.stderr
    assert not list(project.root.rglob("evil.txt"))


def test_series_naming_a_missing_file(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark}, series="a.patch\nmissing.patch\n")
    done = project.run("apply")
    assert done.returncode == 1
    assert "series:2" in done.stderr and "missing.patch" in done.stderr


def test_series_with_an_unsupported_strip_level(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark}, series="a.patch -p0\n")
    done = project.run("apply")
    assert done.returncode == 1
    assert "series:1" in done.stderr and "-p0" in done.stderr


def test_series_comments_blank_lines_and_p1(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark}, series="# header\n\na.patch -p1  # why\n")
    assert project.run("apply").returncode == 0


def test_dirty_checkout_is_refused_then_forced(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    edited = project.checkout / "aiohttp" / "log.py"
    edited.write_text("# my edit\n")
    project.write_series({"b.patch": LOG_PATCH})
    done = project.run("apply")
    assert done.returncode == 1
    assert "aiohttp/log.py" in done.stderr
    assert "make refresh" in done.stderr and "FORCE=1" in done.stderr
    assert edited.read_text() == "# my edit\n"
    forced = project.run("apply", "--force")
    assert forced.returncode == 0, forced.stderr
    kept = list((project.root / "build" / "aiohttp.discarded").glob("*/aiohttp/log.py"))
    assert [k.read_text() for k in kept] == ["# my edit\n"]


def test_commits_not_in_patches_are_refused(project: Project) -> None:
    assert project.run("apply").returncode == 0
    (project.checkout / "NEW.txt").write_text("new\n")
    project.git("add", "NEW.txt")
    project.git("commit", "-q", "-m", "Add a file")
    done = project.run("apply")
    assert done.returncode == 1
    assert "commits not in patches/" in done.stderr and "Add a file" in done.stderr


def test_build_artefacts_are_not_edits(project: Project) -> None:
    assert project.run("apply").returncode == 0
    (project.checkout / "build" / "lib").mkdir(parents=True)
    (
        project.checkout / "aiohttp" / "_http_parser.cpython-311-x86_64-linux-gnu.so"
    ).write_bytes(b"\0")
    (project.checkout / "aiohttp.egg-info" / "SOURCES.txt").write_text("rewritten\n")
    (project.checkout / "aiohttp" / "__pycache__").mkdir()
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout


def test_unapply_gives_the_sdist_bytes(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    (project.checkout / "build").mkdir()  # a build artefact goes too
    done = project.run("unapply")
    assert done.returncode == 0, done.stderr
    expected = sdist_files(project)
    del expected["vendor/llhttp/.git"]  # the one file git cannot track
    assert tree_files(project.checkout) == expected


def test_unapply_refuses_a_dirty_checkout(project: Project) -> None:
    assert project.run("apply").returncode == 0
    (project.checkout / "aiohttp" / "log.py").write_text("# mine\n")
    done = project.run("unapply")
    assert done.returncode == 1 and "FORCE=1" in done.stderr
    assert (project.checkout / "aiohttp" / "log.py").read_text() == "# mine\n"


def test_refresh_round_trip_is_byte_identical(project: Project, mark: str) -> None:
    project.write_series({"a.patch": mark, "b.patch": LOG_PATCH})
    assert project.run("apply").returncode == 0
    assert project.run("refresh").returncode == 0  # normalise to refresh's names
    first = {p.name: p.read_bytes() for p in (project.root / "patches").iterdir()}
    assert sorted(first) == [
        "0001-Mark-the-version.patch",
        "0002-Rename-the-access-logger.patch",
        "series",
    ]
    assert project.run("apply").returncode == 0
    assert project.run("refresh").returncode == 0
    second = {p.name: p.read_bytes() for p in (project.root / "patches").iterdir()}
    assert second == first
    text = first["0001-Mark-the-version.patch"].decode()
    assert text.startswith("From 0000000000000000000000000000000000000000 ")
    assert "Date: Sat, 1 Jan 2000 00:00:00 +0000" in text
    assert "\n-- \n" not in text  # no git version signature


def test_refresh_shows_an_edit_as_exactly_that_change(
    project: Project, mark: str
) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    assert project.run("refresh").returncode == 0
    before = (project.root / "patches" / "0001-Mark-the-version.patch").read_text()
    (project.checkout / "aiohttp" / "__init__.py").write_text(
        (project.checkout / "aiohttp" / "__init__.py")
        .read_text()
        .replace(f"{project.version}+test", f"{project.version}+edited")
    )
    project.git("commit", "-q", "-a", "--amend", "--no-edit")
    assert project.run("refresh").returncode == 0
    after = (project.root / "patches" / "0001-Mark-the-version.patch").read_text()
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b
    ]
    assert [b for _, b in changed] == [
        changed[0][1],
        f'+__version__ = "{project.version}+edited"',
    ]
    assert changed[0][1].startswith("index ")  # the blob id of the new content
    assert project.run("apply").returncode == 0
    assert "up to date" in project.run("apply").stdout


def test_refresh_refuses_uncommitted_edits(project: Project) -> None:
    assert project.run("apply").returncode == 0
    (project.checkout / "aiohttp" / "log.py").write_text("# mine\n")
    done = project.run("refresh")
    assert done.returncode == 1 and "commit" in done.stderr
    assert (project.checkout / "aiohttp" / "log.py").read_text() == "# mine\n"


def test_refresh_refuses_to_overwrite_edited_patches(
    project: Project, mark: str
) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    project.write_series({"a.patch": mark, "b.patch": LOG_PATCH})
    done = project.run("refresh")
    assert done.returncode == 1 and "make apply" in done.stderr
    assert (project.root / "patches" / "b.patch").exists()


def test_stale_or_local_says_why_a_checkout_is_not_the_series(
    project: Project, mark: str
) -> None:
    project.write_series({"a.patch": mark})
    assert project.run("apply").returncode == 0
    pin, patches = load_pin(project.pin_file), project.root / "patches"
    assert stale_or_local(project.checkout, pin, patches) == []
    project.write_series({"a.patch": mark, "b.patch": LOG_PATCH})
    assert stale_or_local(project.checkout, pin, patches) == ["stale"]
    (project.checkout / "aiohttp" / "log.py").write_text("# mine\n")
    [problem] = stale_or_local(project.checkout, pin, patches)
    assert "uncommitted edits" in problem and "aiohttp/log.py" in problem


def test_stale_or_local_needs_a_checkout(project: Project) -> None:
    with pytest.raises(ToolError, match="make apply"):
        stale_or_local(project.checkout, load_pin(project.pin_file))


@pytest.mark.parametrize(
    ("command", "kept"),
    [
        ("apply", "aiohttp.discarded"),
        ("unapply", "aiohttp.discarded"),
        ("refresh", "patches.discarded"),
    ],
)
def test_each_force_says_what_it_does_for_its_command(
    project: Project, command: str, kept: str
) -> None:
    done = project.run(command, "--help")
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split()).replace("- ", "-")
    force = text[text.index("--force") :]
    assert f"build/{kept}/" in force
    # refresh exports commits: its --force does not discard uncommitted work
    assert ("Uncommitted edits still stop it" in force) == (command == "refresh")


def test_a_moved_hunk_is_noted_with_its_offset(small_project: Project) -> None:
    moved = make_patch(
        "Change line four",
        """
        diff --git a/lines.txt b/lines.txt
        --- a/lines.txt
        +++ b/lines.txt
        @@ -6,7 +6,7 @@
         line 1
         line 2
         line 3
        -line 4
        +changed 4
         line 5
         line 6
         line 7
        """,
    )
    small_project.write_series({"a.patch": moved})
    done = small_project.run("apply")
    assert done.returncode == 0, done.stderr
    assert (
        "note: a.patch: hunk #1 of lines.txt (@@ -6,7 +6,7 @@): (offset -5 lines).; "
        "`make refresh` will update its line numbers"
    ) in done.stdout
