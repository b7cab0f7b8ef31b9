# Front door. The logic lives in tools/*.py; each target is a line or two.
#   make apply && make test      everything a fresh machine needs
#   make help                    the targets, one line each (## below)
PYTHON ?= python3
.DEFAULT_GOAL := help
# What a user gives make (make pr PR_NAME='Ann $USER Lee') reaches the tools
# as it was typed, through the environment: a recipe reads it as "$$NAME",
# so make never expands it ($U, $(shell ...)) and no shell parses it.
USER_VARIABLES := TO VERSIONS PR_NAME PR_EMAIL MODE ROUNDS AUDIT_PATHS \
	EXTRA_DEBIAN FORCE
$(foreach v,$(USER_VARIABLES),$(if $(filter command environment,$(origin $(v))),\
	$(eval override $(v) := $$(value $(v)))))
export $(USER_VARIABLES)
# Paths and pins come from the tools (VENV, PRISTINE, AUDIT_VENV, CHECKOUT,
# UPSTREAM_VERSION, UPSTREAM_TAG, SERIES_VERSION): make writes them to
# build/project.mk, rereads it, and rewrites it when upstream.toml changes.
PROJECT_MK := build/project.mk
# clean and help need none: a broken pin cannot stop them
ifneq ($(filter-out clean help,$(or $(MAKECMDGOALS),help)),)
include $(PROJECT_MK)
endif
$(PROJECT_MK): upstream.toml tools/project.py
	@mkdir -p $(@D)
	@$(PYTHON) -m tools.project make-vars >$@.tmp || { rm -f $@.tmp; exit 1; }
	@mv $@.tmp $@
FORCE_FLAG := $(if $(FORCE),--force)
# Debian packages that targets call; installed when missing (needs root).
DEBIAN_PACKAGES := patch quilt
BENCH_DEBIAN_PACKAGES := valgrind
# aiohttp's own test modules that exercise the client and connector paths.
UPSTREAM_MODULES := test_connector.py test_client_session.py \
	test_client_functional.py test_client_request.py test_tracing.py \
	test_proxy.py test_client_ws.py
# Run from the checkout with `bin/pytest`, not `python -m pytest`, so that
# `import aiohttp` finds the compiled build in the venv, not the sources.
# $(1): venv, $(2): junit name, $(3): test paths, $(4): tree ($(CHECKOUT))
# Paths quoted: the clone may live in a directory whose name has a space.
UPSTREAM_PYTEST = cd "$(or $(4),$(CHECKOUT))" && PYTHONPATH="$(CURDIR)" \
	"$(CURDIR)/$(1)/bin/pytest" -c setup.cfg -o addopts= -p no:cacheprovider \
	-m "not dev_mode" -q -p tools.pytest_upstream \
	--deselect-file="$(CURDIR)/tests/upstream-deselect.txt" \
	--junitxml="$(CURDIR)/build/upstream/$(2).xml" $(3)

.PHONY: help apply unapply refresh rebase rebase-continue rebase-abort rebase-survey system-deps venv venv-pristine test test-tools \
	test-patch test-bench test-upstream-selected test-integration test-upstream \
	test-upstream-pristine test-pristine changelog lint wheel wheels wheel-smoke pr \
	bench bench-load matrix tox audit audit-addons clean

help: ## this list: each target and what it does
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

# test-integration last: the tooling checks that need the real checkout.
test: venv ## all of the test- targets below but pristine and upstream
	$(MAKE) test-tools test-patch test-bench test-upstream-selected
	$(MAKE) test-integration

test-tools: ## the tests of the tooling (tests/tools)
	$(VENV)/bin/python -m pytest tests/tools

test-patch: ## the behaviour tests of the series (tests/patch)
	$(VENV)/bin/python -m pytest tests/patch

# The benchmarks as quick ordinary tests, so they cannot rot.
test-bench: ## the benchmarks as quick ordinary tests
	$(VENV)/bin/python -m pytest bench

# make pr, changelog and wheel on the real series (needs `make apply`).
test-integration: ## the checks of the real checkout (tests/integration)
	$(VENV)/bin/python -m pytest tests/integration

