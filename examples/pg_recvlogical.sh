#!/usr/bin/env bash
# Stream pgshim's changes with PostgreSQL's own pg_recvlogical, as test_decoding text on stdout.
#
#   examples/pg_recvlogical.sh [SLOT] [more pg_recvlogical options, e.g. --endpos 0/1FF]
#
# Connects with PGHOST, PGPORT, PGUSER and PGDATABASE (defaults: the demo, 127.0.0.1:5433 reddb).
# The slot is created on the first run; later runs continue after the last confirmed position.
set -euo pipefail
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5433}" PGUSER="${PGUSER:-postgres}"
database="${PGDATABASE:-reddb}"
slot="${1:-recvlogical_demo}"
shift || true

pg_recvlogical -d "$database" -S "$slot" --create-slot --if-not-exists -P test_decoding
# -F 1: confirm what was written every second, so a restart resumes after it.
exec pg_recvlogical -d "$database" -S "$slot" --start -f - -F 1 -o include-timestamp=1 "$@"
