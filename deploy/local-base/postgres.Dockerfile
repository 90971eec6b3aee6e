# PostgreSQL 15 from Debian bookworm's packages, with the part of the official postgres image's
# interface that docker-compose.yml uses: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB make
# the role and the database on first start, the data lives in /var/lib/postgresql/data, and
# `pg_isready` answers the health check. Built by deploy/local-base/build.sh.
ARG DEBIAN_IMAGE=rldojo-local/debian:bookworm
FROM ${DEBIAN_IMAGE}
# No cluster at install time: the entrypoint makes one in the data volume on first start.
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/rldojo.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/*
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PGDATA=/var/lib/postgresql/data \
    PATH="/usr/lib/postgresql/15/bin:$PATH" \
    LANG=C.UTF-8
VOLUME /var/lib/postgresql/data
EXPOSE 5432
# SIGINT is PostgreSQL's fast shutdown; SIGTERM would wait for every client to disconnect.
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint"]
