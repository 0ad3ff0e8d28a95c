#!/usr/bin/env python3
"""The traffic and the checks of run.sh, one fault per subcommand.

Prints one `ok - …` or `FAIL - …` line per check (and `# …` notes); never prints a
token, password or secret. Standard library only; every request has a client
timeout and every loop a bound.

  faults.py pg-restart DB_URL PG_VERSION PORT:PID PORT:PID PORT:PID
  faults.py kill       DB_URL PORT:PID PORT:PID PORT:PID     (kills the last one)
  faults.py pool       DB_URL PORT:PID SPARE_PORT
  faults.py sqlite     PORT:PID FILLER LOG
  faults.py readonly   PORT:PID TRIGGER LOG UNSPENT   (TRIGGER: ext4's trigger_fs_error)
  faults.py repaired   PORT:PID UNSPENT

Client credentials and the user come from FAULTS_CLIENT, FAULTS_SECRET,
FAULTS_USER and FAULTS_PASSWORD in the environment.
"""

import base64
import errno
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CLIENT = os.environ["FAULTS_CLIENT"]
SECRET = os.environ["FAULTS_SECRET"]
USER = os.environ["FAULTS_USER"]
PASSWORD = os.environ["FAULTS_PASSWORD"]
AUTH = "Basic " + base64.b64encode(
    f"{urllib.parse.quote_plus(CLIENT)}:{urllib.parse.quote_plus(SECRET)}".encode()
).decode()
TIMEOUT = 10.0  # client timeout of every request: a hang counts as a failure
failed = 0
lock = threading.Lock()


def report(ok, what, detail=""):
    global failed
    if not ok:
        failed += 1
    print(("ok - " if ok else "FAIL - ") + what + (f": {detail}" if detail and not ok else ""),
          flush=True)


def note(text):
    print(f"# {text}", flush=True)


class Answer:
    """One HTTP exchange. status 0: no answer (refused, reset or timed out)."""

    def __init__(self, status, body, headers, started, elapsed):
        self.status, self.body, self.headers = status, body, headers
        self.started, self.elapsed = started, elapsed

    @property
    def error(self):
        return self.body.get("error") if isinstance(self.body, dict) else None

    def is_unavailable(self):
        """The promised answer of a store outage: 503, the RFC error, Retry-After."""
        return (self.status == 503 and self.error == "temporarily_unavailable"
                and "retry-after" in {k.lower() for k in self.headers})

    def describe(self):
        # Error bodies only: a 200 would carry tokens.
        return f"{self.status} {self.error or ''} after {self.elapsed:.1f}s"


def request(url, form=None, timeout=TIMEOUT):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data)
    if form is not None:
        req.add_header("Authorization", AUTH)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body, status, headers = r.read(), r.status, dict(r.headers)
    except urllib.error.HTTPError as e:
        body, status, headers = e.read(), e.code, dict(e.headers)
    except (urllib.error.URLError, ConnectionError, socket.timeout, OSError) as e:
        return Answer(0, {"error": type(e).__name__}, {}, started, time.monotonic() - started)
    try:
        body = json.loads(body)
    except ValueError:
        body = body.decode(errors="replace")
    return Answer(status, body, headers, started, time.monotonic() - started)


def login(base, timeout=TIMEOUT):
    return request(f"{base}/oauth2/token",
                   {"grant_type": "password", "username": USER, "password": PASSWORD}, timeout)


def refresh(base, rt, timeout=TIMEOUT):
    return request(f"{base}/oauth2/token",
                   {"grant_type": "refresh_token", "refresh_token": rt}, timeout)


def url(port):
    return f"http://127.0.0.1:{port}"


