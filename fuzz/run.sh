#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS each, default 30), seeded
# with fuzz/regressions. Needs cargo-fuzz (installed when missing) and runs on the
# stable toolchain: RUSTC_BOOTSTRAP=1 lets it pass the -Z flags libFuzzer needs.
# A crash is left in fuzz/artifacts/TARGET/: copy it into fuzz/regressions/TARGET/,
# where `cargo test` replays it, and fix the parser.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-30}
targets=(request basic_header)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
# No sanitizer: the parsers are safe Rust, and ASan would double the build.
flags=(--sanitizer none --debug-assertions)
cargo fuzz build "${flags[@]}"

passed=0
failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  if cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "regressions/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -print_final_stats=1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/"
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
