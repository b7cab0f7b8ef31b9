"""What refresh writes, apply turns back into the same commits (issue 19).

Item 8: messages and authors survive patches/ exactly, or refresh refuses
the commit by name. Item 13: a mode change or an empty file is a patch
like any other; an empty message is refused naming the commit.
"""

from __future__ import annotations

import shutil

import pytest

from tests.tools.throwaway import Project, line_patch, one_error_line

P1 = line_patch("Change line four", 4, "changed 4")
LOG = "%an%x00%ae%x00%ad%x00%B%x00%T"


@pytest.fixture
def queue(small_project: Project) -> Project:
    small_project.write_series({"0001-Change-line-four.patch": P1})
    for command in ("apply", "refresh"):
        done = small_project.run(command)
        assert done.returncode == 0, done.stderr
    return small_project


def commit_change(project: Project, message: str, *author: str) -> None:
    lines = project.checkout / "lines.txt"
    lines.write_text(lines.read_text().replace("line 16", "changed 16"))
    args = [f"--author={author[0]}"] if author else []
    project.git("commit", "-q", "-a", "--cleanup=verbatim", *args, "-m", message)


def history(project: Project) -> list[str]:
    return project.git("log", f"--format={LOG}", "--date=raw", "v1.0..").split("\n\0")


def applies_back(project: Project) -> None:
    """A fresh apply of what refresh wrote gives the same commits."""
    before = history(project)
    shutil.rmtree(project.checkout)
    done = project.run("apply")
    assert done.returncode == 0, done.stderr
    assert history(project) == before


MESSAGES = {
    "a Re: subject": ("Re: change line sixteen\n", "Re:"),
    "a [PATCH v2] subject": ("[PATCH v2] Change line sixteen\n", "[...]"),
    "a --- line in the body": (
        "Change line sixteen\n\nBefore.\n---\nAfter the line.\n",
        "'---'",
    ),
    "an in-body From:": (
        "Change line sixteen\n\nFrom: Mallory <m@example.org>\n\nWhy.\n",
        "'From: Mallory",
    ),
    "a subject over two lines": ("Change line\nsixteen\n\nWhy.\n", "line 1"),
}


def test_an_author_that_would_not_survive_is_refused_by_name(queue: Project) -> None:
    before = queue.patch_files()
    commit_change(queue, "Change line sixteen\n", 'Zoë "Q" Lee <zoe@example.org>')
    done = queue.run("refresh")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert "Change line sixteen" in line and "would come back as 'Zoë Q Lee" in line
    assert queue.patch_files() == before


@pytest.mark.parametrize(("message", "said"), MESSAGES.values(), ids=MESSAGES)
def test_a_message_that_would_not_survive_is_refused_by_name(
    queue: Project, message: str, said: str
) -> None:
    before = queue.patch_files()
    commit_change(queue, message)
    commit = queue.git("rev-parse", "--short", "HEAD").strip()
    done = queue.run("refresh")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert f"commit {commit}" in line and said in line and "reword" in line
    assert queue.patch_files() == before


def test_messages_and_authors_that_survive_are_kept_exactly(queue: Project) -> None:
    message = (
        "Keep [brackets] and Re: inside the subject\n"
        "\n"
        "A body with --- inside a line, a From: inside a line,\n"
        "From the start of a line, and trailing fields.\n"
        "\n"
        "Signed-off-by: Zoë Ünïcode <zoe+series@example.org>\n"
    )
    commit_change(queue, message, "Zoë Ünïcode <zoe+series@example.org>")
    done = queue.run("refresh")
    assert done.returncode == 0, done.stderr
    applies_back(queue)
    assert queue.git("log", "-1", "--format=%B").rstrip("\n") == message.rstrip("\n")


def test_a_mode_change_and_an_empty_file_are_patches(queue: Project) -> None:
    lines = queue.checkout / "lines.txt"
    lines.chmod(0o755)
    queue.git("commit", "-q", "-a", "-m", "Make lines.txt executable")
    (queue.checkout / "empty.txt").write_text("")
    queue.git("add", "empty.txt")
    queue.git("commit", "-q", "-m", "Add an empty file")
    done = queue.run("refresh")
    assert done.returncode == 0, done.stderr
    patches = queue.root / "patches"
    assert (
        "new mode 100755"
        in (patches / "0002-Make-lines.txt-executable.patch").read_text()
    )
    assert (
        "new file mode 100644" in (patches / "0003-Add-an-empty-file.patch").read_text()
    )
    applies_back(queue)
    assert lines.stat().st_mode & 0o111


def test_an_empty_message_is_refused_naming_the_commit(queue: Project) -> None:
    before = queue.patch_files()
    lines = queue.checkout / "lines.txt"
    lines.write_text(lines.read_text().replace("line 16", "changed 16"))
    queue.git("commit", "-q", "-a", "--allow-empty-message", "-m", "")
    commit = queue.git("rev-parse", "--short", "HEAD").strip()
    done = queue.run("refresh")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert f"commit {commit}" in line and "empty message" in line
    assert "tmp" not in line.replace(str(queue.root), "")
    assert "make refresh" not in line.split("empty message")[1].split(";")[0]
    assert queue.patch_files() == before


def test_a_symlink_is_refused_naming_the_commit(queue: Project) -> None:
    before = queue.patch_files()
    (queue.checkout / "link").symlink_to("lines.txt")
    queue.git("add", "link")
    queue.git("commit", "-q", "-m", "Add a link")
    commit = queue.git("rev-parse", "--short", "HEAD").strip()
    done = queue.run("refresh")
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert f"commit {commit} Add a link makes link a symlink" in line
    assert queue.patch_files() == before
