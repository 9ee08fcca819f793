# ktrdr — the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: help install browser demo serve test lint typecheck pytest bench chaos clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install ktrdr with its dev tools

demo: install  ## set up, then tell the whole story on the embedded PostgreSQL (about a minute)
	$(BIN)/ktrdr demo

serve: install  ## run the API and processors (embedded PostgreSQL unless KTRDR_DATABASE_URL is set)
	$(BIN)/ktrdr serve

test: install browser lint typecheck pytest  ## set up, then lint, type-check and run the whole test suite

# The dashboard's browser test drives the system's chromium (playwright never downloads one).
browser:  ## make sure chromium is there for the browser test (apt-get when root)
	@command -v chromium >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium; } || \
	  { echo "the dashboard test needs chromium: sudo apt-get install chromium" >&2; exit 1; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

bench: install  ## run the benchmarks (figures and ratios to their baselines)
	$(BIN)/python benchmarks/eventlog.py
	$(BIN)/python benchmarks/training_checkpoint.py
	$(BIN)/python benchmarks/capacity.py
	$(BIN)/python -m benchmarks.long_run

chaos: install  ## a chaos soak: kill -9, SIGSTOP and a backend crash while runs go on (MINUTES=10)
	$(BIN)/python scripts/chaos.py --minutes $(or $(MINUTES),10)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
