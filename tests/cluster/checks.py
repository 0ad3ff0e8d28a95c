#!/usr/bin/env python3
"""Checks three rotor instances through the balancer: the HTTP part of run.sh.

Prints one `ok - …` or `FAIL - …` line per check. Standard library only.
Usage: checks.py LB_URL CLIENT_ID CLIENT_SECRET USERNAME PASSWORD PORT:PID PORT:PID PORT:PID
"""

import base64
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

LB, CLIENT, SECRET, USER, PASSWORD = sys.argv[1:6]
INSTANCES = [tuple(int(x) for x in arg.split(":")) for arg in sys.argv[6:9]]
AUTH = "Basic " + base64.b64encode(
    f"{urllib.parse.quote_plus(CLIENT)}:{urllib.parse.quote_plus(SECRET)}".encode()
).decode()
failed = 0


def report(ok, what, detail=""):
    global failed
    if not ok:
        failed += 1
    print(("ok - " if ok else "FAIL - ") + what + (f": {detail}" if detail and not ok else ""), flush=True)


def request(url, form=None, timeout=30):
    """(status, json body or None, headers); status 0 for a connection failure."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data)
    if form is not None:
        req.add_header("Authorization", AUTH)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
            status, headers = r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        body, status, headers = e.read(), e.code, dict(e.headers)
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError) as e:
        return 0, {"error": repr(e)}, {}
    try:
        return status, json.loads(body), headers
    except ValueError:
        return status, body.decode(errors="replace"), headers


def token(base, form):
    return request(f"{base}/oauth2/token", form)


def login(base=LB):
    return token(base, {"grant_type": "password", "username": USER, "password": PASSWORD})


def refresh(rt, base=LB):
    return token(base, {"grant_type": "refresh_token", "refresh_token": rt})


def direct(port):
    return f"http://127.0.0.1:{port}"


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


REFRESHED = 'rotor_token_requests_total{grant_type="refresh_token",outcome="success"}'


def refreshes_counted():
    """The successful refreshes every instance's metrics count, summed."""
    return sum(metric(request(f"{direct(port)}/metrics")[1], REFRESHED) for port, _ in INSTANCES)


# The refreshes run before these checks (run.sh's DPoP ones) are not this file's.
counted_before = refreshes_counted()

# 1. Password grant through the balancer.
status, body, _ = login()
report(status == 200 and "refresh_token" in body and "access_token" in body,
       "password grant through the balancer", f"{status} {body}")
refreshes_ok = 0

# 2. A chain of refreshes, round-robin over the instances.
rt = body.get("refresh_token", "") if isinstance(body, dict) else ""
upstreams, chain_ok = [], True
for i in range(24):
    status, body, headers = refresh(rt)
    if status != 200:
        chain_ok = False
        report(False, "chain of 24 refreshes", f"refresh {i}: {status} {body}")
        break
    refreshes_ok += 1
    rt = body["refresh_token"]
    upstreams.append(headers.get("X-Upstream", "?"))
if chain_ok:
    report(True, "chain of 24 refreshes through the balancer")
    report(len(set(upstreams)) == 3, "the chain landed on all three instances",
           f"upstreams: {sorted(set(upstreams))}")

# 3. Every instance publishes the same key set.
jwks = [request(f"{direct(port)}/oauth2/jwks")[1] for port, _ in INSTANCES]
report(all(j == jwks[0] for j in jwks) and len(jwks[0].get("keys", [])) >= 1,
       "all instances publish the same signing keys", f"{jwks}")

# 4. 50 parallel uses of one refresh token: exactly one success.
_, body, _ = login()
rt = body["refresh_token"]
barrier = threading.Barrier(50)
statuses = []
lock = threading.Lock()


def racer():
    barrier.wait()
    status, body, _ = refresh(rt)
    with lock:
        statuses.append((status, body.get("error") if isinstance(body, dict) else body))


