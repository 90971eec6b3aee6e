# Python 3.11 from Debian bookworm's packages: a stand-in for python:3.11-slim-bookworm where no
# image registry answers (deploy/local-base/build.sh). `python` is python3, as in that image.
ARG DEBIAN_IMAGE=rldojo-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv python-is-python3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
ENV LANG=C.UTF-8
CMD ["python"]