def instances(args):
    return [tuple(int(x) for x in a.split(":")) for a in args]


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie (killed, not yet reaped by run.sh) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def psql(db, sql):
    out = subprocess.run(["psql", db, "-qtAX", "-c", sql], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout.strip()


def sha256_hex(token):
    return hashlib.sha256(token.encode()).hexdigest()


def jti_of(jwt):
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


class Issued:
    """What the clients received in 200s, kept as hashes and ids only."""

    def __init__(self):
        self.refresh_hashes, self.jtis = set(), set()

    def add(self, body):
        with lock:
            self.refresh_hashes.add(sha256_hex(body["refresh_token"]))
            self.jtis.add(jti_of(body["access_token"]))

    def check_stored(self, db, what):
        stored = set(psql(db, "select encode(token_hash, 'hex') from refresh_tokens").split())
        jtis = set(psql(db, "select jti::text from access_tokens").split())
        missing_rt = len(self.refresh_hashes - stored)
        missing_at = len(self.jtis - jtis)
        report(self.refresh_hashes and missing_rt == 0 and missing_at == 0,
               f"{what}: every token received in a 200 is in the database "
               f"({len(self.refresh_hashes)} refresh tokens, {len(self.jtis)} access tokens)",
               f"{missing_rt} refresh and {missing_at} access tokens missing")


class Chain:
    """One client walking its own refresh chain.

    `ambiguous` is set when a refresh got no answer or a 503: the rotation may have
    committed anyway, so an invalid_grant for the retry only means the chain is
    lost (a new login follows and is counted), not that rotor broke a promise.
    """

    def __init__(self, index, issued):
        self.index, self.issued = index, issued
        self.rt, self.ambiguous = None, False
        self.answers, self.bad = [], []
        self.lost = self.logins = 0
        self.last_ok = None

    def step(self, base, expect_no_answer=lambda base: False):
        """One login or refresh against `base`; returns the Answer."""
        kind = "login" if self.rt is None else "refresh"
        a = login(base) if kind == "login" else refresh(base, self.rt)
        self.answers.append(a)
        if a.status == 200:
            self.issued.add(a.body)
            self.rt, self.ambiguous = a.body["refresh_token"], False
            self.last_ok = time.monotonic()
            self.logins += kind == "login"
        elif a.status == 0 and expect_no_answer(base):
            self.ambiguous = kind == "refresh"
        elif a.is_unavailable():
            self.ambiguous = self.ambiguous or kind == "refresh"
        elif kind == "refresh" and a.status == 400 and a.error == "invalid_grant" and self.ambiguous:
            self.lost += 1
            self.rt, self.ambiguous = None, False
        else:
            self.bad.append(f"client {self.index} {kind} on :{base.rsplit(':', 1)[1]}: {a.describe()}")
            self.rt, self.ambiguous = None, False
        return a


def run_chains(chains, pick_base, stop, expect_no_answer=lambda base: False, max_steps=3000):
    """Each chain in its own thread until `stop` is set after one of its 200s."""

    def walk(chain):
        for n in range(max_steps):
            a = chain.step(pick_base(chain, n), expect_no_answer)
            if a.status == 200 and stop.is_set():
                return
            if a.status != 200:
                time.sleep(0.1)  # back off a little on any failure

    threads = [threading.Thread(target=walk, args=(c,), daemon=True) for c in chains]
    for t in threads:
        t.start()
    return threads


def wait_for(predicate, seconds, pause=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause)
    return predicate()


def join_all(threads, seconds):
    deadline = time.monotonic() + seconds
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def successes(chains):
    return sum(1 for c in chains for a in list(c.answers) if a.status == 200)


# --------------------------------------------------------------------------------------
def pg_restart(db, version, *specs):
    """PostgreSQL stopped and started again under refresh traffic on two instances."""
    insts = instances(specs)
    bases = [url(p) for p, _ in insts[:2]]
    issued = Issued()
    chains = [Chain(i, issued) for i in range(8)]
    stop = threading.Event()
    threads = run_chains(chains, lambda c, n: bases[(c.index + n) % 2], stop)
    flowing = wait_for(lambda: successes(chains) >= 80, 30)
    before = successes(chains)

    ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", "-m", "fast", version, "main"]
    down_at = time.monotonic()
    stopped = subprocess.run(ctl + ["stop"], capture_output=True, text=True, timeout=60)
    # Down for longer than the pool's acquire timeout (5 s), so that requests that
    # wait for a connection must give up with 503 rather than be served late.
    stopped_at = time.monotonic()
    time.sleep(6)
    starting_at = time.monotonic()
    started = subprocess.run(ctl + ["start"], capture_output=True, text=True, timeout=60)
    up_at = time.monotonic()
    note(f"PostgreSQL down for {up_at - down_at:.1f}s (stop: {stopped.returncode}, "
         f"start: {started.returncode}); {before} refreshes before")

    recovered = wait_for(lambda: all(c.last_ok and c.last_ok > up_at for c in chains), 20)
    recovery = max((c.last_ok or up_at) for c in chains) - up_at
    # Keep the traffic on for a moment after every chain recovered.
    target, until = successes(chains) + 80, time.monotonic() + 2
    wait_for(lambda: successes(chains) >= target and time.monotonic() > until, 10)
    stop.set()
    joined = join_all(threads, 30)

    answers = [a for c in chains for a in c.answers]
    outage = [a for a in answers if stopped_at <= a.started <= starting_at]
    unavailable = [a for a in answers if a.status == 503]
    bad = [b for c in chains for b in c.bad]
    slowest = max(a.elapsed for a in answers)
    note(f"{len(answers)} requests, {len(outage)} sent while PostgreSQL was down, "
         f"{len(unavailable)} answered 503 (slowest {max((a.elapsed for a in unavailable), default=0):.1f}s), "
         f"{sum(c.lost for c in chains)} chain(s) lost to a 503 that hid a committed rotation "
         f"(new login), slowest answer {slowest:.1f}s")
    report(flowing and stopped.returncode == 0 and started.returncode == 0,
           "PostgreSQL stopped and started while refresh chains flowed",
           f"flowing={flowing} stop={stopped.stderr.strip()} start={started.stderr.strip()}")
    report(len(unavailable) > 0 and not bad,
           "during the outage every failed request was 503 temporarily_unavailable with "
           "Retry-After (no 500, no request without an answer within 10s)",
           f"{len(unavailable)} 503s; {bad[:6]}")
    report(recovered and joined,
           f"every client refreshed again {recovery:.1f}s after PostgreSQL was back (bound 20s)",
           f"recovered={recovered} joined={joined}")
    report(all(alive(pid) for _, pid in insts), "no rotor process exited",
           f"{[(p, alive(pid)) for p, pid in insts]}")
    issued.check_stored(db, "PostgreSQL restart")
    sys.exit(1 if failed else 0)


# --------------------------------------------------------------------------------------
def kill(db, *specs):
    """SIGKILL to one of three instances while clients refresh on all three."""
    insts = instances(specs)
    bases = [url(p) for p, _ in insts]
    victim_base, victim_pid = bases[2], insts[2][1]
    issued = Issued()
    chains = [Chain(i, issued) for i in range(9)]
    stop = threading.Event()
    dead = threading.Event()
    # Set just before the signal: a process that is being killed may still look
    # alive for a moment after its sockets are gone.
    signalled = threading.Event()

    def pick(chain, n):
        live = bases[:2] if dead.is_set() else bases
        return live[(chain.index + n) % len(live)]

    def no_answer_expected(base):
        if base == victim_base and (signalled.is_set() or not alive(victim_pid)):
            dead.set()
            return True
        return False

    threads = run_chains(chains, pick, stop, no_answer_expected)
    flowing = wait_for(lambda: successes(chains) >= 90, 30)
    signalled.set()
    os.kill(victim_pid, 9)
    killed_at = time.monotonic()
    wait_for(lambda: not alive(victim_pid), 5)
    dead.set()
    # Keep the traffic on for at least 3 s and 150 refreshes after the kill.
    target = successes(chains) + 150
    wait_for(lambda: successes(chains) >= target and time.monotonic() > killed_at + 3, 20)
    stop.set()
    joined = join_all(threads, 30)

    answers = [a for c in chains for a in c.answers]
    after = [a for a in answers if a.started > killed_at]
    bad = [b for c in chains for b in c.bad]
    lost = sum(c.lost for c in chains)
    note(f"{len(answers)} requests, {sum(1 for a in after if a.status == 200)} served after the kill, "
         f"{sum(1 for a in answers if a.status == 0)} without an answer from the killed instance, "
         f"{lost} chain(s) lost to a rotation the killed instance committed but never answered")
    report(flowing and not alive(victim_pid), "one of three instances killed with SIGKILL mid-traffic",
           f"flowing={flowing}")
    report(joined and not bad and sum(1 for a in after if a.status == 200) >= 100,
           "the two others kept serving: no failed request except the killed instance's",
           f"joined={joined} {bad[:6]}")

    # Every client holds the refresh token of its last 200, never presented yet.
    held = [c.rt for c in chains if c.rt]
    first = [refresh(bases[i % 2], rt) for i, rt in enumerate(held)]
    for a in first:
        if a.status == 200:
            issued.add(a.body)
    second = [refresh(bases[(i + 1) % 2], rt) for i, rt in enumerate(held)]
    report(len(held) == len(chains) and all(a.status == 200 for a in first),
           f"every unused refresh token the clients hold ({len(held)}) works once",
           f"{[a.describe() for a in first if a.status != 200]}")
    report(all(a.status == 400 and a.error == "invalid_grant" for a in second),
           "a second use of each is refused with invalid_grant",
           f"{[a.describe() for a in second if a.status != 400]}")
    half = psql(db, """select count(*) from refresh_tokens rt
                       where rt.used_at is not null and rt.successor_hash is not null
                         and not exists (select 1 from refresh_tokens s
                                         where s.token_hash = rt.successor_hash)""")
    spent = psql(db, "select count(*) from refresh_tokens where used_at is not null")
    report(half == "0", f"no family is left half-rotated (0 of {spent} spent tokens lack their successor)",
           f"{half} spent tokens without their successor")
    issued.check_stored(db, "SIGKILL")
    sys.exit(1 if failed else 0)


# --------------------------------------------------------------------------------------
def burst(base, tokens, timeout):
    barrier = threading.Barrier(len(tokens))
    answers = [None] * len(tokens)

    def one(i):
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass
        answers[i] = refresh(base, tokens[i], timeout)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(tokens))]
    for t in threads:
        t.start()
    join_all(threads, timeout + 20)
    return answers


