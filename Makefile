# Two commands set up a fresh machine:  `make demo`  and  `make test`.
# Dependencies (several GB: CUDA torch) live in a cached venv keyed by the hash
# of the pinned requirements in pyproject.toml, outside the checkout, so a fresh clone (CI) reuses them;
# the checkout's own .venv is a thin venv that points at that cache and holds
# an editable install of this project.
SHELL := /bin/bash
PYTHON ?= python3.11
CACHE ?= $(HOME)/.cache/kidconsole
# the pinned requirement list read from pyproject.toml: the light install, every extra and test (one dev venv)
REQS := $(shell $(PYTHON) -c 'import tomllib;p=tomllib.load(open("pyproject.toml","rb"))["project"];print(" ".join(r for r in p["dependencies"]+[r for v in p["optional-dependencies"].values() for r in v] if not r.startswith("kidconsole")))')
DEPS_KEY := $(shell echo "$(REQS)" | sha256sum | cut -c1-16)
DEPS := $(CACHE)/deps-$(DEPS_KEY)
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python

.PHONY: demo test test-fast bench setup clean-venv slurm-packages
setup: $(VENV)/.ready-$(DEPS_KEY)

$(DEPS)/.ready:
	@echo "kidconsole: building the dependency cache $(DEPS) (first time only, a few minutes)"
	@rm -rf $(DEPS) && mkdir -p $(CACHE)
	$(PYTHON) -m venv $(DEPS)
	$(DEPS)/bin/python -m pip install -q --upgrade pip
	$(DEPS)/bin/python -m pip install -q $(REQS)
	@touch $@

$(VENV)/.ready-$(DEPS_KEY): $(DEPS)/.ready pyproject.toml
	@rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	@$(DEPS)/bin/python -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])' > $$($(PY) -c 'import sysconfig;print(sysconfig.get_paths()["purelib"])')/_kidconsole_deps.pth
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . 2>/dev/null || $(PY) -m pip install -q --no-deps -e .
	@echo "$(DEPS)" > $@

demo: setup
	$(VENV)/bin/kidconsole demo

test: setup slurm-packages
	$(PY) -m pytest -q

# the Slurm tests run a real single-node Slurm (tests/slurm/conftest.py): Debian's packages, installed once
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
slurm-packages:
	@command -v slurmctld >/dev/null && command -v munged >/dev/null || { \
	  echo "kidconsole: installing slurm-wlm and munge for the Slurm tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq slurm-wlm munge \
	  || echo "kidconsole: could not install slurm-wlm and munge: the Slurm tests will skip"; }

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) -m bench

clean-venv:
	rm -rf $(VENV)
