#!/usr/bin/env bash
# The whole benchmark: builds release, measures the raw argon2id rate and the
# pgbench limit of one rotation, runs rotor on PostgreSQL and on SQLite under
# rotor-bench, and prints one table with the targets checked.
#
#   bench/run.sh
#
# Environment: BENCH_SECONDS (10) measured seconds per run, BENCH_WARMUP (2s),
# LIMIT_SECONDS (10), PGHOST/PGPORT/PGUSER (127.0.0.1/5432/postgres),
# BENCH_SKIP_BUILD=1 to reuse target/release, BENCH_ROTOR=PATH to measure
# another rotor binary, BENCH_PG_CONCURRENCY ("1 4 16 64") and
# BENCH_SQLITE_CONCURRENCY ("16 64") for the refresh runs, BENCH_CODE_STORES
# ("postgres sqlite") for the code_exchange part, BENCH_RESULTS=FILE to keep
# rotor-bench's JSON lines, BENCH_PARTS
# (default "argon2 limit postgres sqlite client_credentials code_exchange
# password browser_login dpop_refresh") to run some parts only.
# Needs PostgreSQL with trust authentication for PGUSER on loopback, psql and
# pgbench. Creates and drops its own databases; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
seconds="${BENCH_SECONDS:-10}"
warmup="${BENCH_WARMUP:-2}"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    echo "== building release (rotor, rotor-bench)" >&2
    cargo build --release --quiet -p rotor -p rotor-bench
fi
rotor="${BENCH_ROTOR:-$PWD/target/release/rotor}"
parts=" ${BENCH_PARTS:-argon2 limit postgres sqlite client_credentials code_exchange password browser_login dpop_refresh} "
part() { [[ "$parts" == *" $1 "* ]]; }
bench="$PWD/target/release/rotor-bench"

work=$(mktemp -d)
results="$work/results.jsonl"
server_pid=""
pg_db="rotor_bench_$$_${RANDOM}"
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    psql -qAtX -d postgres -c "drop database if exists $pg_db" >/dev/null 2>&1 || true
    if [ -n "${BENCH_RESULTS:-}" ] && [ -f "$results" ]; then
        cp "$results" "$BENCH_RESULTS"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Starts rotor with the ROTOR__* settings exported by the caller.
start_rotor() {
    local port=$((20000 + RANDOM % 20000))
    export ROTOR__SERVER__BIND="127.0.0.1:$port"
    export ROTOR__TOKENS__ISSUER="http://127.0.0.1:$port"
    url="http://127.0.0.1:$port"
    "$rotor" migrate >/dev/null
    # A client before the first start, so that no demo credentials are created.
    "$rotor" client list | grep -q '^run-sh ' || "$rotor" client add run-sh --public >/dev/null
    # The first-party public client of the browser modes (rotor-bench's
    # --public-client default); a loopback redirect URI matches any port.
    "$rotor" client list | grep -q '^benchspa ' ||
        "$rotor" client add benchspa --public --grants authorization_code,refresh_token \
            --scopes "read write" --redirect-uri http://127.0.0.1/callback >/dev/null
    "$rotor" serve >/dev/null 2>"$work/rotor.log" &
    server_pid=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "rotor did not start:" >&2
    cat "$work/rotor.log" >&2
    exit 1
}

