# overnight: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SOURCES := flows tasks schemas localbatch overnight benchmarks
# Prefect runs offline with a throw-away home and no telemetry.
export PREFECT_HOME ?= $(CURDIR)/.prefect-home
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1

.PHONY: install browser demo test lint typecheck pytest bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The project's own modules are compiled once here, as pip compiles what it installs: every
# process (a command, the local API, each worker) then loads them instead of compiling them
# again (~0.3 s of CPU a process where PYTHONDONTWRITEBYTECODE is set). Only changed files
# are compiled again.
install: $(BIN)/.installed
	@PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q $(SOURCES) >/dev/null

# Headless Chromium renders the HTML report in its tests (skipped without it). Installed with
# apt-get where that works (root, Debian/Ubuntu; ~2 min, ~115 MB download); never fails the build.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	     DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
	     >/dev/null) || echo "note: could not install chromium; the report page tests will skip"; \
	  else echo "note: chromium not installed (needs root apt-get); the report page tests will skip"; fi; }

demo: install
	$(BIN)/overnight run data/jobs/nightly_summary.toml

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The suite runs on TEST_WORKERS processes (pytest-xdist): most tests wait on servers and
# subprocesses, so two share two cores well (2 cores: ~8 min against ~12.5 in one process;
# ~10 min with another process keeping a core busy). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

pytest: install browser
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# The type check (~45 s of CPU on a fresh clone) runs at the lowest priority beside the tests;
# its report follows theirs, and either failing fails the target.
test: lint browser
	@nice -n 19 $(BIN)/mypy > $(VENV)/mypy.log 2>&1 & typecheck=$$!; \
	$(BIN)/pytest -q -n $(TEST_WORKERS); tests=$$?; \
	wait $$typecheck; typed=$$?; \
	echo "$(BIN)/mypy"; cat $(VENV)/mypy.log; \
	if [ $$tests -ne 0 ]; then exit $$tests; fi; exit $$typed

bench: install
	$(BIN)/python benchmarks/localbatch_throughput.py

clean:
	rm -rf $(VENV) .prefect-home .pytest_cache .mypy_cache .ruff_cache
	find $(SOURCES) tests -name __pycache__ -prune -exec rm -rf {} +
