# `make run` opens cnn-lab, `make test` runs every check. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: run test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The stamps re-install only when pyproject.toml changes.
$(VENV)/.run-installed: pyproject.toml | $(PY)
	$(PIP) install -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PIP) install -e '.[dev]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(VENV)/bin/cnn-lab

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Whole test files go to one worker each (module fixtures such as a trained run are made
# once); on 2 cores this halves the suite. `pytest -n 0` runs in one process.
test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n auto --maxprocesses 4 --dist loadfile

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