test-upstream-selected: ## aiohttp's own client and connector test modules
	$(call UPSTREAM_PYTEST,$(VENV),selected-modules,$(addprefix tests/,$(UPSTREAM_MODULES)))

# The whole upstream suite on the patched tree; the same on pristine shows
# that the deselect list hides no regression.
test-upstream: venv ## aiohttp's whole suite on the patched tree
	$(call UPSTREAM_PYTEST,$(VENV),whole-suite,tests)

# Pristine runs pristine's own tests (the series adds tests that need it).
PRISTINE_SRC := build/upstream/pristine-src
test-upstream-pristine: venv-pristine ## aiohttp's whole suite on pristine
	$(PYTHON) -m tools.envs pristine --export-source $(PRISTINE_SRC)
	$(call UPSTREAM_PYTEST,$(PRISTINE),whole-suite-pristine,tests,$(PRISTINE_SRC))

# Our behaviour tests against pristine $(UPSTREAM_VERSION): passes only when exactly the
# tests marked proves_patch fail there (strict xfail) and all others pass.
# Then the tests each patch adds to aiohttp's suite: they must fail, in
# bounded time, on pristine and without the patch, and pass with it.
test-pristine: venv-pristine ## each patch's tests fail without it, pass with it
	$(PRISTINE)/bin/python -m pytest tests/patch --expect-pristine
	$(PYTHON) -m tools.intree

changelog: venv ## towncrier drafts of aiohttp's fragments and ours
	$(VENV)/bin/python -m tools.changelog

lint: venv ## aiohttp's linters on the series, ruff and mypy on ours
	$(VENV)/bin/python -m tools.lint

wheel: venv ## a reproducible sdist and wheel in dist/
	$(VENV)/bin/python -m tools.wheel build

# One wheel per Python 3.9-3.13 that pyenv has; a missing one is skipped.
wheels: venv ## one wheel per Python 3.9-3.13 that pyenv has
	$(VENV)/bin/python -m tools.wheel build --all

wheel-smoke: venv ## each wheel in a fresh venv of its own Python
	$(VENV)/bin/python -m tools.wheel smoke

# The sender: PR_NAME / PR_EMAIL, else git config user.name / user.email.
pr: venv ## build/pr: cover letter and mails (PR_NAME=, PR_EMAIL=)
	$(VENV)/bin/python -m tools.pr $${PR_NAME:+--name "$$PR_NAME"} \
		$${PR_EMAIL:+--email "$$PR_EMAIL"}

bench: venv venv-pristine ## pristine against patched (MODE=, ROUNDS=)
	$(MAKE) system-deps EXTRA_DEBIAN="$(BENCH_DEBIAN_PACKAGES)"
	$(VENV)/bin/python -m tools.bench --mode "$${MODE:-instructions}" \
		$${ROUNDS:+--rounds "$$ROUNDS"}

bench-load: venv venv-pristine ## the keep-alive load reproduction (ROUNDS=)
	$(VENV)/bin/python -m tools.bench load $${ROUNDS:+--rounds "$$ROUNDS"}

matrix: venv ## the series on each pinned release (VERSIONS=a,b)
	$(VENV)/bin/python -m tools.matrix $${VERSIONS:+--versions "$$VERSIONS"}

# The behaviour tests on Python 3.9 to 3.13. pyenv's shims answer only for
# the active version, so name its interpreters; a missing one is skipped.
TOX_PYTHONS = $(wildcard $(HOME)/.pyenv/versions/3.9.*/bin/python3 \
	$(HOME)/.pyenv/versions/3.1[0-9].*/bin/python3)
# Its summary (per-Python results and test counts) goes to
# docs/measurements.md; tox's own exit status is make's.
tox: venv ## the behaviour tests on Python 3.9 to 3.13
	mkdir -p build/tox
	{ $(VENV)/bin/tox run -e py39,py310,py311,py312,py313 \
		$(if $(TOX_PYTHONS),--discover $(TOX_PYTHONS)) 2>&1; \
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
