#!/usr/bin/env bash
# Shows that an unknown user costs the same as a wrong password, and an unknown
# client the same as a wrong client secret: median latencies of each, measured
# against a real server with the default argon2id parameters. A measurement, not a
# test: it prints numbers and never fails on them.
#
# Usage: bench/timing.sh [ROUNDS]   (uses target/release/rotor, else target/debug/rotor)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-40}
rotor=target/release/rotor
[[ -x $rotor ]] || rotor=target/debug/rotor
[[ -x $rotor ]] || { echo "build rotor first (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d /tmp/rotor-timing.XXXXXX)
pid=""
cleanup() {
  [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ROTOR__DATABASE__URL="sqlite://$work/rotor.db"
export ROTOR__SERVER__BIND="127.0.0.1:$port"
# Lockout would answer wrong passwords without hashing after a few tries.
export ROTOR__LOCKOUT__ENABLED=false
export ROTOR__LOG__FILTER=warn
export ROTOR__KEYS__SECRET=timing-measurement-secret
secret=timing-client-secret-0123456789-abcdef
printf '%s' "$secret" | "$rotor" client add timing --secret-stdin >/dev/null
printf '%s' 'the right password' | "$rotor" user add alice --password-stdin >/dev/null
"$rotor" serve >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

python3 - "$port" "$rounds" "$secret" <<'PY'
import base64, http.client, statistics, sys, time, urllib.parse

port, rounds, secret = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

def basic(cid, sec):
    return "Basic " + base64.b64encode(f"{cid}:{sec}".encode()).decode()

def timed(form, auth):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = urllib.parse.urlencode(form)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}
    start = time.perf_counter()
    conn.request("POST", "/oauth2/token", body, headers)
    resp = conn.getresponse()
    resp.read()
    took = time.perf_counter() - start
    conn.close()
    return resp.status, took

cases = {
    "wrong password (known user)": ({"grant_type": "password", "username": "alice", "password": "nope"}, basic("timing", secret)),
    "unknown user": ({"grant_type": "password", "username": "mallory", "password": "nope"}, basic("timing", secret)),
    "wrong client secret (known client)": ({"grant_type": "refresh_token", "refresh_token": "x"}, basic("timing", "wrong-secret-0123456789-0123456789")),
    "unknown client": ({"grant_type": "refresh_token", "refresh_token": "x"}, basic("nobody", "wrong-secret-0123456789-0123456789")),
}
samples = {name: [] for name in cases}
statuses = {name: set() for name in cases}
# Interleaved, so that machine load hits every case alike.
for _ in range(rounds):
    for name, (form, auth) in cases.items():
        status, took = timed(form, auth)
        samples[name].append(took)
        statuses[name].add(status)

print(f"{'case':<36} {'status':>7} {'median ms':>10} {'p90 ms':>8}")
for name, xs in samples.items():
    xs.sort()
    print(f"{name:<36} {','.join(map(str, sorted(statuses[name]))):>7} "
          f"{statistics.median(xs) * 1000:>10.2f} {xs[int(len(xs) * 0.9) - 1] * 1000:>8.2f}")
m = {k: statistics.median(v) for k, v in samples.items()}
print(f"unknown user / wrong password:   {m['unknown user'] / m['wrong password (known user)']:.3f}")
print(f"unknown client / wrong secret:   {m['unknown client'] / m['wrong client secret (known client)']:.3f}")
PY
