# Front door. The logic lives in tools/*.py; each target is a line or two.
#   make apply && make test      everything a fresh machine needs
#   make help                    the targets, one line each (## below)
PYTHON ?= python3
.DEFAULT_GOAL := help
# What a user gives make (make pr PR_NAME='Ann $USER Lee') reaches the tools
# as it was typed, through the environment: a recipe reads it as "$$NAME",
# so make never expands it ($U, $(shell ...)) and no shell parses it.
USER_VARIABLES := TO VERSIONS BUILDS PR_NAME PR_EMAIL PR_NUMBER MODE ROUNDS \
	INSTR_ROUNDS AUDIT_PATHS EXTRA_DEBIAN FORCE
$(foreach v,$(USER_VARIABLES),$(if $(filter command environment,$(origin $(v))),\
	$(eval override $(v) := $$(value $(v)))))
export $(USER_VARIABLES)
# SERIES=forward: the forward series (forward/upstream.toml, forward/patches/),
# the fixes upstream's newest release lacks. apply, unapply, refresh, rebase*,
# venv*, test, test-pristine and pr act on it; the default is main. Read raw
# ($(value ...)), checked here and passed on in the environment only.
SERIES ?= main
SERIES_NAME := $(value SERIES)
ifneq ($(filter-out main forward,$(SERIES_NAME))$(words $(SERIES_NAME)),1)
$(error SERIES must be main or forward)
endif
export AIOHTTP_SERIES := $(SERIES_NAME)
# Paths and pins come from the tools (VENV, PRISTINE, AUDIT_VENV, TOOLS_VENV,
# SERIES_BUILD, CHECKOUT, UPSTREAM_VERSION, UPSTREAM_TAG, SERIES_VERSION):
# make writes them to build/project-<series>.mk, rereads it, and rewrites it
# when the series' pin changes.
PROJECT_MK := build/project-$(SERIES_NAME).mk
# clean and help need none: a broken pin cannot stop them
ifneq ($(filter-out clean help,$(or $(MAKECMDGOALS),help)),)
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
# (for the forward series, the three its patches touch); the tests deselected
# there are in $(UPSTREAM_DESELECT), each with its reason.
ifeq ($(SERIES_NAME),forward)
UPSTREAM_MODULES := test_connector.py test_client_session.py \
	test_client_functional.py
else
UPSTREAM_MODULES := test_connector.py test_client_session.py \
	test_client_functional.py test_client_request.py test_tracing.py \
	test_proxy.py test_client_ws.py
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


.PHONY: help apply unapply refresh rebase rebase-continue rebase-abort \
	rebase-survey system-deps venv venv-pristine tools-venv test test-tools \
	test-series test-patch test-bench test-upstream-selected test-integration \
	test-slow test-upstream test-upstream-pristine test-selected-pristine \
	test-forward-series test-pristine changelog lint wheel wheels wheel-smoke pr \
	bench bench-load matrix races tox audit audit-addons clean

help: ## this list (SERIES=forward: apply ... pr act on the forward series)
	@sed -n 's/^\([a-z-]*\):.*## \(.*\)/\1\t\2/p' "$(firstword $(MAKEFILE_LIST))" \
		| expand -t 24

# apply and rebase need pip from Debian (git applies the patches), not quilt
apply: ## build/aiohttp: the pinned sdist, then one commit per patch (FORCE=1)
	@$(PYTHON) -m tools.sysdeps python3-pip
	$(PYTHON) -m tools.patchq apply $(FORCE_FLAG)

unapply: ## build/aiohttp back at the pristine sdist (FORCE=1)
	$(PYTHON) -m tools.patchq unapply $(FORCE_FLAG)

refresh: ## the commits above the tag in build/aiohttp -> patches/ (FORCE=1)
	$(PYTHON) -m tools.patchq refresh $(FORCE_FLAG)

# Carry the series to the release upstream.toml pins, or to TO=3.10.9
# (its sha256 from matrix.toml); see README "make rebase".
rebase: ## carry the series to the release upstream.toml pins, or TO=version
	@$(PYTHON) -m tools.sysdeps python3-pip
	$(PYTHON) -m tools.rebase $${TO:+--to "$$TO"}

rebase-continue: ## go on after resolving a conflict of make rebase
	$(PYTHON) -m tools.rebase --continue

rebase-abort: ## undo make rebase: the checkout as it was before it
	$(PYTHON) -m tools.rebase --abort

# What `make rebase TO=…` does for each release in matrix.toml, each tried
# in a scratch copy; recorded in docs/measurements.md.
rebase-survey: ## make rebase to each release of matrix.toml, in scratch copies
	@$(PYTHON) -m tools.sysdeps python3-pip
	$(PYTHON) -m tools.rebase_survey $${VERSIONS:+--versions "$$VERSIONS"}

