#!/usr/bin/env bash
# The whole test suite: unit, store contract and API tests on PostgreSQL and SQLite,
# then schemathesis against a real server built from the tree.
# Needs PostgreSQL on 127.0.0.1:5432 (DATABASE_URL in .cargo/config.toml says where).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test
tests/schemathesis/run.sh