stop_rotor() {
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# load LABEL GRANT CONCURRENCY [more rotor-bench options]
load() {
    local label=$1 grant=$2 conc=$3
    shift 3
    "$bench" load --url "$url" --label "$label" --grant "$grant" --concurrency "$conc" \
        --clients $((conc < 64 ? 64 : conc)) --duration "${seconds}s" --warmup "${warmup}s" \
        --rotor-bin "$rotor" --server-pid "$server_pid" "$@" | tee -a "$results" | grep -v '^{' >&2
}

if part argon2; then
    echo "== raw argon2id rate (m=19456 KiB, t=2, p=1)" >&2
    "$bench" argon2 --duration 5s | tee -a "$results" | grep -v '^{' >&2
fi

limit_args=()
if part limit; then
    echo "== pgbench limit of one rotation" >&2
    limits=$(bench/limit.sh current cte cte-cached)
    echo "$limits" >&2
    limit_args=(--limit "$(awk '$2 == "cte" { print $3 }' <<<"$limits")"
        --limit-one-statement "$(awk '$2 == "cte-cached" { print $3 }' <<<"$limits")")
fi

# Refresh runs: cheap argon2 so that provisioning and log-in are quick; the
# refresh path never hashes a password.
export ROTOR__PASSWORDS__MEMORY_KIB=64 ROTOR__PASSWORDS__ITERATIONS=1

psql -qAtX -d postgres -c "create database $pg_db" >/dev/null
pg_url="postgres://$PGUSER@$PGHOST:$PGPORT/$pg_db"
sqlite_url="sqlite://$work/rotor.db"
# use_store postgres|sqlite: the next rotor (and rotor-bench's provisioning) runs on it.
use_store() {
    if [ "$1" = postgres ]; then
        export ROTOR__DATABASE__URL="$pg_url"
    else
        export ROTOR__DATABASE__URL="$sqlite_url"
    fi
}

if part postgres; then
    echo "== rotor on PostgreSQL" >&2
    export ROTOR__DATABASE__URL="$pg_url"
    start_rotor
    for c in ${BENCH_PG_CONCURRENCY:-1 4 16 64}; do
        load postgres refresh-token "$c"
    done
    stop_rotor
fi

if part sqlite; then
    echo "== rotor on SQLite" >&2
    export ROTOR__DATABASE__URL="$sqlite_url"
    start_rotor
    for c in ${BENCH_SQLITE_CONCURRENCY:-16 64}; do
        load sqlite refresh-token "$c"
    done
    stop_rotor
fi

if part client_credentials; then
    # A confidential client allowed only client_credentials, provisioned by
    # rotor-bench; no users, no log-in, no refresh token to carry.
    echo "== client_credentials on PostgreSQL" >&2
    export ROTOR__DATABASE__URL="$pg_url"
    start_rotor
    load postgres client_credentials 16
    stop_rotor
    echo "== client_credentials on SQLite" >&2
    export ROTOR__DATABASE__URL="$sqlite_url"
    start_rotor
    load sqlite client_credentials 16
    stop_rotor
fi

if part code_exchange; then
    # The code exchange alone (rotor-bench measures its phases apart from the
    # single sign-on that obtains the codes), each store's refresh at the same
    # concurrency just before it on the same server. The exchange hashes no
    # password, so cheap argon2 as for the refresh runs.
    export ROTOR__PASSWORDS__MEMORY_KIB=64 ROTOR__PASSWORDS__ITERATIONS=1
    for store in ${BENCH_CODE_STORES:-postgres sqlite}; do
        echo "== code exchange on $store, after a refresh run" >&2
        use_store "$store"
        start_rotor
        load "$store" refresh-token 16
        load "$store" code_exchange 16
        stop_rotor
    done
fi

if part dpop_refresh; then
    # DPoP refreshes (RFC 9449: a proof verified, its jti recorded in the
    # rotation's statement) against plain ones on the same server, cheap argon2.
    export ROTOR__PASSWORDS__MEMORY_KIB=64 ROTOR__PASSWORDS__ITERATIONS=1
    echo "== DPoP refresh on PostgreSQL, after a plain refresh run" >&2
    use_store postgres
    start_rotor
    load postgres-plain refresh-token 16
    load postgres-dpop refresh-token 16 --dpop
    stop_rotor
fi

if part password; then
    echo "== rotor on PostgreSQL, default argon2id parameters" >&2
    unset ROTOR__PASSWORDS__MEMORY_KIB ROTOR__PASSWORDS__ITERATIONS
    export ROTOR__DATABASE__URL="$pg_url"
    start_rotor
    load postgres-idle refresh-token 16
    load postgres password 4
    load postgres mix 16 --password-concurrency 8
    stop_rotor
fi

if part browser_login; then
    # A whole first sign-in through the login page, against the password grant
    # at the same concurrency just before it on the same server; default argon2id
    # parameters, which both pay once per operation.
    unset ROTOR__PASSWORDS__MEMORY_KIB ROTOR__PASSWORDS__ITERATIONS
    for store in postgres sqlite; do
        echo "== browser login on $store, after a password run" >&2
        use_store "$store"
        start_rotor
        load "$store" password 4
        load "$store" browser_login 4
        stop_rotor
    done
fi

echo >&2
"$bench" table "$results" "${limit_args[@]}"
echo
echo "bench/run.sh took $((SECONDS - started)) s"
