#!/usr/bin/env python3
"""Validates the container deployment without a Docker engine: the structure of
docker-compose.yml (with `docker compose config` when the plugin is there, and a
YAML check of the services always), nginx's configuration with `nginx -t`, and the
Dockerfile's essentials. Prints one line per check and "N passed, M failed".
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.chdir(ROOT)
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"FAIL - {what}" + (f": {detail}" if detail else ""))


try:
    import yaml
except ImportError:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "PyYAML"], check=True)
    import yaml

# docker compose's own validation, when the plugin exists (it needs no engine).
if shutil.which("docker") and subprocess.run(
        ["docker", "compose", "version"], capture_output=True).returncode == 0:
    r = subprocess.run(["docker", "compose", "config", "-q"], capture_output=True, text=True)
    check(r.returncode == 0, "docker compose config accepts docker-compose.yml", r.stderr)
else:
    print("# docker compose plugin not available: YAML checks only")

with open("docker-compose.yml") as f:
    compose = yaml.safe_load(f)
services = compose.get("services", {})
check(set(services) >= {"db", "rotor", "lb"}, "services db, rotor and lb are defined", sorted(services))

db = services.get("db", {})
check(str(db.get("image", "")).startswith("postgres:"), "db runs PostgreSQL")
check("test" in db.get("healthcheck", {}), "db has a health check")
volumes = [str(v).split(":")[0] for v in db.get("volumes", [])]
check(any(v in (compose.get("volumes") or {}) for v in volumes), "db keeps its data in a named volume", volumes)

rotor = services.get("rotor", {})
check(rotor.get("build") in (".", {"context": "."}), "rotor is built from the Dockerfile here")
check(rotor.get("deploy", {}).get("replicas") == 3, "rotor runs three replicas")
depends = rotor.get("depends_on", {})
check(isinstance(depends, dict) and depends.get("db", {}).get("condition") == "service_healthy",
      "rotor waits for a healthy db")
env = rotor.get("environment", {})
if isinstance(env, list):
    env = dict(e.split("=", 1) for e in env)
check(all(k.startswith("ROTOR__") for k in env), "rotor is configured by ROTOR__ variables", list(env))
check(str(env.get("ROTOR__DATABASE__URL", "")).startswith("postgres://") and "@db:" in env.get("ROTOR__DATABASE__URL", ""),
      "rotor's database is the db service")
check(str(env.get("ROTOR__SERVER__BIND", "")).startswith("0.0.0.0:8080"), "rotor listens on 8080 in its container")
check("ports" not in rotor, "replicas publish no port (the balancer does)")
lb_address = ((services.get("lb", {}).get("networks") or {}).get("backend") or {}).get("ipv4_address")
check(lb_address is not None and str(env.get("ROTOR__SERVER__TRUSTED_PROXIES")) == lb_address,
      "the replicas trust X-Forwarded-For from the balancer's fixed address, and only from it",
      f"{env.get('ROTOR__SERVER__TRUSTED_PROXIES')} vs {lb_address}")
secret = str(env.get("ROTOR__KEYS__SECRET", ""))
check(re.fullmatch(r"\$\{\w+:\?[^}]+\}", secret) is not None,
      "rotor's signing keys are sealed under a secret that compose requires from outside", secret)

# Every ROTOR__ key exists in config/default.toml.
with open("config/default.toml") as f:
    defaults = f.read()
sections = {}
current = None
for line in defaults.splitlines():
    m = re.match(r"^\[(\w+)\]", line)
    if m:
        current = m.group(1)
        continue
    m = re.match(r"^#?\s*(\w+)\s*=", line)
    if m and current:
        sections.setdefault(current, set()).add(m.group(1))
unknown = [k for k in env
           if (lambda p: len(p) != 3 or p[2].lower() not in sections.get(p[1].lower(), set()))(k.split("__"))]
check(not unknown, "every ROTOR__ variable names a documented key", unknown)

lb = services.get("lb", {})
check(str(lb.get("image", "")).startswith("nginx"), "lb runs nginx")
check(any(str(p).endswith(":8080") for p in lb.get("ports", [])), "lb publishes port 8080")
mounts = [str(v).split(":")[0] for v in lb.get("volumes", [])]
check(any(os.path.isfile(m) for m in mounts), "lb's nginx.conf exists", mounts)

# nginx -t on the compose configuration, with the service name made resolvable.
nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
if nginx:
    with open("deploy/nginx.conf") as f:
        conf = f.read().replace("server rotor:8080", "server 127.0.0.1:8080")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf.replace("worker_processes 1;", f"worker_processes 1;\npid {tmp}/nginx.pid;"))
        r = subprocess.run([nginx, "-t", "-q", "-e", os.path.join(tmp, "error.log"), "-p", tmp, "-c", path],
                           capture_output=True, text=True)
        check(r.returncode == 0, "nginx -t accepts deploy/nginx.conf", r.stderr)
else:
    print("# nginx not installed: its configuration is not checked")

with open("Dockerfile") as f:
    dockerfile = f.read()
stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\w+))?", dockerfile, re.M | re.I)
check(len(stages) >= 2, "the Dockerfile is multi-stage", stages)
check("cargo build --release --locked" in dockerfile, "the image builds with cargo build --release --locked")
final = dockerfile[dockerfile.rfind("\nFROM"):]
check(re.search(r"^USER\s+(?!root|0\b)\S+", final, re.M) is not None, "the runtime image runs as a non-root user")
check(re.search(r'^ENTRYPOINT\s+\["/usr/local/bin/rotor"\]', final, re.M) is not None
      and re.search(r'^CMD\s+\["serve"\]', final, re.M) is not None, "the entry point is `rotor serve`")
copies = re.findall(r"^COPY\s+(?!--from)(\S+)", dockerfile, re.M)
check(all(os.path.exists(c) for c in copies), "every path the Dockerfile copies exists", copies)

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
