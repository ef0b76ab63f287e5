# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP    := $(BIN)/python -m pip
export HF_HUB_OFFLINE := 1
PYTEST_ARGS ?= -n 2

.PHONY: setup test demo bench registry lint clean

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

bench: setup
	$(BIN)/python tools/benchmark.py

registry: setup
	$(BIN)/python tools/gen_registry.py

lint: setup
	$(BIN)/ruff check zoo tools tests && $(BIN)/ruff format --check zoo tools tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
