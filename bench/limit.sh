#!/usr/bin/env bash
# The machine's own limit for one refresh rotation: pgbench on the same
# PostgreSQL, running the rows and statements of one rotor rotation
# (bench/sql/rotation-*.sql) in a scratch database it creates and drops.
#
#   bench/limit.sh [VARIANT...]     VARIANT: current (default), cte, cte-cached
#
# Environment: LIMIT_CLIENTS (16), LIMIT_SECONDS (10), PGHOST (127.0.0.1),
# PGPORT (5432), PGUSER (postgres), PGBENCH (found on PATH or under
# /usr/lib/postgresql/*/bin).
# Prints one line per variant, `limit VARIANT TPS`, after checking that every
# transaction really rotated a token.
set -euo pipefail
cd "$(dirname "$0")/.."

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
clients="${LIMIT_CLIENTS:-16}"
seconds="${LIMIT_SECONDS:-10}"
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(current)

pg_bin() {
    if command -v "$1" >/dev/null 2>&1; then
        command -v "$1"
    else
        ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -n1
    fi
}
pgbench="${PGBENCH:-$(pg_bin pgbench)}"
[ -x "$pgbench" ] || { echo "limit.sh: pgbench not found (install the PostgreSQL client tools)" >&2; exit 1; }

db="rotor_limit_$$_${RANDOM}"
cleanup() { psql -qAtX -d postgres -c "drop database if exists $db" >/dev/null 2>&1 || true; }
trap cleanup EXIT
psql -qAtX -d postgres -c "create database $db" >/dev/null
psql -qAtX -v ON_ERROR_STOP=1 -d "$db" -f migrations/postgres/0001_init.sql >/dev/null
for m in migrations/postgres/*.sql; do
    [ "$m" = migrations/postgres/0001_init.sql ] || psql -qAtX -v ON_ERROR_STOP=1 -d "$db" -f "$m" >/dev/null
done

for v in "${variants[@]}"; do
    script="bench/sql/rotation-$v.sql"
    [ -f "$script" ] || { echo "limit.sh: no variant $v ($script)" >&2; exit 2; }
    psql -qAtX -v ON_ERROR_STOP=1 -v families="$clients" -d "$db" -f bench/sql/seed.sql >/dev/null
    out=$("$pgbench" -n -M prepared -c "$clients" -j 2 -T "$seconds" -D n=0 -f "$script" "$db" 2>&1) || {
        echo "$out" >&2
        exit 1
    }
    tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
    tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
    rotated=$(psql -qAtX -d "$db" -c "select coalesce(sum(refresh_count), 0) from token_families")
    if [ "$rotated" != "$tx" ]; then
        echo "limit.sh: $v ran $tx transactions but rotated $rotated tokens" >&2
        exit 1
    fi
    echo "limit $v $tps"
done