# Installs what is missing when root; otherwise prints the apt-get line.
# Also python3-pip and pythonX.Y-venv when PYTHON is Debian's own.
system-deps: ## the Debian packages the targets call (EXTRA_DEBIAN=...)
	@set -f; $(PYTHON) -m tools.sysdeps $(DEBIAN_PACKAGES) python3-pip \
		python3-venv $$EXTRA_DEBIAN

venv: system-deps ## .venv/ with the patched build and the test tools
	$(PYTHON) -m tools.envs patched

venv-pristine: system-deps ## build/venvs/pristine with the pristine sdist
	$(PYTHON) -m tools.envs pristine

# Our tools' own venv (.venv, the main series' patched build); the forward
# series runs its checks and make pr there.
tools-venv: ## .venv/, whichever the series (the forward series' tools run there)
	$(MAKE) venv SERIES=main

ifeq ($(SERIES_NAME),forward)
# The forward series on its release: the behaviour tests on its build;
# aiohttp's own client and connector modules on its tree and on the release
# as upstream made it (both pass, with the same deselects); each forward
# patch's in-tree tests (fail without it, pass with it); and the series'
# own checks (DEP-3, quilt, git am, the round trip through refresh).
test: venv venv-pristine tools-venv
	$(MAKE) test-patch test-upstream-selected test-selected-pristine
	$(PYTHON) -m tools.intree
	$(MAKE) test-forward-series
else
# Every test but the slow ones (marked slow), which `make test-slow` runs
# and .ci/run adds. Two lanes at once, one per core, each target's output
# shown whole when it ends: the tooling's tests, and test-series.
test: venv ## every test but the slow ones (test-slow); SERIES=forward: its own
	$(MAKE) --jobs=2 --output-sync=target test-tools test-series
endif

# The series and the real checkout: test-integration last, since it reads
# the junit that test-upstream-selected writes.
test-series: ## test-patch, test-bench, test-upstream-selected, test-integration
	$(MAKE) test-patch test-bench test-upstream-selected
	$(MAKE) test-integration

test-tools: ## the tests of the tooling (tests/tools)
	$(VENV)/bin/python -m pytest tests/tools -m "not slow"

test-patch: ## the behaviour tests of the series (tests/patch)
	$(VENV)/bin/python -m pytest tests/patch

# The benchmarks as quick ordinary tests, so they cannot rot.
test-bench: ## the benchmarks as quick ordinary tests
	$(VENV)/bin/python -m pytest bench

# make pr, changelog and wheel on the real series (needs `make apply`).
test-integration: ## the checks of the real checkout (tests/integration)
	$(VENV)/bin/python -m pytest tests/integration -m "not slow"

# The tests marked slow: apply, unapply and refresh SIGKILLed at every
# step, make apply with every Python, the in-tree check end to end, two
# full wheel builds byte for byte and their hash locks installed.
test-slow: venv ## the slow tests, which .ci/run adds to make test
	$(VENV)/bin/python -m pytest -m slow tests/tools tests/integration

# The forward series' own checks, from the tools' venv.
test-forward-series: ## DEP-3, quilt, git am, refresh and pr of SERIES=forward
	$(TOOLS_VENV)/bin/python -m pytest tests/integration/test_series_real.py \
		tests/integration/test_pr_real.py

test-upstream-selected: ## aiohttp's own client and connector test modules
	$(call UPSTREAM_PYTEST,$(VENV),selected-modules,$(addprefix tests/,$(UPSTREAM_MODULES)))

# The whole upstream suite on the patched tree; the same on pristine shows
# that the deselect list hides no regression.
test-upstream: venv ## aiohttp's whole suite on the patched tree
	$(call UPSTREAM_PYTEST,$(VENV),whole-suite,tests)

# Pristine runs pristine's own tests (the series adds tests that need it).
PRISTINE_SRC = $(SERIES_BUILD)/upstream/pristine-src
test-upstream-pristine: venv-pristine ## aiohttp's whole suite on pristine
	$(PYTHON) -m tools.envs pristine --export-source $(PRISTINE_SRC)
	$(call UPSTREAM_PYTEST,$(PRISTINE),whole-suite-pristine,tests,$(PRISTINE_SRC))

test-selected-pristine: venv-pristine ## aiohttp's selected modules on pristine
	$(PYTHON) -m tools.envs pristine --export-source $(PRISTINE_SRC)
	$(call UPSTREAM_PYTEST,$(PRISTINE),selected-modules-pristine,$(addprefix tests/,$(UPSTREAM_MODULES)),$(PRISTINE_SRC))

