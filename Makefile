# The README's two commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run stop test test-image test-cluster test-lifecycle lint format setup system-deps clean

setup: $(STAMP)

# torch goes first and pinned: the CPU wheel on this machine is 2.13.0; anything else downloads GBs.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests drive for real: Chromium (the page's browser tests), PostgreSQL (the
# job store), docker-compose (validates the compose file; no Docker engine is needed for that).
APT_PACKAGES := chromium postgresql docker-compose
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

run: $(STAMP)
	$(VENV)/bin/rldojo serve --host $(HOST) --port $(PORT)

# The embedded Ray head outlives `make run` (jobs keep running); this stops it and its jobs.
stop: $(STAMP)
	$(VENV)/bin/rldojo stop-head

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# The typed contract: the job spec, the registry that derives config schemas, the Tune space,
	# the job directory, the store, the service and its SDK and CLI.
	$(VENV)/bin/mypy --follow-imports=silent algorithms/__init__.py service/

test: $(STAMP) system-deps lint
	$(PY) -m pytest -q

# The Dockerfile's install commands in a fresh venv (tests/deploy/test_image_install.py): minutes
# of unpacking torch and Ray, so outside `make test`. CI runs both.
test-image: $(STAMP)
	$(PY) -m pytest -q -m image tests/deploy

# Real Ray nodes started with `ray start` (a head and a worker), the API over them, nodes killed
# mid-job; plus one job on S3 storage and a PostgreSQL job store. About 4 minutes, so outside
# `make test`. CI runs it too.
test-cluster: $(STAMP) system-deps
	$(PY) -m pytest -q -m cluster --durations=0 tests/cluster tests/service/test_s3_postgres_service.py

# Dozens of concurrent jobs through the real service: two owners' jobs started in the same second
# stay apart, stops right after submit are true, resumes continue. Minutes, so outside
# `make test`; CI runs it too.
test-lifecycle: $(STAMP)
	$(PY) -m pytest -q -m lifecycle --durations=0 tests/service/test_lifecycle.py

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
