#!/usr/bin/env bash
# The whole test suite: unit, store contract and API tests on PostgreSQL and SQLite,
# then three instances behind nginx on one PostgreSQL database, the container
# deployment files, schemathesis against a real server built from the tree, real
# OAuth clients and a headless chromium through the login page, the
# cargo-fuzz targets for a bounded time, and faults (PostgreSQL restarted, an
# instance killed, the pool exhausted, SQLite on a full or read-only disk; this one
# restarts the local PostgreSQL, so it runs last).
# Needs PostgreSQL on 127.0.0.1:5432 (DATABASE_URL in .cargo/config.toml says where).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
tests/cluster/run.sh
tests/deploy/check.py
tests/schemathesis/run.sh
# Screenshots go to target/: docs/ keeps the committed ones.
ROTOR_SCREENSHOTS=target/screenshots tests/clients/run.sh
fuzz/run.sh
tests/faults/run.sh
