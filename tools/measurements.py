"""docs/measurements.md: the one generated document of measured figures.

Each measuring target writes (or replaces) its own section, stamped with
the date (UTC), the machine and the exact command, and leaves the other
sections as they are. Nothing in it is copied by hand, so the README and
the other docs link it instead of quoting figures.

    python -m tools.measurements record SECTION FILE|- --command CMD [--title T]

records FILE (or stdin) as SECTION; the Makefile uses it for targets whose
figures come from other programs (tox, the audit over add-ons). Python
callers use record(section, body, command).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import platform
import re
import shlex
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from tools import project
from tools.cli import reports_errors
from tools.project import ToolError

HEADER = """\
# Measurements

Generated: each section below is written by the target named in it
(`python -m tools.measurements`), with the date, the machine and the exact
command. Do not edit by hand; rerun the target instead.
"""
SECTION_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
BEGIN = "<!-- begin {} -->"
END = "<!-- end {} -->"
SECTION = re.compile(
    r"^<!-- begin (?P<name>[a-z0-9-]+) -->\n.*?^<!-- end (?P=name) -->\n",
    re.MULTILINE | re.DOTALL,
)


def machine() -> dict[str, str]:
    """CPU model, cores, Python and OS of this machine."""
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def invocation(module: str, argv: Sequence[str] | None = None) -> str:
    """The command line that ran `python -m module argv` (argv: a main()'s
    own, None for sys.argv's), with the interpreter as typed from the
    project root (which venv ran it matters)."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(project.ROOT)
    given = sys.argv[1:] if argv is None else argv
    return shlex.join([str(python), "-m", module, *given])


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def demote(body: str, levels: int = 2) -> str:
    """Headings of a report nested under the section's own (## ...)."""
    out, fenced = [], False
    for line in body.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,4} ", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out).strip("\n")


def render_section(
    section: str,
    body: str,
    command: str,
    title: str | None = None,
    when: str | None = None,
    host: Mapping[str, str] | None = None,
) -> str:
    m = host or machine()
    return "\n".join(
        [
            BEGIN.format(section),
            f"## {title or section}",
            "",
            f"- date: {when or utc_now()}",
            f"- machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, "
            f"{m['os']}",
            f"- command: `{command}`",
            "",
            demote(body),
            "",
            END.format(section),
            "",
        ]
    )


def replace_section(document: str, section: str, text: str) -> str:
    """The document with `section` replaced by text, or text appended."""
    if not document.strip():
        document = HEADER
    for match in SECTION.finditer(document):
        if match.group("name") == section:
            return document[: match.start()] + text + document[match.end() :]
    return document.rstrip("\n") + "\n\n" + text


def sections(document: str) -> list[str]:
    """The names of the document's sections, in order."""
    return [m.group("name") for m in SECTION.finditer(document)]


def section(document: str, name: str) -> str | None:
    """The text of section `name` (heading, stamp and body, without the
    markers), or None when the document has no such section."""
    for match in SECTION.finditer(document):
        if match.group("name") == name:
            lines = match.group(0).splitlines()[1:-1]
            return "\n".join(lines).strip("\n")
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two targets may finish at once: without the lock, one's write is lost.
    # The lock is on the directory, so that no lock file lies about in docs/.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_atomic(path: Path, text: str) -> None:
    """Replace path in one step: a reader sees the old or the new file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def record(
    section: str,
    body: str,
    command: str,
    title: str | None = None,
    path: Path | None = None,
) -> Path:
    """Write body as `section` of the measurements document; keep the rest."""
    if not SECTION_NAME.fullmatch(section):
        raise ToolError(f"section {section!r}: use lower-case letters, digits and -")
    if not body.strip():
        raise ToolError(f"section {section}: nothing to record (empty body)")
    path = path or project.MEASUREMENTS
    text = render_section(section, body, command, title)
    with _locked(path):
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        write_atomic(path, replace_section(old, section, text))
    return path


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.measurements")
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="write FILE (- for stdin) as SECTION")
    rec.add_argument("section")
    rec.add_argument("file", help="the figures (Markdown), or - for stdin")
    rec.add_argument("--command", required=True, help="what produced them")
    rec.add_argument("--title", help="the section heading (default: SECTION)")
    rec.add_argument("--doc", type=Path, help=f"default: {project.MEASUREMENTS}")
    args = parser.parse_args(argv)
    try:
        body = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    except OSError as exc:
        raise ToolError(f"{args.file}: cannot read ({exc.strerror})") from exc
    written = record(args.section, body, args.command, args.title, args.doc)
    print(f"measurements: recorded {args.section} in {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
