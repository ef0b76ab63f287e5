# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
export HF_HUB_OFFLINE := 1
PYTEST_ARGS ?= -n 2

.PHONY: setup test demo bench study registry lint mutate clean studio-screenshot

setup: $(STAMP)

# Every install goes through constraints.txt (CPU torch 2.13.0 + torchvision 0.28.0: no CUDA downloads).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(BIN)/python tools/demo.py

# every adversarial recipe, same data and budget, into docs/RESULTS.md: two recipes at a time on one thread each,
# about 80 min for the 12 recipes with MINUTES=10 on 2 cores
MINUTES ?= 10
study: setup
	$(BIN)/python tools/study.py --minutes $(MINUTES) --threads 1 --parallel 2

bench: setup
	$(BIN)/python tools/benchmark.py -o docs/benchmarks.md --readme README.md

# The README's picture of zoo studio, taken by its browser test (needs chromium + chromium-driver).
studio-screenshot: setup
	rm -f docs/studio.png
	ZOO_STUDIO_SCREENSHOT=docs/studio.png $(BIN)/python -m pytest -q tests/test_studio_browser.py
	@test -s docs/studio.png || { echo "no screenshot: was the browser test skipped? (pytest -rs)"; exit 1; }

registry: setup
	$(BIN)/python tools/gen_registry.py

# Mutation testing of the core numeric modules (mutmut 3; slow, not part of CI). MUTATE=group... picks groups
# (python tools/mutate.py --list); survivors: python tools/mutate.py --survivors GROUP. See docs/testing.md.
mutate: setup
	$(BIN)/python tools/mutate.py $(MUTATE)

lint: setup
	$(BIN)/ruff check zoo tools tests && $(BIN)/ruff format --check zoo tools tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
