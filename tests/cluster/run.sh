#!/usr/bin/env bash
# Three `rotor serve` processes on one fresh PostgreSQL database behind nginx
# (round-robin), all on loopback; checks through the balancer that any instance
# serves any request, that refresh tokens are single-use across instances, that
# reuse detection on one revokes on all, that DPoP proofs, nonces and bound
# refresh tokens hold across instances, and that a SIGTERM loses no request.
#
# Needs: target/debug/rotor (built by `cargo test`), PostgreSQL on 127.0.0.1:5432
# (user postgres), python3, node, curl; installs Debian's nginx when missing.
# Stops everything it started, by PID, and drops its database. Ends with
# "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."

ROTOR=${ROTOR_BIN:-target/debug/rotor}
PG="postgres://postgres@127.0.0.1:5432"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

if [[ ! -x $ROTOR ]]; then
  echo "no $ROTOR: run cargo test (or cargo build) first" >&2
  exit 1
fi
if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d /tmp/rotor-cluster.XXXXXX)
chmod 755 "$work"
db="rotor_cluster_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
pids=()
nginx_pid=""

stop_all() {
  local pid
  for pid in ${pids[@]+"${pids[@]}"} $nginx_pid; do
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${pids[@]+"${pids[@]}"} $nginx_pid; do
    [[ -n $pid ]] || continue
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  psql "$PG/postgres" -qtAc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  if [[ ${KEEP_CLUSTER_LOGS:-} == "" ]]; then rm -rf "$work"; else echo "logs kept in $work"; fi
}
trap stop_all EXIT

# Free loopback ports for three instances and the balancer.
read -r p1 p2 p3 lb < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
PY
)
ports=("$p1" "$p2" "$p3")

psql "$PG/postgres" -qtAc "create database $db" >/dev/null
export ROTOR__DATABASE__URL="$PG/$db"
export ROTOR__DATABASE__MAX_CONNECTIONS=8
export ROTOR__TOKENS__ISSUER="http://127.0.0.1:$lb"
export ROTOR__PASSWORDS__MEMORY_KIB=1024
export ROTOR__PASSWORDS__ITERATIONS=1
export ROTOR__LOG__FORMAT=json
export ROTOR__SERVER__SHUTDOWN_TIMEOUT=10s
unset RUST_LOG

# All three start at once on the empty database: migrations, the signing key and
# the first-start demo client race, and must each happen once.
for i in 0 1 2; do
  ROTOR__SERVER__BIND="127.0.0.1:${ports[$i]}" "$ROTOR" serve \
    >"$work/rotor$i.out" 2>"$work/rotor$i.log" &
  pids+=($!)
done

ready() {
  local url=$1
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
for i in 0 1 2; do
  if ! ready "http://127.0.0.1:${ports[$i]}/readyz"; then
    echo "instance $i did not become ready:" >&2
    cat "$work/rotor$i.log" >&2
    exit 1
  fi
done
ok "three instances started together on one empty database are ready"
sql() { psql "$PG/$db" -qtAc "$1"; }
migrations=$(ls migrations/postgres/*.sql | wc -l)
check "each migration applied once ($migrations)" \
  test "$(sql 'select count(*) from _sqlx_migrations where success')" -eq "$migrations"
check "exactly one signing key was created" test "$(sql 'select count(*) from signing_keys')" -eq 1
check "exactly one instance created the demo client" \
  test "$(cat "$work"/rotor*.out | grep -c 'First start')" -eq 1

# A client and a user, added with the CLI as an operator would.
secret="cluster-secret-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
password="cluster-password-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
printf '%s' "$secret" | "$ROTOR" client add cluster --secret-stdin --scopes "read write" \
  >/dev/null 2>>"$work/cli.log"
printf '%s' "$password" | "$ROTOR" user add carol --password-stdin >/dev/null 2>>"$work/cli.log"
# A public client whose proofs need nonces, for the DPoP checks (RFC 9449).
"$ROTOR" client add clusterspa --public --grants password,refresh_token --scopes "read write" \
  --dpop-nonce true >/dev/null 2>>"$work/cli.log"

cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
    log_format upstream '\$status \$upstream_addr \$upstream_status \$request_time';
    access_log $work/nginx-access.log upstream;
    client_body_temp_path $work/client_body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    upstream rotor {
        server 127.0.0.1:$p1 max_fails=1 fail_timeout=5s;
        server 127.0.0.1:$p2 max_fails=1 fail_timeout=5s;
        server 127.0.0.1:$p3 max_fails=1 fail_timeout=5s;
    }
    server {
        listen 127.0.0.1:$lb;
        location / {
            proxy_pass http://rotor;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Request-Id \$request_id;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            proxy_next_upstream error http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            add_header X-Upstream \$upstream_addr always;
        }
    }
}
NGINX
"$NGINX" -e "$work/nginx-error.log" -p "$work" -c "$work/nginx.conf" &
nginx_pid=$!
if ! ready "http://127.0.0.1:$lb/healthz"; then
  cat "$work/nginx-error.log" >&2
  exit 1
fi
ok "nginx balances over the three instances"

# The HTTP checks, through the balancer and on each instance: DPoP first, while
# all three instances are up (checks.py stops one of them).
# tally NAME STATUS: adds NAME's ok/FAIL lines to the counts, and one failure
# when it exited badly without a FAIL line (it stopped before its checks ended).
tally() {
  local out="$work/$1.out" fails
  fails=$(grep -c '^FAIL - ' "$out" || true)
  passed=$((passed + $(grep -c '^ok - ' "$out" || true)))
  failed=$((failed + fails))
  if [[ $2 != 0 && $fails == 0 ]]; then fail "$1 exited with status $2"; fi
}
set +e
node tests/cluster/dpop.mjs "http://127.0.0.1:$lb" clusterspa carol "$password" "$p1" "$p2" "$p3" \
  | tee "$work/dpop.out"
tally dpop "${PIPESTATUS[0]}"
python3 tests/cluster/checks.py "http://127.0.0.1:$lb" cluster "$secret" carol "$password" \
  "$p1:${pids[0]}" "$p2:${pids[1]}" "$p3:${pids[2]}" | tee "$work/checks.out"
tally checks "${PIPESTATUS[0]}"
set -e

# The instance that got SIGTERM exited by itself, cleanly, within its timeout.
victim=${pids[1]}
exited=1
for _ in $(seq 1 150); do
  kill -0 "$victim" 2>/dev/null || { exited=0; break; }
  if [[ $(ps -o stat= -p "$victim" 2>/dev/null) == Z* ]]; then exited=0; break; fi
  sleep 0.1
done
status=1
if [[ $exited == 0 ]]; then
  wait "$victim" && status=0 || status=$?
  pids[1]=""  # reaped: its PID may be reused, never signal it again
fi
check "the stopped instance exited with status 0" test "$status" -eq 0
check "it finished its requests without hitting shutdown_timeout" \
  bash -c "grep -q 'shut down' '$work/rotor1.log' && ! grep -q 'shutdown_timeout elapsed' '$work/rotor1.log'"
check "no 5xx answered through the balancer" \
  bash -c "! awk '{print \$1}' '$work/nginx-access.log' | grep -q '^5'"
retried=$(grep -c ', ' "$work/nginx-access.log" || true)
echo "# nginx retried $retried request(s) on another instance"
check "no log line holds the client secret or the password" \
  bash -c "! grep -qF -e '$secret' -e '$password' '$work'/rotor*.log"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
