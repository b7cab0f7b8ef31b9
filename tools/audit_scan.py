"""What tools/audit.py reads: the parsed modules, their classes and imports,
and the resolution of a name in a module to a scanned class or an aiohttp
connector. Static (`ast`): nothing is imported or run.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

ROOTS = frozenset("BaseConnector TCPConnector UnixConnector NamedPipeConnector".split())
# Resolved names of callables that bound how long the connect may take.
TIMEOUT_CALLABLES = frozenset(
    """asyncio.wait_for asyncio.timeout asyncio.timeout_at asyncio.tasks.wait_for
    asyncio.timeouts.timeout asyncio.timeouts.timeout_at async_timeout.timeout
    async_timeout.timeout_at anyio.fail_after anyio.fail_at anyio.move_on_after
    anyio.move_on_at trio.fail_after trio.fail_at""".split()
)
# An unresolved name counts only if unambiguous (vendored copies of aiohttp's
# helper); not e.g. `wait_for`, which is also asyncio.Condition.wait_for.
TIMEOUT_SUFFIXES = frozenset({"ceil_timeout"})
LOSES = "LOSES TIMEOUT"
OK_BASE, OK_OWN = "OK (calls base connect)", "OK (applies its own timeout)"
Function = Union[ast.FunctionDef, ast.AsyncFunctionDef]


@dataclass
class Module:
    name: str
    path: Path
    display: str
    # local name -> qualified names it may be bound to (every branch of a try/if)
    imports: dict[str, set[str]] = field(default_factory=dict)
    star_imports: list[str] = field(default_factory=list)
    top_classes: dict[str, ClassInfo] = field(default_factory=dict)
    all_classes: list[ClassInfo] = field(default_factory=list)


@dataclass(eq=False)  # identity semantics: compared with `is` / `in`
class ClassInfo:
    """What resolution needs; method bodies are re-parsed on demand (memory)."""

    qualname: str
    name: str
    lineno: int
    bases: list[ast.expr]
    methods: frozenset[str]
    module: Module


Target = Union[ClassInfo, str]  # a scanned class, or "aiohttp.<one of ROOTS>"


@dataclass
class Finding:
    file: str
    line: int
    cls: str
    qualname: str
    base_chain: list[str]
    calls_base: list[str]  # evidence, e.g. "super().connect (line 12)"
    own_timeout: list[str]  # evidence, e.g. "asyncio.wait_for (line 9)"
    verdict: str = ""


@dataclass
class Report:
    findings: list[Finding]
    skipped: list[tuple[str, str]]  # (path, reason)
    files_scanned: int


def module_name(path: Path) -> str:
    """Dotted name, walking up through package (`__init__.py`) directories."""
    parts = [] if path.stem == "__init__" else [path.stem]
    parent = path.parent
    while (parent / "__init__.py").is_file() and parent.name:
        parts.insert(0, parent.name)
        parent = parent.parent
    return ".".join(parts) or path.parent.name


def dotted(expr: ast.expr) -> str | None:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        head = dotted(expr.value)
        return f"{head}.{expr.attr}" if head else None
    if isinstance(expr, ast.Subscript):  # Generic[...]-style bases
        return dotted(expr.value)
    return None


def absolute(name: str, is_pkg: bool, module: str | None, level: int) -> str:
    """The module a (possibly relative) `from ... import` in `name` refers to."""
    if not level:
        return module or ""
    package = name.split(".") if is_pkg else name.split(".")[:-1]
    package = package[: len(package) - (level - 1)]
    return ".".join([*package, module] if module else package)


def is_super(expr: ast.expr) -> bool:
    func = expr.func if isinstance(expr, ast.Call) else None
    return isinstance(func, ast.Name) and func.id == "super"


def iter_sources(paths: Sequence[Path]) -> Iterator[tuple[Path, str, str]]:
    """Yield (file, display path, module name from the path) for each *.py once."""
    seen: set[Path] = set()
    for root in paths:
        found = [(root, str(root), module_name(root))] if root.is_file() else []
        for dirpath, dirs, names in os.walk(root):  # nothing for a file
            dirs.sort()
            for file in (Path(dirpath, n) for n in sorted(names) if n.endswith(".py")):
                parts = file.relative_to(root).with_suffix("").parts
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                # One root: show paths relative to it (e.g. to site-packages).
                shown = file.relative_to(root) if len(paths) == 1 else file
                found.append((file, str(shown), ".".join(parts) or module_name(file)))
        for file, shown_path, name in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                yield file, shown_path, name


# ---------------------------------------------------------------- collection


@dataclass
class Scan:
    """Every parsed module, by name for lookups, and what was skipped."""

    modules: dict[str, Module] = field(default_factory=dict)  # by dotted name
    all_modules: list[Module] = field(default_factory=list)  # names may clash
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    files_scanned: int = 0

    def add_file(self, path: Path, display: str, path_name: str) -> None:
        name = module_name(path)
        if "aiohttp" in (name.split(".")[0], path_name.split(".")[0]):
            return  # aiohttp itself defines the bases: not findings
        self.files_scanned += 1
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError, OSError, RecursionError) as exc:
            if isinstance(exc, SyntaxError):
                detail = f"{exc.msg} (line {exc.lineno})"
            else:
                detail = str(exc)
            self.skipped.append((display, f"{type(exc).__name__}: {detail}"))
            return
        mod = Module(name, path, display)
        collect(mod, tree, name, path.name == "__init__.py")
        self.all_modules.append(mod)
        for key in {name, path_name}:  # path name too: namespace packages
            self.modules.setdefault(key, mod)


def collect(mod: Module, node: ast.AST, prefix: str, is_pkg: bool) -> None:
    """Record imports, module-level aliases and classes (statements only)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            for a in child.names:  # `import a.b` binds a; `... as c` binds a.b
                local = a.asname or a.name.split(".")[0]
                mod.imports.setdefault(local, set()).add(a.name if a.asname else local)
        elif isinstance(child, ast.ImportFrom):
            collect_from(mod, child, is_pkg)
        elif isinstance(child, ast.Assign) and prefix == mod.name:
            # `Base = aiohttp.TCPConnector` is kept as "<this module>.aiohttp.
            # TCPConnector" and resolved lazily through this module's names.
            value = dotted(child.value)
            for t in child.targets:
                if isinstance(t, ast.Name) and value:
                    mod.imports.setdefault(t.id, set()).add(f"{mod.name}.{value}")
        elif isinstance(child, ast.ClassDef):
            info = collect_class(mod, child, prefix)
            collect(mod, child, info.qualname, is_pkg)
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            collect(mod, child, f"{prefix}.{child.name}.<locals>", is_pkg)
        elif isinstance(child, (ast.stmt, ast.excepthandler)) or (
            type(child).__name__ == "match_case"
        ):
            collect(mod, child, prefix, is_pkg)  # if/try/with/... bodies


