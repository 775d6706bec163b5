#!/usr/bin/env bash
# Runs once in the PostgreSQL subscriber's first start (docker-entrypoint-initdb.d): creates the
# tables of examples/subscriber.sql and subscribes to pgshim under its compose service name.
set -euo pipefail
sql="${SUBSCRIBER_SQL:-/opt/pgshim/subscriber.sql}"
conninfo="${PGSHIM_CONNINFO:-host=pgshim port=5433 user=postgres password=${PGSHIM_PASSWORD:-change-me} dbname=reddb}"
sed "s|host=127.0.0.1 port=5433 user=postgres dbname=reddb|${conninfo}|" "$sql" \
  | psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}"
