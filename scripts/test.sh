#!/usr/bin/env bash
# The whole test suite: unit, store contract and API tests on PostgreSQL and SQLite,
# then three instances behind nginx on one PostgreSQL database, the container
# deployment files, schemathesis against a real server built from the tree, and
# faults (PostgreSQL restarted, an instance killed, the pool exhausted, SQLite on a
# full disk; this one restarts the local PostgreSQL, so it runs last).
# Needs PostgreSQL on 127.0.0.1:5432 (DATABASE_URL in .cargo/config.toml says where).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
tests/cluster/run.sh
tests/deploy/check.py
tests/schemathesis/run.sh
# The fuzzer's own build takes about ten minutes on two cores, so it runs on demand:
# ROTOR_FUZZ=1 scripts/test.sh. Its past findings are replayed by `cargo test` above.
if [ "${ROTOR_FUZZ:-0}" = 1 ]; then
  fuzz/run.sh
fi
tests/faults/run.sh