threads = [threading.Thread(target=racer) for _ in range(50)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
wins = sum(1 for s, _ in statuses if s == 200)
refreshes_ok += wins
report(len(statuses) == 50 and wins == 1
       and all(s == 200 or (s == 400 and e == "invalid_grant") for s, e in statuses),
       "50 parallel uses of one refresh token give exactly one 200",
       f"{sorted(statuses, key=str)}")

# 5. Reuse detected on one instance revokes the family on the others.
(pa, _), (pb, _), (pc, _) = INSTANCES
_, body, _ = login()
rt0 = body["refresh_token"]
s1, b1, _ = refresh(rt0, direct(pa))
s2, b2, _ = refresh(b1.get("refresh_token", ""), direct(pb))
refreshes_ok += (s1 == 200) + (s2 == 200)
newest = b2.get("refresh_token", "") if isinstance(b2, dict) else ""
s3, b3, _ = refresh(rt0, direct(pc))
after = [refresh(newest, direct(port)) for port in (pa, pb)]
report(s1 == 200 and s2 == 200 and s3 == 400 and b3.get("error") == "invalid_grant"
       and all(s == 400 and b.get("error") == "invalid_grant" for s, b, _ in after),
       "reuse detected on one instance revokes the newest token on the others",
       f"{s1} {s2} {s3} {b3} {[(s, b) for s, b, _ in after]}")

# 6. Metrics: every instance ready, and the refreshes counted once in all.
texts = [request(f"{direct(port)}/metrics")[1] for port, _ in INSTANCES]
ready = [request(f"{direct(port)}/readyz")[0] for port, _ in INSTANCES]
counted = sum(metric(t, REFRESHED) for t in texts) - counted_before
reuses = sum(metric(t, 'rotor_token_requests_total{grant_type="refresh_token",outcome="reuse_detected"}')
             for t in texts)
report(ready == [200, 200, 200], "every instance is ready", f"{ready}")
report(counted == refreshes_ok and reuses >= 1,
       "metrics count each successful refresh once across instances",
       f"counted {counted}, made {refreshes_ok}, reuses {reuses}")

# 7. SIGTERM to one instance while refresh chains flow through the balancer.
victim_port, victim_pid = INSTANCES[1]
stop = threading.Event()
results, errors = [], []


def worker():
    status, body, _ = login()
    if status != 200:
        errors.append(f"login {status} {body}")
        return
    rt = body["refresh_token"]
    for _ in range(400):
        if stop.is_set():
            return
        status, body, _ = refresh(rt)
        with lock:
            results.append(status)
        if status != 200:
            errors.append(f"refresh {status} {body}")
            return
        rt = body["refresh_token"]


workers = [threading.Thread(target=worker) for _ in range(6)]
for w in workers:
    w.start()


def wait_for(predicate, tries=300, pause=0.02):
    for _ in range(tries):
        if predicate():
            return True
        time.sleep(pause)
    return predicate()


flowing = wait_for(lambda: len(results) >= 30)
os.kill(victim_pid, signal.SIGTERM)
sent_at = len(results)


def refused():
    try:
        socket.create_connection(("127.0.0.1", victim_port), timeout=1).close()
        return False
    except OSError:
        return True


closed = wait_for(refused, tries=500)
# Keep the load on for a while after the listener closed.
wait_for(lambda: len(results) >= sent_at + 120 or not any(w.is_alive() for w in workers), tries=1000)
stop.set()
for w in workers:
    w.join(60)
print(f"# {len(results)} refreshes through the balancer, {len(results) - sent_at} after the SIGTERM", flush=True)
report(flowing and closed, "SIGTERM closed one instance's listener while requests flowed",
       f"flowing={flowing} closed={closed}")
report(not errors and len(results) >= sent_at + 60,
       "no request failed across the SIGTERM (every refresh chain unbroken)",
       f"{len(results)} requests, errors: {errors[:5]}")

sys.exit(1 if failed else 0)
