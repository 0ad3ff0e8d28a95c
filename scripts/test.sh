#!/usr/bin/env bash
# The whole test suite: unit, store contract and API tests on PostgreSQL and SQLite,
# then three instances behind nginx on one PostgreSQL database, then the container
# deployment files, then faults (PostgreSQL restarted, an instance killed, the
# pool exhausted, SQLite on a full disk).
# Needs PostgreSQL on 127.0.0.1:5432 (DATABASE_URL in .cargo/config.toml says where).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
tests/cluster/run.sh
tests/deploy/check.py
tests/faults/run.sh
