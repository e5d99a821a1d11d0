# The two commands the README starts with: `make up` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
DATA_DIR ?= $(HOME)/.lattice/box
DOMAIN ?= lattice.localhost
ROUTER_PORT ?= 8080

.PHONY: up down test lint unit integration deps install demo

deps:
	bash scripts/deps.sh

# Editable, in setuptools' "compat" mode: a .pth file holding the checkout's path. The default
# mode (for this flat layout) installs an import-hook finder instead, which every Python start in
# the venv imports, with pathlib, importlib.util and fnmatch: about 9 ms, a tenth of an
# `ltc create --help`. setuptools calls compat mode transitional; should a version drop it, the
# second command installs in the default mode: slower to start, the same otherwise.
# The stamp depends on this Makefile too, so that a changed recipe reinstalls existing venvs.
$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]' --config-settings editable_mode=compat \
		|| $(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Set up a fresh machine, start the box in the background and deploy the demo app.
up: deps install
	DATA_DIR=$(DATA_DIR) DOMAIN=$(DOMAIN) ROUTER_PORT=$(ROUTER_PORT) VENV=$(VENV) bash scripts/up.sh

down:
	DATA_DIR=$(DATA_DIR) bash scripts/down.sh

lint: install
	$(VENV)/bin/ruff check lattice router logagg tests bench
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest tests/unit

integration: install
	$(VENV)/bin/pytest tests/integration

test: install
	$(VENV)/bin/ruff check lattice router logagg tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest
