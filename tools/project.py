"""The ground floor every tool stands on.

Where the project's files are, what is pinned and what the series calls
itself, how to run git and child processes in a clean environment, how
to create a venv. Nothing here imports another tool module but
`tools.compat` and `tools.names` (the error type and what a name may be),
which import none of ours, so any tool can import this without pulling
in a command.

The project root is this checkout, or the directory named by
AIOHTTP_SERIES_ROOT: the tooling tests point it at a throwaway project
with a synthetic pin, series and sdist.

Two series share the tools, and AIOHTTP_SERIES (make's SERIES) picks one:
"main", the series this project ships (upstream.toml and patches/ at the
top), and "forward", the fixes upstream's newest release still lacks,
rewritten for it and ready to send (forward/upstream.toml and
forward/patches/). Each keeps its checkout, venvs and reports apart.

`python -m tools.project make-vars` prints the paths and pins the
Makefile needs, and `python -m tools.project clean` removes what the
tools build (never the sdist cache, the checkout or FORCE=1's backups).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.compat import tomllib
from tools.names import (
    MAKE_VALUE,
    ToolError,
    checked_name,
    read_utf8,
    version_key,
    within,
)

# The tools take child processes and git from the ground floor: re-exported
# from the floor below.
from tools.process import LEAKY_VARIABLES as LEAKY_VARIABLES
from tools.process import SAFE_GIT_CONFIG as SAFE_GIT_CONFIG
from tools.process import clean_env as clean_env
from tools.process import export_tree as export_tree
from tools.process import git as git
from tools.process import git_ceiling as git_ceiling
from tools.process import git_env as git_env
from tools.process import git_identity as git_identity

ROOT_VARIABLE = "AIOHTTP_SERIES_ROOT"
ROOT = Path(
    os.environ.get(ROOT_VARIABLE) or Path(__file__).resolve().parent.parent
).resolve()

# ---------------------------------------------------------------- series

SERIES_VARIABLE = "AIOHTTP_SERIES"
SERIES_NAMES = ("main", "forward")


def series_name(value: str | None) -> str:
    """A series name as given (empty: main); anything else is refused."""
    name = value or "main"
    if name not in SERIES_NAMES:
        raise SystemExit(
            f"error: {SERIES_VARIABLE} (make's SERIES) is {name!r}; "
            f"name a series: {' or '.join(SERIES_NAMES)}"
        )
    return name


def series_root(name: str) -> Path:
    """Where a series keeps its pin (upstream.toml) and patches/."""
    return ROOT if name == "main" else ROOT / name


def series_pin_file(name: str) -> Path:
    return series_root(name) / "upstream.toml"


def series_patches(name: str) -> Path:
    return series_root(name) / "patches"


SERIES = series_name(os.environ.get(SERIES_VARIABLE))
MAIN = SERIES == "main"

# ---------------------------------------------------------------- layout

MATRIX_FILE = ROOT / "matrix.toml"
REQUIREMENTS = ROOT / "requirements"
DOCS = ROOT / "docs"
MEASUREMENTS = DOCS / "measurements.md"  # written by the measuring targets
BUILD = ROOT / "build"
CACHE_DIR = BUILD / "cache"  # verified sdists, shared by both series
# The series' own files, and what is built from them.
SERIES_ROOT = series_root(SERIES)
SERIES_BUILD = BUILD if MAIN else BUILD / SERIES
PIN_FILE = series_pin_file(SERIES)
PATCHES = series_patches(SERIES)
# Every pip install into a venv of the series: keeps aiohttp at the build.
CONSTRAINTS = (REQUIREMENTS if MAIN else SERIES_ROOT) / "constraints.txt"
CHECKOUT = SERIES_BUILD / "aiohttp"
# aiohttp's own tests that make test deselects, each with its reason
UPSTREAM_DESELECT = (ROOT / "tests" if MAIN else SERIES_ROOT) / "upstream-deselect.txt"
VENVS = {
    # our tools and the patched build; the forward series' has only the
    # patched build and what its release's own tests need
    "patched": ROOT / ".venv" if MAIN else SERIES_BUILD / "venvs" / "patched",
    "pristine": SERIES_BUILD / "venvs" / "pristine",
    # the patched build next to third-party add-ons, for `make audit-addons`
    "audit": BUILD / "venvs" / "audit",
}
TOOLS_VENV = ROOT / ".venv"  # our tools' requirements, whichever the series
DIST = ROOT / "dist"
DIST_SUMS = ROOT / "dist.sha256"  # beside dist/, so `twine check dist/*` passes

# What each tool writes and `make clean` removes (relative to ROOT; globs
# allowed). Not here, so kept: build/cache (the verified sdists),
# build/aiohttp (the checkout, which may hold work) and the backups
# FORCE=1 made (build/aiohttp.discarded, build/patches.discarded).
OUTPUTS = {
    "envs": (".venv", "build/venvs"),
    "tox": (".tox", "build/tox"),
    "rebase survey": ("build/rebase-survey.md",),
    "bench": ("build/bench",),
    "pr": ("build/pr", "build/.pr.*"),  # .pr.*: what a killed make pr left
    "upstream tests": ("build/upstream",),
    "intree": ("build/intree",),
    "wheel": ("build/wheel", "dist", "dist.sha256", "dist.lock"),
    "matrix": ("build/matrix",),
    "forward series": (
        "build/forward/venvs",
        "build/forward/pr",
        "build/forward/intree",
        "build/forward/upstream",
        "build/forward/tmp*",
    ),
    "races": ("build/races",),
    "audit": ("build/audit",),
    # scratch dirs (envs' too) and the swaps a killed apply/refresh left;
    # `make clean` runs `patchq recover` first, so none holds work by then
    "patch queue temp dirs": ("build/tmp*", "build/.aiohttp.*"),
    "make": ("build/project-*.mk",),  # make-vars' output, remade on demand
}

NO_CHECKOUT = "no checkout. Run `make apply` first."


def no_checkout(tree: Path) -> ToolError:
    """The one message for a tool that needs build/aiohttp and finds none."""
    return ToolError(f"{tree}: {NO_CHECKOUT}")


def require_checkout(tree: Path = CHECKOUT) -> Path:
    if not (tree / ".git").is_dir() or (tree / ".git").is_symlink():
        raise no_checkout(tree)
    return tree


# ---------------------------------------------------------------- pins


@dataclass(frozen=True)
class Pin:
    """One upstream sdist, pinned by sha256."""

    name: str
    version: str
    sdist: str
    sha256: str

    @property
    def tag(self) -> str:
        return f"v{self.version}"


@dataclass(frozen=True)
class SeriesVersion:
    """The version of a patched build: the release plus the series label."""

    upstream: str
    label: str

    def __str__(self) -> str:  # PEP 440 local version: 3.10.10+connect.timeout.1
        return f"{self.upstream}+{self.label}"


def _read_toml(path: Path, table: str, needs: str) -> dict[str, object]:
    try:
        data = tomllib.loads(read_utf8(path))[table]
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise ToolError(
            f"{path}: cannot read [{table}] ({exc}); it needs {needs}"
        ) from exc
    if not isinstance(data, dict):
        raise ToolError(f"{path}: [{table}] is not a table; it needs {needs}")
    return data


def checked_pin(pin: Pin, where: Path) -> Pin:
    """The pin with its sha256 in lower case; refuse any field that is not
    what its name says (checked_name)."""
    for kind, value in (
        ("project name", pin.name),
        ("version", pin.version),
        ("sdist", pin.sdist),
        ("sha256", pin.sha256),
    ):
        checked_name(kind, value, where)
    return Pin(pin.name, pin.version, pin.sdist, pin.sha256.lower())


def load_pin(path: Path = PIN_FILE) -> Pin:
    """upstream.toml's [upstream] pin: the release the series applies to."""
    needs = "name, version, sdist and sha256"
    data = _read_toml(path, "upstream", needs)
    missing = [k for k in ("name", "version", "sdist", "sha256") if k not in data]
    if missing:
        raise ToolError(f"{path}: [upstream] has no {missing[0]}; it needs {needs}")
    fields = {k: data[k] for k in ("name", "version", "sdist", "sha256")}
    wrong = [k for k, v in fields.items() if not isinstance(v, str)]
    if wrong:
        raise ToolError(f'{path}: [upstream] {wrong[0]} must be a "string"')
    return checked_pin(Pin(**{k: str(v) for k, v in fields.items()}), path)


