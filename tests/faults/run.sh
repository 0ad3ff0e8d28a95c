#!/usr/bin/env bash
# Faults, on loopback: PostgreSQL restarted under refresh traffic (two instances),
# one of three instances killed with SIGKILL mid-traffic, a connection pool of two
# under 60 concurrent requests, SQLite on a full disk, and SQLite on a disk that
# turns read-only. The traffic and the checks are in faults.py; this script starts
# and stops the processes.
#
# Needs: target/debug/rotor (built by `cargo test`), the local PostgreSQL cluster
# on 127.0.0.1:5432 (user postgres, managed with pg_ctlcluster: this script
# restarts it, so run it when nothing else uses that server), root for a tmpfs
# mount and a loop-mounted ext4 image (mkfs.ext4, e2fsck), python3, curl. Stops everything it started, by PID, drops its database,
# unmounts, and makes sure PostgreSQL runs again. Ends with "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."

ROTOR=${ROTOR_BIN:-target/debug/rotor}
PG="postgres://postgres@127.0.0.1:5432"
PG_VERSION=$(ls /etc/postgresql | sort -V | tail -n1)
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
skip() { echo "skip - $*"; }

if [[ ! -x $ROTOR ]]; then
  echo "no $ROTOR: run cargo test (or cargo build) first" >&2
  exit 1
fi

work=$(mktemp -d /tmp/rotor-faults.XXXXXX)
db="rotor_faults_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
pids=()
mounts=()

pg_up() {
  pg_isready -q -h 127.0.0.1 -p 5432 -t 2 && return 0
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do
    pg_isready -q -h 127.0.0.1 -p 5432 -t 1 && return 0
    sleep 0.1
  done
  return 1
}

stop_pid() {
  local pid=$1
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  local pid
  for pid in ${pids[@]+"${pids[@]}"}; do stop_pid "$pid"; done
  pids=()
  local mount
  for mount in ${mounts[@]+"${mounts[@]}"}; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
  done
  pg_up || echo "PostgreSQL did not come back: start it with pg_ctlcluster $PG_VERSION main start" >&2
  psql "$PG/postgres" -qtAc "drop database if exists $db with (force)" >/dev/null 2>&1 || true
  if [[ ${KEEP_FAULTS_LOGS:-} == "" ]]; then rm -rf "$work"; else echo "logs kept in $work"; fi
}
trap stop_all EXIT

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks:
    s.close()
PY
}

# ready URL [PID]: polls URL until it answers (30 s at most), or until PID exits.
ready() {
  local url=$1 pid=${2:-}
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null && return 1
    sleep 0.1
  done
  return 1
}

