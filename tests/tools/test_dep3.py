"""DEP-3 fields: read from a patch's message, Applied-Upstream parsed, the
downstream ones stripped for export."""

from __future__ import annotations

from tools import dep3

MESSAGE = """\
Skip the connect timeout when reusing a pooled connection

Only two steps of connect() can block. Note: this line is prose, and
so is the next one.
Origin is not a field here either, it has no colon after the name

Bug: https://github.com/aio-libs/aiohttp/issues/9598
Bug-Debian: https://bugs.debian.org/1
Forwarded: https://github.com/aio-libs/aiohttp/pull/9600
Last-Update: 2026-11-21
Applied-Upstream: 3.10.11, https://github.com/aio-libs/aiohttp/pull/9673
Origin: upstream, https://github.com/aio-libs/aiohttp/commit/e6187f6
 (the 3.10 backport)
Reviewed-by: A Reviewer <a@example.org>
Signed-off-by: An Author <b@example.org>
"""


def test_fields_are_read_with_continuation_lines() -> None:
    found = dep3.fields(MESSAGE)
    assert found["Bug"] == ["https://github.com/aio-libs/aiohttp/issues/9598"]
    assert found["Bug-Debian"] == ["https://bugs.debian.org/1"]
    assert found["Origin"] == [
        "upstream, https://github.com/aio-libs/aiohttp/commit/e6187f6 "
        "(the 3.10 backport)"
    ]
    assert found["Reviewed-by"] == ["A Reviewer <a@example.org>"]
    assert "Note" not in found and "Signed-off-by" not in found
    assert dep3.fields("Subject only\n") == {}


def test_strip_downstream_keeps_prose_and_upstream_trailers() -> None:
    stripped = dep3.strip_downstream(MESSAGE)
    assert stripped == (
        "Skip the connect timeout when reusing a pooled connection\n\n"
        "Only two steps of connect() can block. Note: this line is prose, and\n"
        "so is the next one.\n"
        "Origin is not a field here either, it has no colon after the name\n\n"
        "Reviewed-by: A Reviewer <a@example.org>\n"
        "Signed-off-by: An Author <b@example.org>\n"
    )
    only_dep3 = "Subject\n\nBody.\n\nForwarded: no\nLast-Update: 2026-11-21\n"
    assert dep3.strip_downstream(only_dep3) == "Subject\n\nBody.\n"


def test_applied_upstream_names_release_and_references() -> None:
    upstream = dep3.applied_upstream(MESSAGE)
    assert upstream == dep3.AppliedUpstream(
        "3.10.11", ("https://github.com/aio-libs/aiohttp/pull/9673",)
    )
    assert str(upstream) == "3.10.11, https://github.com/aio-libs/aiohttp/pull/9673"
    only_commit = dep3.applied_upstream("S\n\nApplied-Upstream: commit:e6187f6\n")
    assert only_commit == dep3.AppliedUpstream(None, ("commit:e6187f6",))
    assert dep3.applied_upstream("S\n\nForwarded: no\n") is None


def test_the_claimed_release_compares_numerically() -> None:
    upstream = dep3.applied_upstream(MESSAGE)
    assert upstream is not None
    assert not dep3.dropped_at_release(upstream, "3.10.10")
    assert dep3.dropped_at_release(upstream, "3.10.11")
    assert dep3.dropped_at_release(upstream, "3.11.0")
    assert not dep3.dropped_at_release(upstream, "3.9.99")
    # a change named by commit only: it claims no release
    only_commit = dep3.applied_upstream("S\n\nApplied-Upstream: commit:e6187f6\n")
    assert only_commit is not None
    assert not dep3.dropped_at_release(only_commit, "9.0")


def test_forwarded_reads_dep3s_three_states() -> None:
    assert dep3.forwarded("S\n\nForwarded: no\n") == "no"
    ready = "S\n\nForwarded: no, ready as forward/patches/0001-x.patch\n"
    assert dep3.forwarded(ready) == "no"
    assert dep3.forwarded("S\n\nForwarded: not-needed\n") == "not-needed"
    sent = "S\n\nForwarded: https://github.com/aio-libs/aiohttp/pull/1\n"
    assert dep3.forwarded(sent) == "yes"
    assert dep3.forwarded("S\n\nBug: https://example.com/1\n") is None
