# Front door. The logic lives in tools/*.py; each target is one line there.
#   make apply && make test      everything a fresh machine needs
PYTHON ?= python3
VENV := .venv
PRISTINE := build/venvs/pristine
FORCE_FLAG := $(if $(FORCE),--force)
# aiohttp's own test modules that exercise the client and connector paths.
UPSTREAM_MODULES := test_connector.py test_client_session.py \
	test_client_functional.py test_client_request.py test_tracing.py \
	test_proxy.py test_client_ws.py
# Run from the checkout with `bin/pytest`, not `python -m pytest`, so that
# `import aiohttp` finds the compiled build in the venv, not the sources.
UPSTREAM_PYTEST = cd build/aiohttp && PYTHONPATH=$(CURDIR) \
	$(abspath $(1))/bin/pytest -c setup.cfg -o addopts= -p no:cacheprovider \
	-m "not dev_mode" -q -p tools.pytest_upstream \
	--deselect-file=$(CURDIR)/tests/upstream-deselect.txt $(2)

# Debian packages that targets call; installed when missing (needs root).
DEBIAN_PACKAGES := patch quilt

.PHONY: system-deps apply unapply refresh venv venv-pristine test test-tools test-patch \
	test-bench test-upstream-selected test-upstream test-pristine changelog \
	clean

apply:
	$(PYTHON) -m tools.patchq apply $(FORCE_FLAG)

unapply:
	$(PYTHON) -m tools.patchq unapply $(FORCE_FLAG)

refresh:
	$(PYTHON) -m tools.patchq refresh $(FORCE_FLAG)

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
		command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && apt-get install -y -qq $$missing; fi

venv: system-deps
	$(PYTHON) -m tools.envs patched

venv-pristine:
	$(PYTHON) -m tools.envs pristine

test: venv test-tools test-patch test-bench test-upstream-selected

test-tools:
	$(VENV)/bin/python -m pytest tests/tools

test-patch:
	$(VENV)/bin/python -m pytest tests/patch

test-bench:
	$(VENV)/bin/python -m pytest bench

test-upstream-selected:
	$(call UPSTREAM_PYTEST,$(VENV),$(addprefix tests/,$(UPSTREAM_MODULES)))

# The whole upstream suite on the patched tree.
test-upstream: venv
	$(call UPSTREAM_PYTEST,$(VENV),tests)

# Our behaviour tests against pristine 3.10.10: passes only when exactly the
# tests marked proves_patch fail there (strict xfail) and all others pass.
test-pristine: venv-pristine
	$(PRISTINE)/bin/python -m pytest tests/patch --expect-pristine

changelog: venv
	$(VENV)/bin/python -m tools.changelog

clean:
	rm -rf build/aiohttp.discarded build/venvs build/bench build/pr dist $(VENV)
