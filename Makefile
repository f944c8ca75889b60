# The two commands of the README are `make demo` and `make test`; both set everything up first.
.PHONY: setup demo test test-fast lint check bench

PY := .venv/bin/python
# `make demo PORT=8081` when 8080 is taken.
PORT ?= 8080

setup:
	@scripts/bootstrap

demo: setup
	.venv/bin/tickets demo --port $(PORT)

# The suite in parallel, then the few tests that must run alone (scripts/test, docs/testing.md).
test: setup
	PY=$(PY) scripts/test

test-fast: setup
	PY=$(PY) scripts/test "not slow"

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports

check: lint test

bench: setup
	$(PY) -m bench