def logins(base, n):
    out = [None] * n
    # One user: rotor checks at most lockout.max_failures_per_user (5) of its
    # sign-ins at a time and answers the rest 503, so sign in 4 at a time.
    gate = threading.Semaphore(4)

    def one(i):
        with gate:
            a = login(base)
        out[i] = a.body["refresh_token"] if a.status == 200 else None

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    join_all(threads, 60)
    return [t for t in out if t]


def pool(db, spec, spare_port):
    """60 concurrent requests on an instance with a pool of two connections."""
    port, pid = instances([spec])[0]
    base, spare = url(port), url(spare_port)
    n = 60
    tokens = logins(spare, 2 * n)
    if len(tokens) < 2 * n:
        report(False, "120 logins to prepare the bursts", f"{len(tokens)} succeeded")
        sys.exit(1)

    def fine(a):
        return a is not None and (a.status in (200, 400) or a.is_unavailable())

    # Plain contention: 60 refreshes at once on two connections.
    first = burst(base, tokens[:n], TIMEOUT)
    counts = {}
    for a in first:
        key = a.status if a else "none"
        counts[key] = counts.get(key, 0) + 1
    report(all(fine(a) for a in first),
           f"{n} concurrent refreshes on a pool of 2 all answered 200, 400 or 503 within 10s {counts}",
           f"{[a.describe() if a else 'no answer' for a in first if not fine(a)][:6]}")

    # Exhaustion: both connections stuck behind a table lock held for 6 s, so the
    # other requests wait for a connection up to the acquire timeout (5 s), then 503.
    holder = subprocess.Popen(
        ["psql", db, "-qtAX", "-c",
         "begin; lock table token_families in access exclusive mode; select pg_sleep(6); commit;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    locked = wait_for(lambda: psql(db, "select count(*) from pg_locks l join pg_class c "
                                       "on c.oid = l.relation where c.relname = 'token_families' "
                                       "and l.mode = 'AccessExclusiveLock' and l.granted") == "1", 10)
    t0 = time.monotonic()
    second = burst(base, tokens[n:], 12.0)
    took = time.monotonic() - t0
    holder.wait(30)
    counts = {}
    for a in second:
        key = a.status if a else "none"
        counts[key] = counts.get(key, 0) + 1
    unavailable = [a for a in second if a and a.is_unavailable()]
    report(locked and all(fine(a) for a in second) and unavailable,
           f"with both connections held, {n} concurrent refreshes queued and answered "
           f"within {took:.1f}s (bound 12s), the overflow with 503 temporarily_unavailable {counts}",
           f"locked={locked} {[a.describe() if a else 'no answer' for a in second if not fine(a)][:6]}")

    # A 503 changed nothing: each of those tokens is still good, once.
    retried = [refresh(base, tokens[n + i]) for i, a in enumerate(second) if a and a.status == 503]
    report(all(a.status == 200 for a in retried),
           f"every token refused with 503 ({len(retried)}) was left unspent and refreshes now",
           f"{[a.describe() for a in retried if a.status != 200][:6]}")

    a = login(base)
    b = refresh(base, a.body["refresh_token"]) if a.status == 200 else a
    ready = request(f"{base}/readyz")
    report(a.status == 200 and b.status == 200 and ready.status == 200 and alive(pid),
           "afterwards the instance serves normally (no deadlock)",
           f"login {a.describe()}, refresh {b.describe()}, readyz {ready.status}")
    sys.exit(1 if failed else 0)


