# Shortcuts for developers. The README's two commands are the reference; these call the same things.
VENV ?= .venv
PY := $(VENV)/bin/python
# The lock tool lives in a venv of its own, not among the project's dependencies
LOCK_VENV ?= .venv-lock
LOCK_FILE := requirements/constraints.txt

.PHONY: demo test lint bench bench-orgs install lock

install:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[test]'

demo:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e . && $(VENV)/bin/compliance demo

test:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[test]' && $(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: install
	$(PY) bench/bench_startup.py
	$(PY) bench/bench_scan.py
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_report.py
	$(PY) bench/bench_internet.py
	$(PY) bench/bench_history.py
	$(PY) bench/bench_zones.py
	$(PY) bench/bench_tls.py
	$(PY) bench/bench_orgs.py

# One organisation's report among 20 vs alone (issue 20)
bench-orgs: install
	$(PY) bench/bench_orgs.py

# Renew the lock: the newest versions pyproject.toml allows (its dependencies and the `test` extra),
# resolved for Python 3.11 on Linux. CI installs with it through PIP_CONSTRAINT (see .ci/run).
lock:
	python3 -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q 'uv>=0.13,<0.14'
	{ printf '%s\n' \
	    '# The versions CI tests with: the dependencies of compliance-monitor and its test extra, pinned for' \
	    '# Python 3.11 on Linux. Constraints, not requirements: pip applies them to what it installs, through' \
	    '# PIP_CONSTRAINT=$(LOCK_FILE) (as .ci/run does) or --constraint $(LOCK_FILE).' \
	    '# Do not edit: change the bounds in pyproject.toml, then regenerate this file with `make lock`' \
	    '# (uv pip compile pyproject.toml --extra test --python-version 3.11 --python-platform linux --upgrade).' \
	    '' && \
	  $(LOCK_VENV)/bin/uv pip compile --quiet pyproject.toml --extra test --python-version 3.11 \
	    --python-platform linux --upgrade --no-header; } > $(LOCK_FILE).new
	mv $(LOCK_FILE).new $(LOCK_FILE)
