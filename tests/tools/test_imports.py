"""The shape of tools/: one ground floor, no command used as a library.

These read the source (ast), so they hold for every module, including
ones no other test imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / "tools"
TESTS = TOOLS.parent / "tests"
MODULES = sorted(p for p in TOOLS.glob("*.py") if p.name != "__init__.py")
LONGEST = 500  # lines; "about 500" in the issue that asked for the split


def imported(path: Path) -> set[str]:
    """The modules path imports, as dotted names (from-imports of names too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def tool_imports(path: Path) -> set[str]:
    """The tools.X modules path imports (tools.X.name counts as tools.X)."""
    ours = {f"tools.{p.stem}" for p in MODULES}
    found = set()
    for name in imported(path):
        for module in ours:
            if name == module or name.startswith(module + "."):
                found.add(module)
    found.discard(f"tools.{path.stem}")
    return found


def is_command(path: Path) -> bool:
    return 'if __name__ == "__main__":' in path.read_text(encoding="utf-8")


# make rebase is the queue's own `gbp pq rebase`: it runs the queue's
# lifecycle steps (begin a locked run, import an sdist, export the series),
# never its helpers, which live on the floors below.
LIFECYCLE = {"rebase.py": {"begin", "import_identity", "unpack_for_git"}}


def names_from(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == module
        for alias in node.names
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_tool_imports_the_queue_command(path: Path) -> None:
    if path.name in LIFECYCLE:
        assert names_from(path, "tools.patchq") <= LIFECYCLE[path.name]
        assert "patchq" not in names_from(path, "tools")  # the module itself
    else:
        assert "tools.patchq" not in tool_imports(path)


def test_ground_floor_imports_no_tool() -> None:
    # the floors below it, each importing only those listed before it
    floors = ["tools.compat", "tools.names", "tools.process"]
    assert tool_imports(TOOLS / "project.py") <= set(floors)
    for n, floor in enumerate(floors):
        assert tool_imports(TOOLS / f"{floor.split('.')[1]}.py") <= set(floors[:n])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_commands_are_not_libraries(path: Path) -> None:
    """A tool may import floors below it, never another command module."""
    commands = {f"tools.{p.stem}" for p in MODULES if is_command(p)}
    # Floors with a small CLI for the Makefile, not commands: project
    # (make-vars, clean), measurements (record, for tox and the audit) and
    # interpreters (for .ci/pythons).
    commands -= {"tools.project", "tools.measurements", "tools.interpreters"}
    if path.name in LIFECYCLE:
        commands.discard("tools.patchq")
    assert tool_imports(path) & commands == set()


@pytest.mark.parametrize(
    "path",
    MODULES + sorted(TESTS.rglob("*.py")),
    ids=lambda p: str(p.relative_to(TOOLS.parent)),
)
def test_module_fits(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= LONGEST, f"{path.name}: {lines} lines; split it by job"


@pytest.mark.parametrize(
    "path", sorted(TESTS.rglob("test_*.py")), ids=lambda p: str(p.relative_to(TESTS))
)
def test_no_test_module_imports_another(path: Path) -> None:
    others = {
        name
        for name in imported(path)
        if (name.startswith(("tests.", ".")) or name == "tests")
        and any(part.startswith("test_") for part in name.split(".") if part)
    }
    assert others == set()


# A helper that was written out in several tools; each marker below may now
# appear only in the floor that the description names.
ONCE = {
    '"archive"': "git archive | tar: process.export_tree",
    "GIT_AUTHOR": "git identity: process.git_identity",
    '"-m", "venv"': "creating a venv: project.make_venv",
    "in os.environ.items()": "stripping the environment: process.environ_without",
    "Run `make apply` first": "no checkout: project.no_checkout",
    '"upstream.toml"': "the pin's file: project.PIN_FILE",
}


@pytest.mark.parametrize("marker", sorted(ONCE))
def test_helper_written_once(marker: str) -> None:
    where = [p.name for p in MODULES if marker in p.read_text(encoding="utf-8")]
    module = ONCE[marker].rsplit(": ", 1)[1].split(".")[0]  # "process.git" -> process
    assert where == [f"{module}.py"], ONCE[marker]
