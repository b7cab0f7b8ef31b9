"""Find aiohttp connector subclasses whose `connect` override loses the timeout.

The patch series moves `ceil_timeout(timeout.connect, timeout.ceil_threshold)`
out of `ClientSession._request` into `BaseConnector.connect`. A subclass that
overrides `connect` without calling the base implementation therefore gets no
connect timeout unless it applies one itself. The check is static (`ast`):
nothing is imported or run.

    python -m tools.audit [--format table|json] [--record SECTION] [PATH ...]

PATH: files or directories (default: this interpreter's site-packages).
--record SECTION: also write the table as SECTION of docs/measurements.md.
Exit status: 0 no override loses the timeout, 1 some do, 2 usage error.

Reading the files and resolving names is tools/audit_scan.py; this module
looks into each `connect` override, gives the verdicts and reports them.
"""

from __future__ import annotations

import argparse
import ast
import gc
import json
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from tools.audit_scan import (
    LOSES,
    OK_BASE,
    OK_OWN,
    TIMEOUT_CALLABLES,
    TIMEOUT_SUFFIXES,
    ClassInfo,
    Finding,
    Function,
    Module,
    Report,
    Resolver,
    Scan,
    Target,
    ancestors,
    chain,
    dotted,
    is_super,
    iter_sources,
)

__all__ = ["LOSES", "OK_BASE", "OK_OWN", "Finding", "Report", "main", "run"]

# Headings of the sections `make audit` and `make audit-addons` record.
TITLES = {
    "audit": "Connect-timeout audit of the patched venv (make audit)",
    "audit-addons": "Connect-timeout audit next to the add-ons (make audit-addons)",
}
Evidence = tuple[list[str], list[str]]  # (base connect calls, own timeouts)


class Methods:
    """A class's methods, re-parsed on demand: keeping all ASTs costs GBs."""

    def __init__(self) -> None:
        self.trees: dict[Path, ast.Module] = {}

    def get(self, cls: ClassInfo, name: str) -> Function | None:
        """The class's last `def name` (as at runtime)."""
        if name not in cls.methods:
            return None
        path = cls.module.path
        if path not in self.trees:  # few files get here
            self.trees[path] = ast.parse(path.read_bytes(), filename=str(path))
        defs = [
            s
            for n in ast.walk(self.trees[path])
            if isinstance(n, ast.ClassDef) and n.lineno == cls.lineno
            for s in n.body
            if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name
        ]
        return defs[-1] if defs else None


def callable_names(mod: Module, expr: ast.expr) -> set[str]:
    """Names a callee may stand for: `wf` -> {"wf", "asyncio.wait_for"}."""
    name = dotted(expr)
    names: set[str] = {name} if name else set()
    frontier = set(names)
    for _ in range(3):  # imports, then module-level aliases of imports
        found: set[str] = set()
        for n in frontier:
            n = n.removeprefix(f"{mod.name}.")  # see `Base = ...` in collect
            head, _, rest = n.partition(".")
            found |= {
                n,
                *(f"{t}.{rest}".rstrip(".") for t in mod.imports.get(head, ())),
            }
        frontier = found - names
        names |= found
    return names


def timeout_call(mod: Module, callee: ast.expr, where: str) -> str | None:
    """Evidence that the call bounds the connect's time, e.g. asyncio.wait_for."""
    hits = sorted(
        n
        for n in callable_names(mod, callee)
        if n in TIMEOUT_CALLABLES or n.split(".")[-1] in TIMEOUT_SUFFIXES
    )
    return f"{hits[0]} ({where})" if hits else None


def super_aliases(func: Function) -> set[str]:
    """Names bound to super(): `base = super()`, later `base.connect(...)`."""
    return {
        t.id
        for n in ast.walk(func)
        if isinstance(n, ast.Assign) and is_super(n.value)
        for t in n.targets
        if isinstance(t, ast.Name)
    }


def base_call(
    resolver: Resolver,
    cls: ClassInfo,
    owner: ast.expr,
    supers: set[str],
    ancestors: list[Target],
    where: str,
) -> str | None:
    """Evidence that `owner.connect(...)` is the base implementation."""
    target = resolver.resolve(cls.module, owner)
    if is_super(owner):
        return f"{ast.unparse(owner)}.connect ({where})"
    if isinstance(owner, ast.Name) and owner.id in supers:
        return f"{owner.id}.connect ({owner.id} = super(); {where})"
    if target is not None and target in ancestors:
        label = target if isinstance(target, str) else target.name
        return f"{label}.connect ({where})"
    return None


