"""Find aiohttp connector subclasses whose `connect` override loses the timeout.

The patch series moves `ceil_timeout(timeout.connect, timeout.ceil_threshold)`
out of `ClientSession._request` into `BaseConnector.connect`. A subclass that
overrides `connect` without calling the base implementation therefore gets no
connect timeout unless it applies one itself. The check is static (`ast`):
nothing is imported or run.

    python -m tools.audit [--format table|json] [PATH ...]

PATH: files or directories (default: this interpreter's site-packages).
Exit status: 0 no override loses the timeout, 1 some do, 2 usage error.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import os
import sys
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
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


class Auditor:
    def __init__(self) -> None:
        self.modules: dict[str, Module] = {}  # by dotted name, for lookups
        self.all_modules: list[Module] = []  # every parsed file, names may clash
        self.skipped: list[tuple[str, str]] = []
        self.files_scanned = 0
        self.trees: dict[Path, ast.Module] = {}

    # -- collection ----------------------------------------------------------
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
        self._collect(mod, tree, name, path.name == "__init__.py")
        self.all_modules.append(mod)
        for key in {name, path_name}:  # path name too: namespace packages
            self.modules.setdefault(key, mod)

    def _collect(self, mod: Module, node: ast.AST, prefix: str, is_pkg: bool) -> None:
        """Record imports, module-level aliases and classes (statements only)."""
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for a in child.names:  # `import a.b` binds a; `... as c` binds a.b
                    local = a.asname or a.name.split(".")[0]
                    mod.imports.setdefault(local, set()).add(
                        a.name if a.asname else local
                    )
            elif isinstance(child, ast.ImportFrom):
                base = absolute(mod.name, is_pkg, child.module, child.level)
                for a in child.names:
                    if a.name == "*":
                        mod.star_imports.append(base)
                    else:
                        full = f"{base}.{a.name}" if base else a.name
                        mod.imports.setdefault(a.asname or a.name, set()).add(full)
            elif isinstance(child, ast.Assign) and prefix == mod.name:
                # `Base = aiohttp.TCPConnector` is kept as "<this module>.aiohttp.
                # TCPConnector" and resolved lazily through this module's names.
                value = dotted(child.value)
                for t in child.targets:
                    if isinstance(t, ast.Name) and value:
                        mod.imports.setdefault(t.id, set()).add(f"{mod.name}.{value}")
            elif isinstance(child, ast.ClassDef):
                methods = frozenset(
                    s.name
                    for s in child.body
                    if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                )
                qualname = f"{prefix}.{child.name}"
                info = ClassInfo(
                    qualname, child.name, child.lineno, child.bases, methods, mod
                )
                mod.all_classes.append(info)
                if prefix == mod.name:
                    mod.top_classes[child.name] = info
                self._collect(mod, child, info.qualname, is_pkg)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._collect(mod, child, f"{prefix}.{child.name}.<locals>", is_pkg)
            elif isinstance(child, (ast.stmt, ast.excepthandler)) or (
                type(child).__name__ == "match_case"
            ):
                self._collect(mod, child, prefix, is_pkg)  # if/try/with/... bodies

    # -- name resolution -----------------------------------------------------
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

    def ancestors(self, cls: ClassInfo) -> list[Target]:
        """Resolvable ancestors, breadth-first in base order (~ the MRO)."""
        out: list[Target] = []
        queue = [cls]
        while queue:
            current = queue.pop(0)
            for base in current.bases:
                target = self.resolve(current.module, base, skip=current)
                if target is not None and target is not cls and target not in out:
                    out.append(target)
                    if isinstance(target, ClassInfo):
                        queue.append(target)
        return out

    def chain(
        self, cls: ClassInfo, seen: frozenset[int] = frozenset()
    ) -> list[str] | None:
        """First base path to an aiohttp connector: [mod.Mid, aiohttp.TCPConnector]."""
        for base in cls.bases:
            target = self.resolve(cls.module, base, skip=cls)
            if isinstance(target, str):
                return [target]
            if target is not None and id(target) not in seen:
                rest = self.chain(target, seen | {id(cls)})
                if rest is not None:
                    return [target.qualname, *rest]
        return None

    # -- analysis ------------------------------------------------------------
    def method(self, cls: ClassInfo, name: str) -> Function | None:
        """The class's last `def name` (as at runtime), from a re-parse."""
        if name not in cls.methods:
            return None
        path = cls.module.path
        if path not in self.trees:  # few files get here; keeping all ASTs costs GBs
            self.trees[path] = ast.parse(path.read_bytes(), filename=str(path))
        defs = [
            s
            for n in ast.walk(self.trees[path])
            if isinstance(n, ast.ClassDef) and n.lineno == cls.lineno
            for s in n.body
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name
        ]
        return defs[-1] if defs else None

    def callable_names(self, mod: Module, expr: ast.expr) -> set[str]:
        """Names a callee may stand for: `wf` -> {"wf", "asyncio.wait_for"}."""
        name = dotted(expr)
        names: set[str] = {name} if name else set()
        frontier = set(names)
        for _ in range(3):  # imports, then module-level aliases of imports
            found: set[str] = set()
            for n in frontier:
                n = n.removeprefix(f"{mod.name}.")  # see `Base = ...` in _collect
                head, _, rest = n.partition(".")
                found |= {
                    n,
                    *(f"{t}.{rest}".rstrip(".") for t in mod.imports.get(head, ())),
                }
            frontier = found - names
            names |= found
        return names

    def inspect(
        self,
        cls: ClassInfo,
        func: Function,
        ancestors: list[Target],
        visited: set[int],
        via: str = "",
    ) -> tuple[list[str], list[str]]:
        """Evidence of base `connect` calls and timeouts; follows self.helper()."""
        base_calls: list[str] = []
        timeouts: list[str] = []
        supers = {  # `base = super()`, later `base.connect(...)`
            t.id
            for n in ast.walk(func)
            if isinstance(n, ast.Assign) and is_super(n.value)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            callee, where = node.func, f"{via}line {node.lineno}"
            owner, attr = (
                (callee.value, callee.attr)
                if isinstance(callee, ast.Attribute)
                else (None, "")
            )
            if owner is not None and attr == "connect":
                target = self.resolve(cls.module, owner)
                if is_super(owner):
                    base_calls.append(f"{ast.unparse(owner)}.connect ({where})")
                elif isinstance(owner, ast.Name) and owner.id in supers:
                    base_calls.append(
                        f"{owner.id}.connect ({owner.id} = super(); {where})"
                    )
                elif target is not None and target in ancestors:
                    label = target if isinstance(target, str) else target.name
                    base_calls.append(f"{label}.connect ({where})")
            hits = sorted(
                n
                for n in self.callable_names(cls.module, callee)
                if n in TIMEOUT_CALLABLES or n.split(".")[-1] in TIMEOUT_SUFFIXES
            )
            if hits:
                timeouts.append(f"{hits[0]} ({where})")
            if isinstance(owner, ast.Name) and owner.id == "self":
                owners = [cls, *(a for a in ancestors if isinstance(a, ClassInfo))]
                found = ((o, self.method(o, attr)) for o in owners)
                helper_cls, helper = next(((o, h) for o, h in found if h), (cls, None))
                if helper is not None and id(helper) not in visited:
                    visited.add(id(helper))
                    more = self.inspect(
                        helper_cls, helper, ancestors, visited, f"{via}self.{attr} "
                    )
                    base_calls += more[0]
                    timeouts += more[1]
        return base_calls, timeouts

    def audit(self) -> Report:
        findings: dict[int, tuple[ClassInfo, Finding]] = {}
        for mod in self.all_modules:
            for cls in mod.all_classes:
                func = self.method(cls, "connect")
                chain = self.chain(cls) if func is not None else None
                if func is None or chain is None:
                    continue
                evidence = self.inspect(cls, func, self.ancestors(cls), {id(func)})
                where = (mod.display, func.lineno, cls.name, cls.qualname)
                findings[id(cls)] = (cls, Finding(*where, chain, *evidence))
        for cls, finding in findings.values():
            finding.verdict = self._verdict(cls, findings, frozenset())
        ordered = [f for _, f in findings.values()]
        ordered.sort(key=lambda f: (f.file, f.line))
        return Report(ordered, self.skipped, self.files_scanned)

    def _verdict(
        self,
        cls: ClassInfo,
        findings: dict[int, tuple[ClassInfo, Finding]],
        seen: frozenset[int],
    ) -> str:
        finding = findings[id(cls)][1]
        if finding.own_timeout:
            return OK_OWN
        if not finding.calls_base:
            return LOSES
        # The base connect only helps if the next override up keeps the timeout.
        overrides = (a for a in self.ancestors(cls) if isinstance(a, ClassInfo))
        nearest = next((a for a in overrides if id(a) in findings), None)
        if nearest is not None and id(nearest) not in seen:
            if self._verdict(nearest, findings, seen | {id(cls)}).startswith(LOSES):
                return f"{LOSES} (base {nearest.name}.connect loses it)"
        return OK_BASE


def default_paths() -> list[Path]:
    paths = [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
    return [Path(p) for p in dict.fromkeys(paths) if Path(p).is_dir()]


def run(paths: Sequence[Path]) -> Report:
    auditor = Auditor()
    # Parsing allocates millions of AST nodes, none in reference cycles; letting
    # the cyclic GC walk them over and over made large scans several times slower.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for file, display, path_name in iter_sources(paths):
            auditor.add_file(file, display, path_name)
        return auditor.audit()
    finally:
        if gc_enabled:
            gc.enable()


def render_table(report: Report) -> str:
    def yes(evidence: list[str]) -> str:
        return f"yes: {'; '.join(evidence)}" if evidence else "no"

    head = "file:line|class|base chain|calls base connect?|own timeout?|verdict"
    rows = [f"| {head.replace('|', ' | ')} |", "| --- " * 6 + "|"]
    for f in report.findings:
        chain = " -> ".join(f.base_chain)
        rows.append(
            f"| {f.file}:{f.line} | {f.cls} | {chain} | {yes(f.calls_base)} "
            f"| {yes(f.own_timeout)} | {f.verdict} |"
        )
    losing = sum(f.verdict.startswith(LOSES) for f in report.findings)
    rows += [
        "",
        f"{len(report.findings)} connect override(s), {losing} lose the connect "
        f"timeout; {report.files_scanned} file(s) scanned, "
        f"{len(report.skipped)} skipped.",
    ]
    if report.skipped:
        rows += ["", "Skipped (unparseable):"]
        rows += [f"- {path}: {reason}" for path, reason in report.skipped]
    return "\n".join(rows)


def render_json(report: Report) -> str:
    data = {
        "findings": [asdict(f) for f in report.findings],
        "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
        "files_scanned": report.files_scanned,
    }
    return json.dumps(data, indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or default_paths()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        parser.error(f"no such file or directory: {', '.join(missing)}")  # exit 2
    report = run(paths)
    print(render_json(report) if args.format == "json" else render_table(report))
    return 1 if any(f.verdict.startswith(LOSES) for f in report.findings) else 0


if __name__ == "__main__":
    sys.exit(main())
