#!/usr/bin/env bash
# The authorization code flow driven by clients written elsewhere, against a real
# rotor (debug build, loopback port): the strict JavaScript client oauth4webapi on a
# fresh SQLite file and on a fresh PostgreSQL database (created here and dropped
# afterwards; the server is the one DATABASE_URL names, by default
# postgres://postgres@127.0.0.1:5432/postgres), then, on SQLite, requests-oauthlib
# (S256 must work, plain must be refused) and a headless chromium through
# playwright-core, which saves docs/login.png and docs/consent.png, and drives the
# admin console (console.mjs), which saves docs/console/*.png. The console runs
# again on PostgreSQL, and on SQLite with a listener of its own (console.bind);
# those screenshots go to the working directory. Last, the DPoP
# support (RFC 9449) of oauth4webapi and of requests-oauth2client (its DPoPKey,
# and negative proofs built with PyJWT) against a rotor with
# dpop.require_nonce on.
#
# Installs what is missing: Debian's chromium, the npm packages of
# tests/clients/package-lock.json (npm ci), and a pinned requests-oauthlib in
# target/clients-venv. ROTOR_BIN names the binary (default target/debug/rotor,
# built when missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/tests/clients

# requests-oauthlib and the oauthlib it runs on, pinned together, and
# requests-oauth2client for DPoP.
python_packages=(requests-oauthlib==2.0.0 oauthlib==4.0.1 requests-oauth2client==1.8.0 PyJWT==2.15.1)
venv=target/clients-venv
if ! "$venv/bin/python" -c 'import requests_oauthlib, oauthlib, requests_oauth2client, jwt, sys; from importlib.metadata import version; sys.exit(requests_oauthlib.__version__ != "2.0.0" or oauthlib.__version__ != "4.0.1" or version("requests-oauth2client") != "1.8.0" or version("PyJWT") != "2.15.1")' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${python_packages[@]}"
fi
if [ ! -d "$here/node_modules" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
# CHROMIUM=PATH uses another build; by default Debian's, installed when missing.
if [ -z "${CHROMIUM:-}" ] && [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
fi
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

bin=${ROTOR_BIN:-$root/target/debug/rotor}
if [ ! -x "$bin" ]; then
  if [ -n "${ROTOR_BIN:-}" ]; then
    echo "ROTOR_BIN=$ROTOR_BIN is not an executable" >&2
    exit 1
  fi
  cargo build --quiet
fi

admin_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# The database name is the URL's last path segment (no query string expected).
pg_database="rotor_clients_$$_$RANDOM"
pg_url="${admin_url%/*}/$pg_database"
pg_created=

work=$(mktemp -d)
pid=
stop_rotor() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
  fi
}
cleanup() {
  stop_rotor
  if [ -n "$pg_created" ]; then
    psql "$admin_url" -q -v ON_ERROR_STOP=1 \
      -c "drop database if exists \"$pg_database\" with (force)" >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
# Runs one check (a command) and counts it; its own output says what failed.
check() {
  local label=$1
  shift
  echo "== $label"
  if "$@"; then
    passed=$((passed + 1))
  else
    echo "== $label: FAILED"
    failed=$((failed + 1))
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts rotor on the database URL $2 with the users and clients the checks use,
# waits until it is ready, and exports what the checks read. $1 names the run and
# its working directory; $3, if given, is more TOML for its configuration. A
# failure to set the run up stops the script.
start_rotor() {
  local label=$1 url=$2 extra=${3:-}
  local dir="$work/$label"
  mkdir -p "$dir"
  local port
  port=$(free_port)
  export ROTOR_ISSUER="http://127.0.0.1:$port"
  cat >"$dir/rotor.toml" <<CONFIG
[server]
bind = "127.0.0.1:$port"
[database]
url = "$url"
[tokens]
issuer = "$ROTOR_ISSUER"
[passwords]
memory_kib = 64
iterations = 1
[log]
filter = "warn"
$extra
CONFIG
  rotor() { "$bin" --config "$dir/rotor.toml" "$@"; }

  export ROTOR_USERNAME=alice ROTOR_CLIENT_FIRST_PARTY=spa ROTOR_CLIENT_THIRD_PARTY=partner \
    ROTOR_CLIENT_BROWSER=viewer ROTOR_CLIENT_OFFLINE=native ROTOR_CLIENT_CONFIDENTIAL=web
  ROTOR_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
  ROTOR_CLIENT_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
  export ROTOR_PASSWORD ROTOR_CLIENT_SECRET
  export ROTOR_ADMIN=root
  ROTOR_ADMIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
  export ROTOR_ADMIN_PASSWORD

  # A loopback redirect URI registered without a port matches any port (RFC 8252 §7.3).
  local flow=(--grants "authorization_code,refresh_token" --scopes "read write"
    --redirect-uri http://127.0.0.1/callback)
  rotor migrate >/dev/null
  printf '%s' "$ROTOR_PASSWORD" | rotor user add "$ROTOR_USERNAME" --password-stdin >/dev/null
  printf '%s' "$ROTOR_ADMIN_PASSWORD" | rotor user add "$ROTOR_ADMIN" --admin --password-stdin >/dev/null
  rotor client add "$ROTOR_CLIENT_FIRST_PARTY" --public "${flow[@]}" >/dev/null
  rotor client add "$ROTOR_CLIENT_THIRD_PARTY" --public --third-party "${flow[@]}" >/dev/null
  rotor client add "$ROTOR_CLIENT_BROWSER" --public --third-party "${flow[@]}" >/dev/null
  rotor client add "$ROTOR_CLIENT_OFFLINE" --public --offline-access "${flow[@]}" >/dev/null
  printf '%s' "$ROTOR_CLIENT_SECRET" |
    rotor client add "$ROTOR_CLIENT_CONFIDENTIAL" --secret-stdin "${flow[@]}" >/dev/null

  # Not through the function: `rotor … &` would run in a subshell, and $! would be
  # that shell's PID, so the clean-up would stop the shell and leave rotor running.
  "$bin" --config "$dir/rotor.toml" serve >"$dir/server.log" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 20))
  until curl -fsS -o /dev/null "$ROTOR_ISSUER/readyz" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "rotor on $label exited before it was ready:"; cat "$dir/server.log"; return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "rotor on $label was not ready within 20 s:"; cat "$dir/server.log"; return 1
    fi
    sleep 0.05
  done
}

# Stops rotor after a run; one that died during it counts as a failure.
finish_rotor() {
  local label=$1
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "rotor exited during the run on $label:"; cat "$work/$label/server.log"
    failed=$((failed + 1))
  fi
  stop_rotor
}

psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "create database \"$pg_database\"" >/dev/null
pg_created=1

start_rotor sqlite "sqlite://$work/sqlite/rotor.db"
check "oauth4webapi on sqlite" node "$here/oauth4webapi.mjs"
check "requests-oauthlib on sqlite" "$venv/bin/python" "$here/requests_oauthlib_check.py"
check "chromium on sqlite" node "$here/browser.mjs"
check "console in chromium on sqlite" node "$here/console.mjs"
finish_rotor sqlite

start_rotor postgres "$pg_url"
check "oauth4webapi on postgres" node "$here/oauth4webapi.mjs"
check "console in chromium on postgres" \
  env ROTOR_SCREENSHOTS="$work/shots-postgres" node "$here/console.mjs"
finish_rotor postgres

console_port=$(free_port)
console_toml=$(printf '[console]\nbind = "127.0.0.1:%s"\nurl = "http://127.0.0.1:%s"' \
  "$console_port" "$console_port")
start_rotor console-bind "sqlite://$work/console-bind/rotor.db" "$console_toml"
check "console on a listener of its own in chromium on sqlite" \
  env ROTOR_SCREENSHOTS="$work/shots-console-bind" ROTOR_CONSOLE_URL="http://127.0.0.1:$console_port" \
  node "$here/console.mjs"
finish_rotor console-bind

start_rotor dpop "sqlite://$work/dpop/rotor.db" $'[dpop]\nrequire_nonce = true'
check "oauth4webapi DPoP with nonces on sqlite" node "$here/oauth4webapi_dpop.mjs"
# A public client of the password grant that must send proofs (--require-dpop).
export ROTOR_CLIENT_DPOP=cli-dpop
"$bin" --config "$work/dpop/rotor.toml" client add "$ROTOR_CLIENT_DPOP" --public \
  --grants password,refresh_token --scopes "read write" --require-dpop >/dev/null
check "requests-oauth2client DPoP with nonces on sqlite" "$venv/bin/python" "$here/requests_oauth2client_dpop.py"
finish_rotor dpop

echo "client checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
