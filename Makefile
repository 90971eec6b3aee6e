# The README's two commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run stop test test-image test-cluster test-lifecycle test-bench test-compose lint format setup \
	system-deps compose-deps wheelhouse base-images clean

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
# `make test-compose` also runs the stack: Debian's Docker engine and CLI (BuildKit built in),
# and debootstrap for the local base images.
COMPOSE_APT_PACKAGES := $(APT_PACKAGES) docker.io debootstrap
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# apt-get install whichever of the packages $(1) are missing.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

system-deps:
	$(call apt_install,$(APT_PACKAGES))

compose-deps:
	$(call apt_install,$(COMPOSE_APT_PACKAGES))

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
# stay apart, stops right after submit are true, resumes continue; the shared queue under quotas
# and webhooks retried through a receiver's outage; real ASHA, PBT and Optuna runs; jobs on
# Gymnasium ids; the README's quick starts. Minutes, so outside `make test`; CI runs it.
test-lifecycle: $(STAMP)
	$(PY) -m pytest -q -m lifecycle --durations=0 tests/service/test_lifecycle.py \
		tests/service/test_shared_cluster.py tests/service/test_search.py \
		tests/service/test_any_env_jobs.py tests/service/test_cli.py tests/service/test_tracking.py \
		tests/service/test_warm_starts.py \
		tests/test_readme.py

# The bench scripts end to end at toy scale (train, score, write the record): a minute each of
# starting Ray and training, so outside `make test`. CI runs it too.
test-bench: $(STAMP)
	$(PY) -m pytest -q -m bench --durations=0 tests/bench

# The image's wheels, for a build that reaches no package index (CI here, an air-gapped site):
# downloaded by this host's pip; the Dockerfile installs from them with WHEELHOUSE=$(WHEELHOUSE).
WHEELHOUSE := deploy/wheelhouse
wheelhouse: $(WHEELHOUSE)/requirements.txt

$(WHEELHOUSE)/requirements.txt: pyproject.toml $(STAMP)
	$(PY) -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > $@.tmp
	$(PY) -m pip download --quiet --dest $(WHEELHOUSE) --requirement $@.tmp pip 'setuptools>=68' wheel
	mv $@.tmp $@

# Base images from Debian's own packages (no image registry needed): Debian by debootstrap,
# Python 3.11 (the Dockerfile's BASE_IMAGE) and PostgreSQL 15 (docker-compose's POSTGRES_IMAGE).
# Needs root and a running Docker engine.
base-images:
	deploy/local-base/build.sh

# docker-compose.yml for real on a Docker engine (started here if none answers, and stopped
# again): the local base images, the image from the wheelhouse, then ray-head + 2 ray-workers +
# api + postgres through the published API port: placement, a worker killed, the API restarted,
# a third worker, down and up again, tokens (tests/compose). 8 to 18 minutes here; CI runs it.
test-compose: $(STAMP) compose-deps wheelhouse
	$(PY) -m pytest -q -m compose --durations=0 tests/compose

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
	find $(WHEELHOUSE) -mindepth 1 ! -name README.md -delete