# --------------------------------------------------------------------------------------
def fill(path):
    """Writes zeros to `path` until the file system is full; returns bytes written."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            chunk = b"\0" * size
            for _ in range(100_000):
                try:
                    written += f.write(chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return written


def four_chains(base, when):
    """Four logins, each refreshed once: their live refresh tokens and the last
    access token. Ends the run when any of it fails."""
    rts, access = [], None
    for _ in range(4):
        a = login(base)
        if a.status == 200:
            access = a.body["access_token"]
            a = refresh(base, a.body["refresh_token"])
        if a.status == 200:
            rts.append(a.body["refresh_token"])
    report(len(rts) == 4, f"logins and refreshes on SQLite {when}")
    if len(rts) < 4:
        sys.exit(1)
    return rts, access


def sqlite(spec, filler, log):
    """SQLite on a small tmpfs: full disk under refresh traffic, then space freed."""
    port, pid = instances([spec])[0]
    base = url(port)
    rts, _ = four_chains(base, "before the disk fills")

    written = fill(filler)
    note(f"filled the file system with {written // 1024} KiB")
    answers, bad = [], []
    for n in range(40):
        i = n % len(rts)
        a = refresh(base, rts[i])
        answers.append(a)
        if a.status == 200:
            rts[i] = a.body["refresh_token"]
        elif not a.is_unavailable():
            bad.append(a.describe())
    unavailable = sum(1 for a in answers if a.status == 503)
    report(unavailable > 0 and not bad,
           f"with the disk full, refreshes answer 503 temporarily_unavailable with Retry-After "
           f"({unavailable} of {len(answers)}, no other error)",
           f"{unavailable} 503s; {bad[:6]}")
    with open(log, errors="replace") as f:
        lines = f.read().splitlines()
    report(any("disk is full" in line for line in lines),
           "a log line names the problem (database or disk is full)")
    report(alive(pid) and not any("panicked" in line for line in lines),
           "rotor did not panic and is still running")

    os.remove(filler)
    recovered = []

    def all_refresh():
        for i in range(len(rts)):
            if i in recovered:
                continue
            a = refresh(base, rts[i])
            if a.status == 200:
                rts[i] = a.body["refresh_token"]
                recovered.append(i)
            elif not a.is_unavailable():
                bad.append(a.describe())
        return len(recovered) == len(rts) or bad

    wait_for(all_refresh, 15, pause=0.2)
    report(len(recovered) == len(rts) and not bad,
           "after space is freed every client refreshes again with the token the 503 left unspent",
           f"{len(recovered)} of {len(rts)} recovered; {bad[:6]}")
    sys.exit(1 if failed else 0)


def readonly(spec, trigger, log, unspent):
    """SQLite on an ext4 disk that turns read-only under traffic, as the kernel turns
    a failing disk read-only: the file system's own error trigger, with
    errors=remount-ro. Leaves the refresh tokens the 503s did not spend in UNSPENT
    for `repaired`."""
    port, pid = instances([spec])[0]
    base = url(port)
    rts, access = four_chains(base, "before the disk turns read-only")

    # What was committed reaches the disk first: SQLite's WAL commits (synchronous =
    # NORMAL) wait in the operating system's cache, and a disk that fails before
    # they are written loses them, as it would any file's.
    os.sync()
    with open(trigger, "w") as f:
        f.write("1")
    device = "/dev/" + trigger.split("/")[-2] + " "
    with open("/proc/mounts") as f:
        note("the disk is now mounted " + ",".join(
            line.split()[3] for line in f if line.startswith(device)))

    answers, bad = [], []
    for n in range(40):
        a = refresh(base, rts[n % len(rts)])
        answers.append(a)
        if not a.is_unavailable():
            bad.append(a.describe())
    a = login(base)
    if not a.is_unavailable():
        bad.append("login " + a.describe())
    report(not bad,
           f"on the read-only disk all {len(answers)} refreshes and a login answer 503 "
           f"temporarily_unavailable with Retry-After",
           f"{bad[:6]}")
    seen = request(f"{base}/oauth2/introspect", {"token": access})
    report(seen.status == 200 and isinstance(seen.body, dict) and seen.body.get("active"),
           "reads are still served: an access token introspects as active",
           seen.describe())
    with open(log, errors="replace") as f:
        lines = f.read().splitlines()
    report(any("readonly database" in line or "disk I/O error" in line for line in lines),
           "a log line names the problem (read-only database or disk I/O error)")
    report(alive(pid) and not any("panicked" in line for line in lines),
           "rotor did not panic and is still running")
    with open(unspent, "w") as f:
        f.write("\n".join(rts))
    sys.exit(1 if failed else 0)


def repaired(spec, unspent):
    """After the disk was checked and mounted again: every token that the 503s left
    unspent refreshes exactly once."""
    port, _ = instances([spec])[0]
    base = url(port)
    try:
        with open(unspent) as f:
            rts = f.read().split()
    except OSError as e:
        report(False, "the tokens left unspent on the read-only disk are known", str(e))
        sys.exit(1)
    first = [refresh(base, rt) for rt in rts]
    again = [refresh(base, rt) for rt in rts]
    report(len(rts) == 4 and all(a.status == 200 for a in first),
           "after the disk is repaired, every token the 503s left unspent refreshes",
           f"{[a.describe() for a in first]}")
    report(all(a.status == 400 and a.error == "invalid_grant" for a in again),
           "and each only once (no token was half-consumed)",
           f"{[a.describe() for a in again]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    commands = {"pg-restart": pg_restart, "kill": kill, "pool": pool, "sqlite": sqlite,
                "readonly": readonly, "repaired": repaired}
    commands[sys.argv[1]](*sys.argv[2:])