def collect_from(mod: Module, node: ast.ImportFrom, is_pkg: bool) -> None:
    base = absolute(mod.name, is_pkg, node.module, node.level)
    for a in node.names:
        if a.name == "*":
            mod.star_imports.append(base)
        else:
            full = f"{base}.{a.name}" if base else a.name
            mod.imports.setdefault(a.asname or a.name, set()).add(full)


def collect_class(mod: Module, node: ast.ClassDef, prefix: str) -> ClassInfo:
    methods = frozenset(
        s.name
        for s in node.body
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
    )
    info = ClassInfo(
        f"{prefix}.{node.name}", node.name, node.lineno, node.bases, methods, mod
    )
    mod.all_classes.append(info)
    if prefix == mod.name:
        mod.top_classes[node.name] = info
    return info


# ---------------------------------------------------------------- resolution


class Resolver:
    """What a name in a scanned module refers to."""

    def __init__(self, modules: dict[str, Module]) -> None:
        self.modules = modules

    def lookup(self, qualified: str, depth: int = 0) -> Target | None:
        parts = qualified.split(".")
        if parts[0] == "aiohttp" and parts[-1] in ROOTS:
            return f"aiohttp.{parts[-1]}"
        if depth > 30:  # alias cycles such as `A = B; B = A`
            return None
        for i in range(len(parts) - 1, 0, -1):  # longest scanned module prefix
            mod = self.modules.get(".".join(parts[:i]))
            if mod is not None:
                return self.lookup_in(mod, parts[i:], depth + 1)
        return None

    def lookup_in(
        self, mod: Module, rest: list[str], depth: int, skip: ClassInfo | None = None
    ) -> Target | None:
        cls = mod.top_classes.get(rest[0])
        if cls is not None and cls is not skip and len(rest) == 1:
            return cls
        # `import a` + `a.b.C`, re-exports, aliases: try every binding of the head.
        tail = "".join(f".{r}" for r in rest[1:])
        sources = [t + tail for t in sorted(mod.imports.get(rest[0], ()))]
        sources += [f"{s}.{'.'.join(rest)}" for s in mod.star_imports]
        for source in sources:
            found = self.lookup(source, depth + 1)
            if found is not None:
                return found
        return None

    def resolve(
        self, mod: Module, expr: ast.expr, skip: ClassInfo | None = None
    ) -> Target | None:
        """What `expr` names in `mod`; `skip` a class shadowing its base's name."""
        name = dotted(expr)
        if name is None:
            return None
        found = self.lookup_in(mod, name.split("."), 0, skip)
        if found is None and "." not in name:  # classes nested in a function
            nested = (c for c in mod.all_classes if c.name == name)
            found = next((c for c in nested if c is not skip), None)
        return found


def ancestors(resolver: Resolver, cls: ClassInfo) -> list[Target]:
    """Resolvable ancestors, breadth-first in base order (~ the MRO)."""
    out: list[Target] = []
    queue = [cls]
    while queue:
        current = queue.pop(0)
        for base in current.bases:
            target = resolver.resolve(current.module, base, skip=current)
            if target is not None and target is not cls and target not in out:
                out.append(target)
                if isinstance(target, ClassInfo):
                    queue.append(target)
    return out


def chain(
    resolver: Resolver, cls: ClassInfo, seen: frozenset[int] = frozenset()
) -> list[str] | None:
    """First base path to an aiohttp connector: [mod.Mid, aiohttp.TCPConnector]."""
    for base in cls.bases:
        target = resolver.resolve(cls.module, base, skip=cls)
        if isinstance(target, str):
            return [target]
        if target is not None and id(target) not in seen:
            rest = chain(resolver, target, seen | {id(cls)})
            if rest is not None:
                return [target.qualname, *rest]
    return None