# Our behaviour tests against pristine $(UPSTREAM_VERSION): passes only when exactly the
# tests marked proves_patch (proves_forward for the forward series) fail
# there (strict xfail) and all others pass.
# Then the tests each patch adds to aiohttp's suite: they must fail, in
# bounded time, on pristine and without the patch, and pass with it.
test-pristine: venv-pristine ## each patch's tests fail without it, pass with it
	$(PRISTINE)/bin/python -m pytest tests/patch --expect-pristine
	$(PYTHON) -m tools.intree

changelog: venv ## towncrier drafts of aiohttp's fragments and ours
	$(VENV)/bin/python -m tools.changelog

# With SERIES=forward, aiohttp's linters run on the forward series' files.
lint: tools-venv ## aiohttp's linters on the series, ruff and mypy on ours
	$(TOOLS_VENV)/bin/python -m tools.lint

wheel: venv ## a reproducible sdist and wheel in dist/
	$(VENV)/bin/python -m tools.wheel build

# One wheel per Python 3.9-3.13 the machine has (pyenv, setup-python's,
# PATH); a missing one is skipped. Each with its hash lock in dist.lock/.
wheels: venv ## one wheel and hash lock per Python 3.9-3.13 found
	$(VENV)/bin/python -m tools.wheel build --all

wheel-smoke: venv ## each wheel in a fresh venv of its own Python
	$(VENV)/bin/python -m tools.wheel smoke

# The sender: PR_NAME / PR_EMAIL, else git config user.name / user.email.
pr: tools-venv ## build/pr: cover letter and mails (PR_NAME=, PR_EMAIL=, PR_NUMBER=)
	$(TOOLS_VENV)/bin/python -m tools.pr $${PR_NAME:+--name "$$PR_NAME"} \
		$${PR_EMAIL:+--email "$$PR_EMAIL"} $${PR_NUMBER:+--pr-number "$$PR_NUMBER"}

bench: venv venv-pristine ## pristine against patched (MODE=, ROUNDS=)
	$(MAKE) system-deps EXTRA_DEBIAN="$(BENCH_DEBIAN_PACKAGES)"
	$(VENV)/bin/python -m tools.bench --mode "$${MODE:-instructions}" \
		$${ROUNDS:+--rounds "$$ROUNDS"}

# Wall-clock rounds (ROUNDS) and rounds of each client under callgrind
# (INSTR_ROUNDS, 0 for none), pristine, patched and 3.10.11.
bench-load: venv venv-pristine ## the keep-alive load (ROUNDS=, INSTR_ROUNDS=)
	$(MAKE) system-deps EXTRA_DEBIAN="$(BENCH_DEBIAN_PACKAGES)"
	$(VENV)/bin/python -m tools.bench load $${ROUNDS:+--rounds "$$ROUNDS"} \
		$${INSTR_ROUNDS:+--instr-rounds "$$INSTR_ROUNDS"}

matrix: venv ## the series on each pinned release (VERSIONS=a,b)
	$(VENV)/bin/python -m tools.matrix $${VERSIONS:+--versions "$$VERSIONS"}

# The behaviour tests against pristine, the series and the newest release of
# each aiohttp line (matrix.toml [races]): the race table in
# docs/measurements.md, and build/races/races.json, from which make matrix
# learns which patches a release already has. BUILDS=3.10.10,3.14.5 limits it.
races: venv ## the race table: the behaviour tests on each release (BUILDS=)
	$(VENV)/bin/python -m tools.races $${BUILDS:+--builds "$$BUILDS"}

# The behaviour tests on Python 3.9 to 3.13, found by toxfile.py wherever
# the machine keeps them (pyenv too); a missing one is skipped.
# Its summary (per-Python results and test counts) goes to
# docs/measurements.md; tox's own exit status is make's.
tox: venv ## the behaviour tests on Python 3.9 to 3.13
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
audit: venv ## connector subclasses that lose the timeout (AUDIT_PATHS=)
	set -f; $(VENV)/bin/python -m tools.audit $${AUDIT_PATHS:---record audit}

# The audit over a venv holding the add-ons in requirements/audit.txt.
audit-addons: system-deps ## the audit next to the add-ons of requirements/audit.txt
	$(PYTHON) -m tools.envs audit
	mkdir -p build/audit
	$(AUDIT_VENV)/bin/python -m tools.audit --record audit-addons \
		| tee build/audit/addons.md

# Keeps the sdist cache, the checkout and the backups FORCE=1 made
# (build/aiohttp.discarded/, build/patches.discarded/); first finishes a
# swap that a killed apply/refresh left, so no temp dir holds user work.
# Each tool says what is its own (tools.project.OUTPUTS).
clean: ## remove what the tools built; keep the sdists, checkout and backups
	$(PYTHON) -m tools.patchq recover
	$(PYTHON) -m tools.project clean
