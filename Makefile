# Shortcuts for developers. The README's two commands are the reference; these call the same things.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench install

install:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[test]'

demo:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e . && $(VENV)/bin/compliance demo

test:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -e '.[test]' && $(VENV)/bin/pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/bench_startup.py
	$(PY) bench/bench_scan.py
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_report.py
	$(PY) bench/bench_internet.py
