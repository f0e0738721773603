PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast fuzz bench screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The web pages: built when missing or older than what they are built from.
FRONTEND := frontend/dist/index.html
FRONTEND_SOURCES := $(shell find frontend/src -type f) frontend/build.mjs frontend/package.json

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error

$(FRONTEND): frontend/node_modules/.package-lock.json $(FRONTEND_SOURCES)
	cd frontend && npm run --silent build

run: $(STAMP) $(FRONTEND)
	$(BIN)/bidding serve

test: $(STAMP) $(FRONTEND)
	$(BIN)/ruff check bidding tests bench alembic hatch_build.py
	$(BIN)/ruff format --check bidding tests bench alembic hatch_build.py
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	cd frontend && npm test --silent
	$(BIN)/python -m pytest

# The inner loop of a change: Ruff, and the tests that start no process, drive no browser and
# take no long time (markers in pyproject.toml); `make test` still runs everything.
test-fast: $(STAMP) $(FRONTEND)
	$(BIN)/ruff check bidding tests bench alembic hatch_build.py
	$(BIN)/ruff format --check bidding tests bench alembic hatch_build.py
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -m "not browser and not process and not slow"

# The parsers of outside input under atheris, each for FUZZ_SECONDS from a fresh random seed
# (`make test` runs them for a few seconds each, from a fixed seed).
FUZZ_SECONDS ?= 120
fuzz: $(STAMP)
	BIDDING_FUZZ_SECONDS=$(FUZZ_SECONDS) BIDDING_FUZZ_SEED=0 \
		$(BIN)/python -m pytest -p no:cacheprovider tests/fuzz/test_fuzz.py

# The pictures in the README: the browser tests, keeping what they see.
screenshots: $(STAMP) $(FRONTEND)
	BIDDING_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/browser

bench: $(STAMP)
	$(BIN)/python bench/unseal.py
	$(BIN)/python bench/seal.py
	$(BIN)/python bench/rush.py
	$(BIN)/python bench/opening.py
	$(BIN)/python bench/fanout.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
