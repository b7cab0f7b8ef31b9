# Front door. The logic lives in tools/*.py; each target is a line or two.
#   make apply && make test      everything a fresh machine needs
PYTHON ?= python3
# SERIES=forward: the forward series (forward/upstream.toml, forward/patches/),
# the fixes upstream's newest release lacks. apply, unapply, refresh, rebase*,
# venv*, test, test-pristine, lint and pr act on it; the default is main.
# Read raw ($(value ...)), checked here and passed on in the environment only.
SERIES ?= main
SERIES_NAME := $(value SERIES)
ifneq ($(filter-out main forward,$(SERIES_NAME))$(words $(SERIES_NAME)),1)
$(error SERIES must be main or forward)
endif
export AIOHTTP_SERIES := $(SERIES_NAME)
# Paths and pins come from the tools (VENV, PRISTINE, AUDIT_VENV, TOOLS_VENV,
# SERIES_BUILD, CHECKOUT, UPSTREAM_VERSION, UPSTREAM_TAG, SERIES_VERSION):
# make writes them to build/project-<series>.mk, rereads it, and rewrites it
# when a pin changes.
PROJECT_MK := build/project-$(SERIES_NAME).mk
ifneq ($(MAKECMDGOALS),clean)  # clean needs none: a broken pin cannot stop it
include $(PROJECT_MK)
endif
$(PROJECT_MK): $(if $(filter forward,$(SERIES_NAME)),forward/)upstream.toml \
		tools/project.py
	@mkdir -p $(@D)
	@$(PYTHON) -m tools.project make-vars >$@.tmp || { rm -f $@.tmp; exit 1; }
	@mv $@.tmp $@
FORCE_FLAG := $(if $(FORCE),--force)
# Debian packages that targets call; installed when missing (needs root).
DEBIAN_PACKAGES := patch quilt
BENCH_DEBIAN_PACKAGES := valgrind
# aiohttp's own test modules that exercise the client and connector paths
# (for the forward series, the three its patches touch), and the tests
# deselected there, each with its reason.
ifeq ($(SERIES_NAME),forward)
UPSTREAM_MODULES := test_connector.py test_client_session.py \
	test_client_functional.py
UPSTREAM_DESELECT := forward/upstream-deselect.txt
else
UPSTREAM_MODULES := test_connector.py test_client_session.py \
	test_client_functional.py test_client_request.py test_tracing.py \
	test_proxy.py test_client_ws.py
UPSTREAM_DESELECT := tests/upstream-deselect.txt
endif
# Run from the checkout with `bin/pytest`, not `python -m pytest`, so that
# `import aiohttp` finds the compiled build in the venv, not the sources.
# $(1): venv, $(2): junit name, $(3): test paths, $(4): tree ($(CHECKOUT)).
# aiohttp keeps its pytest settings in pytest.ini from 3.12 on, before in
# setup.cfg. Paths quoted: the clone may live in a directory with a space.
UPSTREAM_PYTEST = cd "$(or $(4),$(CHECKOUT))" && PYTHONPATH="$(CURDIR)" \
	"$(CURDIR)/$(1)/bin/pytest" \
	-c "$$(if [ -f pytest.ini ]; then echo pytest.ini; else echo setup.cfg; fi)" \
	-o addopts= -p no:cacheprovider -m "not dev_mode" -q -p tools.pytest_upstream \
	--deselect-file="$(CURDIR)/$(UPSTREAM_DESELECT)" \
	--junitxml="$(CURDIR)/$(SERIES_BUILD)/upstream/$(2).xml" $(3)

.PHONY: apply unapply refresh rebase rebase-continue rebase-abort rebase-survey system-deps venv venv-pristine test test-tools \
	test-patch test-bench test-upstream-selected test-integration test-series test-slow \
	test-upstream test-upstream-pristine test-upstream-selected-pristine \
	test-forward-series tools-venv test-pristine changelog lint wheel wheels wheel-smoke pr \
	bench bench-load matrix races tox audit audit-addons clean

# apply and rebase need only GNU patch (and pip) from Debian, not quilt
apply:
	@$(PYTHON) -m tools.sysdeps patch python3-pip
	$(PYTHON) -m tools.patchq apply $(FORCE_FLAG)

unapply:
	$(PYTHON) -m tools.patchq unapply $(FORCE_FLAG)

refresh:
	$(PYTHON) -m tools.patchq refresh $(FORCE_FLAG)