def series_version(path: Path = PIN_FILE) -> SeriesVersion:
    """What patched builds are called: upstream.toml's version and [series] label."""
    label = _read_toml(path, "series", "label = <PEP 440 local label>").get("label")
    if not isinstance(label, str) or not label:
        raise ToolError(f'{path}: [series] has no label; add label = "..."')
    checked_name("series label", label, f"{path}: [series]")
    return SeriesVersion(load_pin(path).version, label)


def matrix_pins(path: Path = MATRIX_FILE, main: Pin | None = None) -> list[Pin]:
    """The main pin plus matrix.toml's [sdists], oldest release first."""
    main = main or load_pin()
    table = _read_toml(path, "sdists", 'lines of "version" = "sha256"')
    pins = {main.version: main}
    for version, sha in table.items():
        if version == main.version:
            if str(sha).lower() != main.sha256:
                raise ToolError(
                    f"{path}: pins {version} to {sha}, but upstream.toml pins "
                    f"{main.sha256}; remove the line (upstream.toml holds it)."
                )
            continue
        name = f"{main.name}-{version}.tar.gz"
        pins[version] = checked_pin(Pin(main.name, version, name, str(sha)), path)
    return sorted(pins.values(), key=lambda p: version_key(p.version))


# ---------------------------------------------------------------- venvs


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def pip(venv: Path, *args: str) -> None:
    """Run the venv's pip, quietly about its own version."""
    cmd = [str(venv_python(venv)), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*cmd, *args], check=True, env=clean_env())


