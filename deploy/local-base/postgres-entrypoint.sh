#!/bin/sh
# First start: initdb in $PGDATA with POSTGRES_USER as the superuser (password auth over TCP),
# then POSTGRES_DB. Every start: PostgreSQL in the foreground as the postgres user.
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    password_file="$(mktemp)"
    printf '%s' "$POSTGRES_PASSWORD" >"$password_file"
    chown postgres "$password_file"
    as_postgres initdb --pgdata="$PGDATA" --username="$user" --pwfile="$password_file" \
        --encoding=UTF8 --auth-local=trust --auth-host=scram-sha-256
    rm -f "$password_file"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    # A server on the unix socket only, just long enough to create the database.
    as_postgres pg_ctl --pgdata="$PGDATA" --wait --options="-c listen_addresses=''" start
    if [ "$database" != postgres ]; then
        # From stdin, so psql quotes the name (:"db"); it does not for --command.
        echo 'CREATE DATABASE :"db";' | as_postgres psql --username="$user" --dbname=postgres \
            --set=ON_ERROR_STOP=1 --set=db="$database" --quiet
    fi
    as_postgres pg_ctl --pgdata="$PGDATA" --wait --mode=fast stop
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses='*' "$@"