# Carry the series to the release upstream.toml pins, or to TO=3.10.9
# (its sha256 from matrix.toml); see README "make rebase".
rebase:
	@$(PYTHON) -m tools.sysdeps patch python3-pip
	$(PYTHON) -m tools.rebase $(if $(TO),--to $(TO))

rebase-continue:
	$(PYTHON) -m tools.rebase --continue

rebase-abort:
	$(PYTHON) -m tools.rebase --abort

# What `make rebase TO=…` does for each release in matrix.toml, each tried
# in a scratch copy; recorded in docs/measurements.md.
rebase-survey:
	@$(PYTHON) -m tools.sysdeps patch python3-pip
	$(PYTHON) -m tools.rebase_survey $(if $(VERSIONS),--versions $(VERSIONS))

# Installs what is missing when root; otherwise prints the apt-get line.
# Also python3-pip and pythonX.Y-venv when PYTHON is Debian's own.
system-deps:
	@$(PYTHON) -m tools.sysdeps $(DEBIAN_PACKAGES) python3-pip python3-venv \
		$(EXTRA_DEBIAN)

venv: system-deps
	$(PYTHON) -m tools.envs patched

venv-pristine: system-deps
	$(PYTHON) -m tools.envs pristine

ifeq ($(SERIES_NAME),forward)
# The forward series on its release: the behaviour tests on its build;
# aiohttp's own client and connector modules on its tree and on the release
# as upstream made it (both pass, with the same deselects); each forward
# patch's in-tree tests (fail without it, pass with it); and the series'
# own checks (DEP-3, quilt, git am, the round trip through refresh).
test: venv venv-pristine tools-venv
	$(MAKE) test-patch test-upstream-selected test-upstream-selected-pristine
	$(PYTHON) -m tools.intree
	$(MAKE) test-forward-series
else
# Every test but the slow ones (marked slow), which `make test-slow` runs
# and .ci/run adds. Two lanes at once, one per core, each target's output
# shown whole when it ends: the tooling's tests, and test-series.
test: venv
	$(MAKE) --jobs=2 --output-sync=target test-tools test-series
endif

# The series and the real checkout: test-integration last, since it reads
# the junit that test-upstream-selected writes.
test-series:
	$(MAKE) test-patch test-bench test-upstream-selected
	$(MAKE) test-integration

# Our tools' own venv (.venv, the main series' patched build); the forward
# series runs its checks and make pr there.
tools-venv:
	$(MAKE) venv SERIES=main

test-forward-series:
	$(TOOLS_VENV)/bin/python -m pytest tests/integration/test_series_real.py

test-tools:
	$(VENV)/bin/python -m pytest tests/tools -m "not slow"

test-patch:
	$(VENV)/bin/python -m pytest tests/patch

# The benchmarks as quick ordinary tests, so they cannot rot.
test-bench:
	$(VENV)/bin/python -m pytest bench

# make pr, changelog and wheel on the real series (needs `make apply`).
test-integration:
	$(VENV)/bin/python -m pytest tests/integration -m "not slow"

# The tests marked slow: apply, unapply and refresh SIGKILLed at every
# step, make apply with every Python, the in-tree check end to end, two
# full wheel builds byte for byte and their hash locks installed.
test-slow: venv
	$(VENV)/bin/python -m pytest -m slow tests/tools tests/integration

test-upstream-selected:
	$(call UPSTREAM_PYTEST,$(VENV),selected-modules,$(addprefix tests/,$(UPSTREAM_MODULES)))

# The whole upstream suite on the patched tree; the same on pristine shows
# that the deselect list hides no regression.
test-upstream: venv
	$(call UPSTREAM_PYTEST,$(VENV),whole-suite,tests)

# Pristine runs pristine's own tests (the series adds tests that need it).
PRISTINE_SRC = $(SERIES_BUILD)/upstream/pristine-src
test-upstream-pristine: venv-pristine
	$(PYTHON) -m tools.envs pristine --export-source $(PRISTINE_SRC)
	$(call UPSTREAM_PYTEST,$(PRISTINE),whole-suite-pristine,tests,$(PRISTINE_SRC))

test-upstream-selected-pristine: venv-pristine
	$(PYTHON) -m tools.envs pristine --export-source $(PRISTINE_SRC)
	$(call UPSTREAM_PYTEST,$(PRISTINE),selected-modules-pristine,$(addprefix tests/,$(UPSTREAM_MODULES)),$(PRISTINE_SRC))