class Inspector:
    """Evidence of base `connect` calls and timeouts; follows self.helper()."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.methods = Methods()

    def inspect(
        self,
        cls: ClassInfo,
        func: Function,
        ancestors: list[Target],
        visited: set[int],
        via: str = "",
    ) -> Evidence:
        base_calls: list[str] = []
        timeouts: list[str] = []
        supers = super_aliases(func)
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
                call = base_call(self.resolver, cls, owner, supers, ancestors, where)
                base_calls += [call] if call else []
            timeout = timeout_call(cls.module, callee, where)
            timeouts += [timeout] if timeout else []
            if isinstance(owner, ast.Name) and owner.id == "self":
                more = self.follow(cls, attr, ancestors, visited, f"{via}self.{attr} ")
                base_calls += more[0]
                timeouts += more[1]
        return base_calls, timeouts

    def follow(
        self,
        cls: ClassInfo,
        attr: str,
        ancestors: list[Target],
        visited: set[int],
        via: str,
    ) -> Evidence:
        """The evidence in the helper `self.attr` calls, once per helper."""
        owners = [cls, *(a for a in ancestors if isinstance(a, ClassInfo))]
        found = ((o, self.methods.get(o, attr)) for o in owners)
        helper_cls, helper = next(((o, h) for o, h in found if h), (cls, None))
        if helper is None or id(helper) in visited:
            return [], []
        visited.add(id(helper))
        return self.inspect(helper_cls, helper, ancestors, visited, via)


Findings = dict[int, tuple[ClassInfo, Finding]]  # by id() of the class


def audit(scan: Scan) -> Report:
    resolver = Resolver(scan.modules)
    inspector = Inspector(resolver)
    findings: Findings = {}
    for mod in scan.all_modules:
        for cls in mod.all_classes:
            func = inspector.methods.get(cls, "connect")
            base_chain = chain(resolver, cls) if func is not None else None
            if func is None or base_chain is None:
                continue
            bases = ancestors(resolver, cls)
            evidence = inspector.inspect(cls, func, bases, {id(func)})
            where = (mod.display, func.lineno, cls.name, cls.qualname)
            findings[id(cls)] = (cls, Finding(*where, base_chain, *evidence))
    for cls, finding in findings.values():
        finding.verdict = verdict(resolver, cls, findings, frozenset())
    ordered = [f for _, f in findings.values()]
    ordered.sort(key=lambda f: (f.file, f.line))
    return Report(ordered, scan.skipped, scan.files_scanned)


def verdict(
    resolver: Resolver, cls: ClassInfo, findings: Findings, seen: frozenset[int]
) -> str:
    finding = findings[id(cls)][1]
    if finding.own_timeout:
        return OK_OWN
    if not finding.calls_base:
        return LOSES
    # The base connect only helps if the next override up keeps the timeout.
    overrides = (a for a in ancestors(resolver, cls) if isinstance(a, ClassInfo))
    nearest = next((a for a in overrides if id(a) in findings), None)
    if nearest is not None and id(nearest) not in seen:
        if verdict(resolver, nearest, findings, seen | {id(cls)}).startswith(LOSES):
            return f"{LOSES} (base {nearest.name}.connect loses it)"
    return OK_BASE


def default_paths() -> list[Path]:
    paths = [sysconfig.get_paths()[key] for key in ("purelib", "platlib")]
    return [Path(p) for p in dict.fromkeys(paths) if Path(p).is_dir()]


def run(paths: Sequence[Path]) -> Report:
    scan = Scan()
    # Parsing allocates millions of AST nodes, none in reference cycles; letting
    # the cyclic GC walk them over and over made large scans several times slower.
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        for file, display, path_name in iter_sources(paths):
            scan.add_file(file, display, path_name)
        return audit(scan)
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
    parser.add_argument(
        "--record",
        metavar="SECTION",
        help="also write the table as SECTION of docs/measurements.md",
    )
    args = parser.parse_args(argv)
    paths: list[Path] = args.paths or default_paths()
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        parser.error(f"no such file or directory: {', '.join(missing)}")  # exit 2
    report = run(paths)
    print(render_json(report) if args.format == "json" else render_table(report))
    if args.record:
        # imported here: the audit itself runs in any venv, even one without
        # the rest of the tools' dependencies
        from tools.measurements import invocation, record

        title = TITLES.get(args.record, f"Connect-timeout audit ({args.record})")
        record(
            args.record, render_table(report), invocation("tools.audit", argv), title
        )
    return 1 if any(f.verdict.startswith(LOSES) for f in report.findings) else 0


if __name__ == "__main__":
    sys.exit(main())
