# Two commands on a fresh machine: `make run` (set up everything, start web + worker + beat with a demo
# account) and `make test`. Both create the virtualenv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
export PATH := $(abspath $(BIN)):$(PATH)
CYAN_PORT ?= 8000
export CYAN_PORT

.PHONY: run serve test lint install migrate demo clean-data stop-redis bench bench-gateway bench-events bench-search

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

# `run` wraps the whole start (migrate, demo, honcho): with no REDIS_URL the first of them starts the embedded
# Redis, and Ctrl-C must stop it again (console/embedded_redis.py `run`).
run: install
	@$(BIN)/python -m console.embedded_redis run -- $(MAKE) --no-print-directory serve

serve: demo
	@echo ""
	@echo "  Cyan is starting: http://127.0.0.1:$(CYAN_PORT)/   (API docs: /api/docs/, admin: /admin/)"
	@echo "  Demo sign-in:     demo@cyan.test / cyan-demo-password"
	@echo "  Stop with Ctrl-C."
	@echo ""
	$(BIN)/honcho --procfile Procfile start

# CYAN_DATA_DIR keeps the test run's SQLite file, embedded Redis and mail apart from `make run`'s.
# The suite runs on TEST_WORKERS pytest-xdist workers (default: one per core), each in a world of its own
# (tests/support/isolation.py: data dir, embedded Redis, cache prefix, Celery queue, test database).
# The embedded Redis servers the run started are stopped when it ends.
# Extra pytest arguments go in PYTEST_ARGS, e.g. `make test PYTEST_ARGS="-k team -x"`; serially: TEST_WORKERS=0.
TEST_WORKERS ?= auto
test: install
	CYAN_DATA_DIR=$${CYAN_DATA_DIR:-var/test} $(BIN)/python -m console.embedded_redis run -- \
	  $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# The import direction of DESIGN.md §2 (.importlinter), and pyflakes' checks (ruff's F rules: undefined and
# unused names, which a merge can leave behind); CI runs both before the tests.
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check --select F --exclude tests/clients .

stop-redis:
	$(BIN)/python -c "from pathlib import Path; from console.embedded_redis import stop_embedded_redis as s; [s(p.resolve()) for p in [Path('var'), Path('var/test'), *Path('var/test').glob('gw*')]]"

clean-data: stop-redis
	rm -rf var

# Benchmarks (PostgreSQL on 127.0.0.1; BENCH_DATABASE_URL to override). See bench/README.md.
bench: install
	$(BIN)/python bench/devices.py $(BENCH_ARGS)

# The gateway benchmarks (issue 12): PostgreSQL and Redis on 127.0.0.1, real processes. See bench/README.md.
bench-gateway: install
	$(BIN)/python bench/gateway.py $(or $(BENCH_ARGS),all)

# The event benchmarks (issue 13): PostgreSQL and Redis on 127.0.0.1, real web processes. See bench/README.md.
bench-events: install
	$(BIN)/python bench/events.py $(or $(BENCH_ARGS),all)

# Device search at fleet scale (issue 14): every query shape of the device lists on 1,000,000 devices beside
# hand-written SQL. BENCH_ARGS="--reuse" keeps a loaded database, "--sqlite" runs the embedded default at
# 100,000 devices. Times only while holding var/bench.lock (BENCH_LOCK). See bench/README.md.
bench-search: install
	$(BIN)/python bench/search.py $(BENCH_ARGS)
