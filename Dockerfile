# One image for the Ray head, the Ray workers and the API (`rldojo serve`).
#
#   docker build -t rldojo:cpu .                               # torch's CPU build (the default)
#   docker build --build-arg TORCH=cuda -t rldojo:cuda .       # torch's CUDA build, from PyPI
#
# A host that reaches no image registry or package index (CI here, an air-gapped site) builds
# the same image from a local base and a folder of wheels (`make base-images wheelhouse`):
#
#   DOCKER_BUILDKIT=1 docker build --network host \
#     --build-arg BASE_IMAGE=rldojo-local/python:3.11-bookworm \
#     --build-arg WHEELHOUSE=deploy/wheelhouse -t rldojo:cpu .
#
# BuildKit is needed (`RUN --mount`): the default builder since Docker 23, DOCKER_BUILDKIT=1 on
# Docker 20.10. No `# syntax=` line: that would fetch a frontend image from Docker Hub.
#
# Stages: `wheelhouse` (only bind-mounted into the pip steps, never a layer of the image), `base`
# (system packages, the user), `deps` (the dependency layer: rebuilt only when pyproject.toml or
# the wheelhouse changes), `app` (the code layer). tests/deploy/test_image_install.py runs the
# RUN commands of `deps` and `app` in a fresh venv, so keep them plain shell that works outside
# Docker too, and reference the venv only through $VIRTUAL_ENV.

ARG PYTHON_VERSION=3.11
# Debian bookworm with Python ${PYTHON_VERSION} as `python`; `make base-images` makes
# rldojo-local/python:3.11-bookworm from Debian's own packages.
ARG BASE_IMAGE=python:${PYTHON_VERSION}-slim-bookworm
# A folder of the build context with every wheel the image installs; when set, pip installs from
# it alone (`--no-index`). Empty: PyPI, and torch from PyTorch's CPU index.
ARG WHEELHOUSE=

FROM scratch AS wheelhouse
ARG WHEELHOUSE
# Without a wheelhouse, only the folder's README: the pip steps then ignore /wheelhouse.
COPY ${WHEELHOUSE:-deploy/wheelhouse/README.md} /

FROM ${BASE_IMAGE} AS base
# wget: KubeRay's default liveness/readiness probes and this image's HEALTHCHECK call it.
# /storage: mount point of the shared results volume; a fresh named volume copies its owner.
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /bin/bash rldojo \
    && mkdir -p /storage \
    && chown rldojo:rldojo /storage
ENV VIRTUAL_ENV=/opt/venv
ENV PATH="$VIRTUAL_ENV/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# ---- the dependency layer --------------------------------------------------------------------
FROM base AS deps
# TORCH=cpu takes torch from PyTorch's CPU index (its +cpu build ranks above PyPI's CUDA build of
# the same version); TORCH=cuda takes PyPI's default build, which bundles CUDA.
ARG TORCH=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG WHEELHOUSE
COPY pyproject.toml ./
# The runtime dependencies, read from pyproject.toml so the pins live in one place.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(deps))" > requirements.txt
# $offline is empty without a wheelhouse, so pip reads the indexes as usual.
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,from=wheelhouse,target=/wheelhouse \
    case "$TORCH" in \
      cpu) torch_index="--extra-index-url $TORCH_CPU_INDEX" ;; \
      cuda) torch_index="" ;; \
      *) echo "TORCH must be cpu or cuda, not '$TORCH'" >&2; exit 2 ;; \
    esac \
    && offline="${WHEELHOUSE:+--no-index --find-links /wheelhouse}" \
    && python -m venv "$VIRTUAL_ENV" \
    && pip install --quiet $offline --upgrade pip \
    && pip install --quiet $offline $torch_index "$(grep -E '^torch *[=<>~]' requirements.txt)" \
    && pip install --quiet $offline -r requirements.txt

# ---- the code layer --------------------------------------------------------------------------
FROM deps AS app
ARG WHEELHOUSE
COPY README.md ./
COPY algorithms ./algorithms
COPY envs ./envs
COPY service ./service
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,from=wheelhouse,target=/wheelhouse \
    pip install --quiet ${WHEELHOUSE:+--no-index --find-links /wheelhouse} --no-deps .

USER rldojo
ENV RLDOJO_STORAGE_ROOT=/storage \
    RAY_USAGE_STATS_ENABLED=0
# 8000 the API; 6379 Ray's GCS, 8265 its dashboard (Ray Jobs), 10001 its client server.
EXPOSE 8000 6379 8265 10001
# The API's liveness. Ray containers override it (docker-compose.yml; KubeRay sets its own probes).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD wget -q -T 4 -O /dev/null "http://127.0.0.1:${RLDOJO_PORT:-8000}/healthz" || exit 1
# Binding beyond loopback needs RLDOJO_API_TOKENS; `rldojo serve` refuses to start without them.
CMD ["rldojo", "serve", "--host", "0.0.0.0"]