# start NAME [VAR=VALUE...]: one `rotor serve` in the background on a free port;
# sets $started (its PID) and $port. Ports are picked just before use, and picked
# again when another process took the port in between.
start() {
  local name=$1 attempt
  shift
  for attempt in 1 2 3; do
    port=$(free_ports 1)
    env "$@" ROTOR__SERVER__BIND="127.0.0.1:$port" ROTOR__TOKENS__ISSUER="http://127.0.0.1:$port" \
      "$ROTOR" serve >"$work/$name.out" 2>"$work/$name.log" &
    started=$!
    pids+=("$started")
    ready "http://127.0.0.1:$port/readyz" "$started" && return 0
    if grep -q 'Address already in use' "$work/$name.log"; then
      wait "$started" 2>/dev/null || true
      forget "$started"
      continue
    fi
    break
  done
  echo "$name did not become ready:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

# tally FILE: adds the ok/FAIL lines faults.py printed.
tally() {
  passed=$((passed + $(grep -c '^ok - ' "$1" || true)))
  failed=$((failed + $(grep -c '^FAIL - ' "$1" || true)))
}

# forget PID: it was reaped, so never signal it again.
forget() {
  local i
  for i in "${!pids[@]}"; do [[ ${pids[$i]} == "$1" ]] && unset 'pids[i]'; done
  return 0
}

pg_up
export ROTOR__PASSWORDS__MEMORY_KIB=1024
export ROTOR__PASSWORDS__ITERATIONS=1
export ROTOR__LOG__FORMAT=json
export ROTOR__SERVER__SHUTDOWN_TIMEOUT=5s
export ROTOR__CLEANUP__ENABLED=false
unset RUST_LOG
export FAULTS_CLIENT=faults
FAULTS_SECRET="faults-secret-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
FAULTS_PASSWORD="faults-password-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
export FAULTS_SECRET FAULTS_PASSWORD FAULTS_USER=dave

# add_principals URL: the client and the user, with the CLI.
add_principals() {
  printf '%s' "$FAULTS_SECRET" | ROTOR__DATABASE__URL=$1 "$ROTOR" client add faults \
    --secret-stdin --scopes "read write" >/dev/null 2>>"$work/cli.log"
  printf '%s' "$FAULTS_PASSWORD" | ROTOR__DATABASE__URL=$1 "$ROTOR" user add dave \
    --password-stdin >/dev/null 2>>"$work/cli.log"
}

faults() {
  local name=$1
  shift
  set +e
  python3 tests/faults/faults.py "$@" | tee "$work/$name.checks"
  set -e
  tally "$work/$name.checks"
}

# --- PostgreSQL: one fresh database, three instances -------------------------------
psql "$PG/postgres" -qtAc "create database $db" >/dev/null
export ROTOR__DATABASE__URL="$PG/$db"
ports=()
pg_pids=()
for i in 0 1 2; do
  start "pg$i" ROTOR__DATABASE__MAX_CONNECTIONS=8
  ports+=("$port")
  pg_pids+=("$started")
done
p1=${ports[0]} p2=${ports[1]} p3=${ports[2]}
add_principals "$PG/$db"

# 1. PostgreSQL restarted under refresh traffic on the first two instances.
if [[ ${FAULTS_SKIP_PG_RESTART:-} == "" ]]; then
  faults pg-restart pg-restart "$PG/$db" "$PG_VERSION" \
    "$p1:${pg_pids[0]}" "$p2:${pg_pids[1]}" "$p3:${pg_pids[2]}"
  pg_up
else
  skip "PostgreSQL restart (FAULTS_SKIP_PG_RESTART is set)"
fi

# 2. SIGKILL to the third instance while clients refresh on all three.
faults kill kill "$PG/$db" "$p1:${pg_pids[0]}" "$p2:${pg_pids[1]}" "$p3:${pg_pids[2]}"
victim=${pg_pids[2]}
if ! kill -0 "$victim" 2>/dev/null || [[ $(ps -o stat= -p "$victim" 2>/dev/null) == Z* ]]; then
  wait "$victim" 2>/dev/null || true
  forget "$victim"
fi

# 3. A pool of two connections under 60 concurrent requests.
start pool ROTOR__DATABASE__MAX_CONNECTIONS=2
faults pool pool "$PG/$db" "$port:$started" "$p1"

for pid in ${pids[@]+"${pids[@]}"}; do stop_pid "$pid"; done
pids=()

# 4. SQLite on a full disk: a 4 MiB tmpfs, filled while rotor refreshes on it.
disk="$work/disk"
mkdir -p "$disk"
method=""
if mount -t tmpfs -o size=4m tmpfs "$disk" 2>"$work/mount.err"; then
  mounts+=("$disk")
  method="tmpfs of 4 MiB"
elif command -v mkfs.ext4 >/dev/null && truncate -s 8M "$work/disk.img" &&
  mkfs.ext4 -q -F "$work/disk.img" >/dev/null 2>&1 &&
  mount -o loop "$work/disk.img" "$disk" 2>>"$work/mount.err"; then
  mounts+=("$disk")
  method="loop-mounted ext4 image of 8 MiB"
fi
if [[ -n $method ]]; then
  echo "# full disk made with a $method"
  sqlite_url="sqlite://$disk/rotor.db"
  add_principals "$sqlite_url"
  start sqlite ROTOR__DATABASE__URL="$sqlite_url" ROTOR__DATABASE__MAX_CONNECTIONS=4
  faults sqlite sqlite "$port:$started" "$disk/filler" "$work/sqlite.log"
else
  skip "SQLite on a full disk: neither a tmpfs nor a loop mount is permitted here ($(head -c 200 "$work/mount.err"))"
fi

for pid in ${pids[@]+"${pids[@]}"}; do stop_pid "$pid"; done
pids=()

# 5. SQLite on a disk that turns read-only: an ext4 image mounted with
# errors=remount-ro, turned read-only under traffic by ext4's own error trigger
# (as the kernel does when a disk fails), then checked with e2fsck and mounted again.
ro_disk="$work/ro-disk"
mkdir -p "$ro_disk"
if command -v mkfs.ext4 >/dev/null && command -v e2fsck >/dev/null &&
  truncate -s 16M "$work/ro.img" && mkfs.ext4 -q -F "$work/ro.img" >/dev/null 2>&1 &&
  mount -o loop,errors=remount-ro "$work/ro.img" "$ro_disk" 2>"$work/ro-mount.err"; then
  mounts+=("$ro_disk")
  device=$(basename "$(findmnt -no SOURCE "$ro_disk")")
  ro_url="sqlite://$ro_disk/rotor.db"
  add_principals "$ro_url"
  start readonly ROTOR__DATABASE__URL="$ro_url" ROTOR__DATABASE__MAX_CONNECTIONS=4
  faults readonly readonly "$port:$started" "/sys/fs/ext4/$device/trigger_fs_error" \
    "$work/readonly.log" "$work/unspent.tokens"
  stop_pid "$started"
  forget "$started"

  # A database on a read-only disk at start: rotor exits and says why.
  set +e
  ROTOR__DATABASE__URL="$ro_url" ROTOR__SERVER__BIND=127.0.0.1:0 timeout 30 "$ROTOR" serve \
    >"$work/readonly-start.out" 2>"$work/readonly-start.log"
  status=$?
  set -e
  if [[ $status -ne 0 && $status -ne 124 ]] &&
    grep -q 'rotor.db cannot be written' "$work/readonly-start.log" &&
    grep -q 'Read-only file system' "$work/readonly-start.log"; then
    ok "started on the read-only disk, rotor exits ($status) naming the file and the cause"
  else
    fail "started on the read-only disk, rotor exits naming the file and the cause" \
      "(status $status: $(grep -v '^ *[0-9]*:\|^ *at ' "$work/readonly-start.log" | head -c 400))"
  fi

  # Repaired: checked, mounted again, served by a new instance.
  umount "$ro_disk"
  e2fsck -fy "$work/ro.img" >"$work/e2fsck.out" 2>&1 || true
  mount -o loop,errors=remount-ro "$work/ro.img" "$ro_disk"
  start repaired ROTOR__DATABASE__URL="$ro_url"
  faults repaired repaired "$port:$started" "$work/unspent.tokens"
else
  skip "SQLite on a read-only disk: no loop-mounted ext4 here ($(head -c 200 "$work/ro-mount.err" 2>/dev/null))"
fi

if grep -q 'panicked' "$work"/*.log; then
  fail "no rotor process panicked"
else
  ok "no rotor process panicked"
fi
if grep -qF -e "$FAULTS_SECRET" -e "$FAULTS_PASSWORD" "$work"/*.log "$work"/*.out; then
  fail "no log line holds the client secret or the password"
else
  ok "no log line holds the client secret or the password"
fi
check_no_tokens() {
  # Refresh tokens have a recognisable prefix; none may appear in any log.
  ! grep -q 'rotor_rt_' "$work"/*.log
}
if check_no_tokens; then ok "no log line holds a refresh token"; else fail "no log line holds a refresh token"; fi

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
