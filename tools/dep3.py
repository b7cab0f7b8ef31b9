"""DEP-3 fields in a patch's message: read them, and strip the downstream ones.

DEP-3 (https://dep-team.pages.debian.net/deps/dep3/) puts `Field: value`
lines in the patch header; in our format-patch files they are the last lines
of the commit message, like git trailers. A value may go on over lines that
start with whitespace.

Origin, Bug, Bug-<Vendor>, Forwarded, Last-Update and Applied-Upstream are
the distribution's bookkeeping about the patch: `make pr` leaves them out of
the commits it exports. Author, Reviewed-by and Acked-by are left as they
are: upstream reads those as git trailers too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tools.project import version_key

# Every field DEP-3 defines; "Bug-<Vendor>" is matched by its prefix.
DEP3_FIELDS = (
    "Description",
    "Subject",
    "Origin",
    "Bug",
    "Forwarded",
    "Author",
    "From",
    "Reviewed-by",
    "Acked-by",
    "Last-Update",
    "Applied-Upstream",
)
DOWNSTREAM_FIELDS = (
    "Origin",
    "Bug",
    "Forwarded",
    "Last-Update",
    "Applied-Upstream",
)
FIELD_RE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9-]*):[ \t]*(?P<value>.*)$")
RELEASE_RE = re.compile(r"^v?(?P<release>\d+(?:\.\d+)+)$")


def _canonical(name: str) -> str | None:
    """The DEP-3 spelling of a field name, or None if DEP-3 has no such field."""
    for known in DEP3_FIELDS:
        if name.lower() == known.lower():
            return known
    if name.lower().startswith("bug-") and len(name) > 4:
        return "Bug-" + name[4:]
    return None


def _is_downstream(name: str) -> bool:
    return name in DOWNSTREAM_FIELDS or name.startswith("Bug-")


def _field_lines(lines: list[str]) -> list[tuple[int, int, str, str]]:
    """(first line, end line, name, value) of each DEP-3 field, in order."""
    found = []
    i = 0
    while i < len(lines):
        m = FIELD_RE.match(lines[i])
        name = _canonical(m["name"]) if m else None
        # From: and Subject: are the mail headers in format-patch files; in
        # a message body only a DEP-3 field name at the line start counts.
        if m is None or name is None or name in ("From", "Subject"):
            i += 1
            continue
        end = i + 1
        value = [m["value"].strip()]
        while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
            value.append(lines[end].strip())
            end += 1
        found.append((i, end, name, " ".join(v for v in value if v)))
        i = end
    return found


def fields(message: str) -> dict[str, list[str]]:
    """The DEP-3 fields of a commit message: name -> values, in order."""
    out: dict[str, list[str]] = {}
    for _, _, name, value in _field_lines(message.splitlines()):
        out.setdefault(name, []).append(value)
    return out


def strip_downstream(message: str) -> str:
    """message without its downstream DEP-3 fields (and no blank lines left over)."""
    lines = message.splitlines()
    drop: set[int] = set()
    for start, end, name, _ in _field_lines(lines):
        if _is_downstream(name):
            drop.update(range(start, end))
    kept = [line for i, line in enumerate(lines) if i not in drop]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept))
    return text.strip("\n") + "\n"


def forwarded(message: str) -> str | None:
    """What the Forwarded field says: "no", "not-needed" or "yes" (a URL or
    other value: sent upstream); None without the field.

    "no" may go on after a comma ("no, ready as forward/patches/0001-...")
    to say what is ready to send: it is still "no" to DEP-3.
    """
    values = fields(message).get("Forwarded")
    if not values:
        return None
    first = values[0].split(",", 1)[0].strip().lower()
    return first if first in ("no", "not-needed") else "yes"


@dataclass(frozen=True)
class AppliedUpstream:
    """An Applied-Upstream value: "3.10.11, https://.../pull/9673"."""

    release: str | None  # the upstream release that has the change, if named
    references: tuple[str, ...]  # URLs or commit:<id>

    def __str__(self) -> str:
        return ", ".join(filter(None, (self.release, *self.references)))


def applied_upstream(message: str) -> AppliedUpstream | None:
    """What the message's Applied-Upstream field says, if it has one.

    DEP-3: the upstream version expected to contain the patch, or the URL or
    commit identifier of the upstream commit, or both separated by ", ".
    """
    values = fields(message).get("Applied-Upstream")
    if not values:
        return None
    release = None
    references = []
    for part in (p.strip() for p in values[0].split(",")):
        m = RELEASE_RE.match(part)
        if m and release is None:
            release = m["release"]
        elif part:
            references.append(part)
    return AppliedUpstream(release, tuple(references))


def dropped_at_release(upstream: AppliedUpstream, version: str) -> bool:
    """Whether an Applied-Upstream field claims that version has the change."""
    if upstream.release is None:
        return False
    return version_key(upstream.release) <= version_key(version)