# Our behaviour tests against pristine $(UPSTREAM_VERSION): passes only when exactly the
# tests marked proves_patch (proves_forward for the forward series) fail
# there (strict xfail) and all others pass.
# Then the tests each patch adds to aiohttp's suite: they must fail, in
# bounded time, on pristine and without the patch, and pass with it.
test-pristine: venv-pristine
	$(PRISTINE)/bin/python -m pytest tests/patch --expect-pristine
	$(PYTHON) -m tools.intree

changelog: venv
	$(VENV)/bin/python -m tools.changelog

lint: venv
	$(VENV)/bin/python -m tools.lint

wheel: venv
	$(VENV)/bin/python -m tools.wheel build

# One wheel per Python 3.9-3.13 the machine has (pyenv, setup-python's,
# PATH); a missing one is skipped. Each with its hash lock in dist.lock/.
wheels: venv
	$(VENV)/bin/python -m tools.wheel build --all

wheel-smoke: venv
	$(VENV)/bin/python -m tools.wheel smoke

# The sender: PR_NAME / PR_EMAIL, else git config user.name / user.email.
pr: tools-venv
	$(TOOLS_VENV)/bin/python -m tools.pr $(if $(PR_NAME),--name "$(PR_NAME)") \
		$(if $(PR_EMAIL),--email "$(PR_EMAIL)")

bench: venv venv-pristine
	$(MAKE) system-deps EXTRA_DEBIAN="$(BENCH_DEBIAN_PACKAGES)"
	$(VENV)/bin/python -m tools.bench --mode $(or $(MODE),instructions) \
		$(if $(ROUNDS),--rounds $(ROUNDS))

# Wall-clock rounds (ROUNDS) and rounds of each client under callgrind
# (INSTR_ROUNDS, 0 for none), pristine, patched and 3.10.11.
bench-load: venv venv-pristine
	$(MAKE) system-deps EXTRA_DEBIAN="$(BENCH_DEBIAN_PACKAGES)"
	$(VENV)/bin/python -m tools.bench load $(if $(ROUNDS),--rounds $(ROUNDS)) \
		$(if $(INSTR_ROUNDS),--instr-rounds $(INSTR_ROUNDS))

matrix: venv
	$(VENV)/bin/python -m tools.matrix $(if $(VERSIONS),--versions $(VERSIONS))

# The behaviour tests against pristine, the series and the newest release of
# each aiohttp line (matrix.toml [races]): the race table in
# docs/measurements.md, and build/races/races.json, from which make matrix
# learns which patches a release already has. BUILDS=3.10.10,3.14.5 limits it.
races: venv
	$(VENV)/bin/python -m tools.races $(if $(BUILDS),--builds "$(BUILDS)")

# The behaviour tests on Python 3.9 to 3.13, found by toxfile.py wherever
# the machine keeps them (pyenv too); a missing one is skipped.
# Its summary (per-Python results and test counts) goes to
# docs/measurements.md; tox's own exit status is make's.
tox: venv
	mkdir -p build/tox
	{ $(VENV)/bin/tox run -e py39,py310,py311,py312,py313 2>&1; \
		echo $$? > build/tox/status; } | tee build/tox/tox.log
	{ echo '```'; grep -E '^ *py3[0-9]+: (OK|FAIL)|passed|failed|congratulations' \
		build/tox/tox.log; echo '```'; } | $(VENV)/bin/python -m tools.measurements \
		record tox - --title "Behaviour tests on Python 3.9-3.13 (make tox)" \
		--command "make tox"
	exit $$(cat build/tox/status)

AUDIT_PATHS ?=
# The default scan is recorded in docs/measurements.md; a scan of AUDIT_PATHS is not.
audit: venv
	$(VENV)/bin/python -m tools.audit $(if $(AUDIT_PATHS),,--record audit) $(AUDIT_PATHS)

# The audit over a venv holding the add-ons in requirements/audit.txt.
audit-addons: system-deps
	$(PYTHON) -m tools.envs audit
	mkdir -p build/audit
	$(AUDIT_VENV)/bin/python -m tools.audit --record audit-addons \
		| tee build/audit/addons.md

# Keeps the sdist cache, the checkout and the backups FORCE=1 made
# (build/aiohttp.discarded/, build/patches.discarded/); first finishes a
# swap that a killed apply/refresh left, so no temp dir holds user work.
# Each tool says what is its own (tools.project.OUTPUTS).
clean:
	$(PYTHON) -m tools.patchq recover
	$(PYTHON) -m tools.project clean
