# The two commands: `make run` and `make test`. Both set everything up first.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test e2e bench chaos lint setup stop clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.11, python3.12 or python3)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py setup_demo

run: setup
	PYTHONUNBUFFERED=1 $(BIN)/honcho start -f Procfile

test: $(STAMP)
	$(BIN)/python -m pytest --ignore=tests/e2e $(PYTEST_ARGS)

# The operator console in a headless Chromium (Debian's `chromium`: `apt-get install -y chromium`).
e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m pip install -q -r bench/requirements.txt
	$(BIN)/python -m bench $(BENCH_ARGS)

# The fault campaign (docs/chaos.md): `make chaos SEED=7` replays one seed, plain `make chaos` the default set.
chaos: $(STAMP)
	$(BIN)/python -m chaos $(if $(SEED),--seed $(SEED)) $(CHAOS_ARGS)

stop:
	-$(BIN)/python -m workers.embedded_redis stop

clean: stop
	rm -rf $(VENV) var