def make_venv(venv: Path, python: str | Path = sys.executable) -> Path:
    """A new venv of `python` with the pinned pip and setuptools; its python."""
    subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
    pip(venv, "install", "--quiet", "-c", str(CONSTRAINTS), "pip", "setuptools")
    return venv_python(venv)


VENV_STAMP = "series-stamp.json"  # inside a venv: what it was made from


def files_digest(*paths: Path, extra: str = "") -> str:
    """sha256 over the files' names and bytes (and extra): a venv's inputs."""
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def read_stamp(venv: Path) -> dict[str, str]:
    try:
        stamp = json.loads((venv / VENV_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def write_stamp(venv: Path, **values: str) -> None:
    """Record in the venv what it now holds (merged into the old stamp)."""
    stamp = {**read_stamp(venv), **values}
    (venv / VENV_STAMP).write_text(json.dumps(stamp, indent=1) + "\n", "utf-8")


def stamped_venv(
    venv: Path, python: str | Path = sys.executable, **inputs: str
) -> Path:
    """The venv, made anew unless its stamp says this very interpreter made
    it from the same inputs (a venv of another Python holds wheels that
    would not fit)."""
    want = {
        "python": os.path.realpath(python),
        "version": subprocess.run(
            [str(python), "-c", "import sys; print(sys.version)"],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout.strip(),
        **inputs,
    }
    stamp = read_stamp(venv)
    if not venv_python(venv).exists() or any(
        stamp.get(k) != v for k, v in want.items()
    ):
        shutil.rmtree(venv, ignore_errors=True)
        make_venv(venv, python)
        write_stamp(venv, **want)
    return venv


# ---------------------------------------------------------------- make


def relative(path: Path) -> str:
    """path relative to ROOT, for the Makefile (which runs in ROOT)."""
    return os.path.relpath(path, ROOT)


def make_vars() -> dict[str, str]:
    """What the Makefile reads instead of parsing files itself.

    Every value was checked where it was read (load_pin, series_version);
    the check here keeps a future one from reaching make unchecked.
    """
    pin = load_pin()
    values = {
        "VENV": relative(VENVS["patched"]),
        "PRISTINE": relative(VENVS["pristine"]),
        "AUDIT_VENV": relative(VENVS["audit"]),
        "TOOLS_VENV": relative(TOOLS_VENV),
        "SERIES_BUILD": relative(SERIES_BUILD),
        "UPSTREAM_DESELECT": relative(UPSTREAM_DESELECT),
        "CHECKOUT": relative(CHECKOUT),
        "UPSTREAM_VERSION": pin.version,
        "UPSTREAM_TAG": pin.tag,
        "SERIES_VERSION": str(series_version()),
    }
    for name, value in values.items():
        if not MAKE_VALUE.fullmatch(value):
            raise ToolError(f"{name} would be {value!r}, which make cannot hold")
    return values


def clean(root: Path = ROOT) -> list[Path]:
    """Remove every tool's outputs (OUTPUTS); return what was removed."""
    removed: list[Path] = []
    for patterns in OUTPUTS.values():
        for rel in patterns:
            for path in sorted(root.glob(rel)) if "*" in rel else [root / rel]:
                within(root, path.parent)  # a link must not lead rmtree out
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
                else:
                    continue
                removed.append(path)
    return removed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["make-vars"]:
            for name, value in make_vars().items():
                print(f"{name} := {value}")
        elif args == ["clean"]:
            for path in clean():
                print(f"removed {relative(path)}")
        else:
            print("usage: python -m tools.project make-vars | clean", file=sys.stderr)
            return 2
    except (ToolError, OSError) as exc:  # OSError: a fault `make clean` met
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
