#!/usr/bin/env bash
# schemathesis against a real rotor (debug build, loopback port), once on a fresh
# SQLite file and once on a fresh PostgreSQL database (created here and dropped
# afterwards; the server is the one DATABASE_URL names, by default
# postgres://postgres@127.0.0.1:5432/postgres): no answer may be a 5xx, and every
# answer must match src/http/openapi.json. Generated input reaches each store, so a
# value one of them refuses (PostgreSQL refuses U+0000 in text) shows as a failure.
# Installs a pinned schemathesis into target/schemathesis-venv when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

version=4.32.5
venv=target/schemathesis-venv
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
[ -x target/debug/rotor ] || cargo test --no-run --quiet
bin=target/debug/rotor

admin_url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# The database name is the URL's last path segment (no query string expected).
pg_database="rotor_schemathesis_$$_$RANDOM"
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

# Runs schemathesis against a rotor on the database URL $2; $1 names the run and
# its working directory. A failed check or a rotor that died sets `overall`; a
# failure to set the run up stops the script (set -e holds here, because the
# function is not called as part of a condition).
overall=0
run_against() {
  local label=$1 url=$2
  local dir="$work/$label"
  mkdir -p "$dir"
  local port base
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  cat >"$dir/rotor.toml" <<CONFIG
[server]
bind = "127.0.0.1:$port"
[database]
url = "$url"
[tokens]
issuer = "$base"
[passwords]
memory_kib = 64
iterations = 1
[log]
filter = "warn"
CONFIG
  rotor() { "$bin" --config "$dir/rotor.toml" "$@"; }

  local secret password
  secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
  password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
  rotor migrate >/dev/null
  # An admin's token with rotor:admin, so that the admin API is tested past its
  # guard too (every change it makes lands in this run's own database).
  printf '%s' "$secret" | rotor client add schemathesis --secret-stdin --scopes "read write rotor:admin" >/dev/null
  printf '%s' "$password" | rotor user add alice --admin --password-stdin >/dev/null
  # Not through the function: `rotor … &` would run in a subshell, and $! would be
  # that shell's PID, so the clean-up would stop the shell and leave rotor running.
  "$bin" --config "$dir/rotor.toml" serve >"$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null "$base/oauth2/jwks" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log"; return 1; }
    sleep 0.05
  done

  local token
  token=$(curl -fsS -u "schemathesis:$secret" -d grant_type=password -d username=alice \
    --data-urlencode "password=$password" "$base/oauth2/token" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
  export ROTOR_ST_CLIENT_ID=schemathesis ROTOR_ST_CLIENT_SECRET="$secret" ROTOR_ST_ACCESS_TOKEN="$token"

  # Operations documented for routes that this build does not serve (they answer the
  # router's 404 fallback) are left out; everything else is tested.
  local excluded=() path
  for path in $(python3 -c 'import json; print(" ".join(json.load(open("src/http/openapi.json"))["paths"]))'); do
    if curl -sS "$base$path" | grep -q '"no such endpoint"'; then
      echo "not served by this build, skipped: $path"
      excluded+=(--exclude-path "$path")
    fi
  done

  local status=0
  echo "schemathesis on $label"
  # Run from the run's directory, so that schemathesis' cache stays out of the tree.
  (cd "$dir" && "$root/$venv/bin/st" --config-file "$root/tests/schemathesis/schemathesis.toml" run "$base/openapi.json" \
    --phases examples,coverage,fuzzing \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method,allow_header_conformance \
    --report junit --report-junit-path "$dir/junit.xml" \
    "${excluded[@]}") || status=$?

  if kill -0 "$pid" 2>/dev/null; then :; else
    echo "rotor exited during the run on $label:"; cat "$dir/server.log"; status=1
  fi
  stop_rotor
  python3 - "$dir/junit.xml" "$status" "$label" <<'PY'
import sys
import xml.etree.ElementTree as ET
try:
    cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
except (OSError, ET.ParseError):
    cases = []
failed = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
if int(sys.argv[2]) != 0 and failed == 0:
    failed = 1
print(f"schemathesis on {sys.argv[3]}: {len(cases) - failed} passed, {failed} failed")
PY
  [ "$status" -eq 0 ] || overall=1
}

psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "create database \"$pg_database\"" >/dev/null
pg_created=1

run_against sqlite "sqlite://$work/sqlite/rotor.db"
run_against postgres "$pg_url"
exit "$overall"
