# The scripts to rule them all: `make run`, `make test`, `make bench`, `make bench-server`,
# `make bench-verify`, `make bench-app`, `make lint`, `make fmt`.
# Everything runs from a local .venv that these targets create and keep in step with pyproject.toml.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint fmt typecheck bench bench-server bench-verify bench-app clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The whole system: the token server on 127.0.0.1:8000 and the application server on
# 127.0.0.1:8001 (a data directory in ./var is set up on the first run). Ctrl-C stops both.
run: $(STAMP)
	$(BIN)/python examples/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench examples
	$(BIN)/ruff format src tests bench examples

bench: $(STAMP)
	$(BIN)/python bench/jose_bench.py

# The token server under load (bench/server_bench.py): real `tokensmith serve` processes
# driven by wrk, which is installed from Debian when missing. BENCH_SERVER_ARGS passes flags,
# e.g. `make bench-server BENCH_SERVER_ARGS="--rounds 5 --json /tmp/server.json"`.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
bench-server: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y wrk)
	$(BIN)/python bench/server_bench.py $(BENCH_SERVER_ARGS)

# The verifier SDK in process (bench/verify_bench.py): a new token and a token seen before,
# against the JOSE core, PyJWT + PyJWKClient and the raw floor. About a minute.
bench-verify: $(STAMP)
	$(BIN)/python bench/verify_bench.py $(BENCH_VERIFY_ARGS)

# The example application server under wrk (bench/app_bench.py): the protected endpoint
# against its no-auth twin, on four uvicorn stacks. uvloop and httptools (uvicorn[standard]'s
# servers, not dependencies of tokensmith) go into $(BENCH_EXTRAS) with pip --target, on
# the bench servers' PYTHONPATH only: the venv's own uvicorn keeps its defaults.
BENCH_EXTRAS := $(VENV)/bench-extras
$(BENCH_EXTRAS)/.installed: | $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
		--target $(BENCH_EXTRAS) uvloop==0.23.0 httptools==0.9.0
	@touch $@

bench-app: $(STAMP) $(BENCH_EXTRAS)/.installed
	@command -v wrk >/dev/null 2>&1 || ($(SUDO) apt-get update && $(SUDO) apt-get install -y wrk)
	$(BIN)/python bench/app_bench.py $(BENCH_APP_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
