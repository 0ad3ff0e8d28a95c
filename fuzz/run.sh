#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS each, default 30), seeded
# with fuzz/regressions; part of scripts/test.sh. Needs cargo-fuzz (installed when
# missing) and runs on the stable toolchain: RUSTC_BOOTSTRAP=1 lets it pass the -Z
# flags libFuzzer needs. The targets are built unoptimised (--dev): the build takes
# about two minutes instead of ten, and still runs some 15,000 inputs a second.
#
# A failing input is left in fuzz/artifacts/TARGET/ and printed in base64, so that
# it can be recovered from a CI log: put it in fuzz/regressions/TARGET/, where
# `cargo test` replays it, and fix the parser.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-30}
targets=(request basic_header)
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
# No sanitizer: the parsers are safe Rust, and ASan would double the build.
flags=(--dev --sanitizer none)
cargo fuzz build "${flags[@]}"

passed=0
failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  rm -rf "artifacts/$target"
  mkdir -p "artifacts/$target"
  log="artifacts/$target/fuzz.log"
  # -timeout: an input that takes over 5 s counts as a hang, and fails the run.
  # libFuzzer's progress goes to a log; the summary, or on failure its end, is shown.
  if cargo fuzz run "${flags[@]}" "$target" "corpus/$target" "regressions/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=5 -print_final_stats=1 >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "fuzz: $target: $(grep -E '^Done [0-9]+ runs' "$log" || echo 'no summary')"
  else
    failed=$((failed + 1))
    tail -n 40 "$log"
    rm -f "$log"
    echo "fuzz: $target failed; its input, also in fuzz/artifacts/$target/:"
    for input in "artifacts/$target"/*; do
      [ -f "$input" ] && echo "  $(basename "$input"): $(base64 -w0 "$input")"
    done
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
