# make lab: everything installed (system packages too), then the main job on its defaults.
# make test: what the tests need, then the tests. Both are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: lab test system-packages clean

lab: $(VENV)/.installed-test system-packages
	$(BIN)/minieks lab --report minieks-lab-report.md

test: $(VENV)/.installed-test system-packages
	$(BIN)/python -m pytest

system-packages:
	@bash scripts/install-system-packages.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: $(VENV)/bin/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build src/*.egg-info
