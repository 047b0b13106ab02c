#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and prints executions and crashes per
# target: the longer runs of docs/RELIABILITY.md. CI runs the same with a few seconds.
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
targets=(request_target gossip peers_toml hub_json fill)
cargo +nightly fuzz build -O
failed=0
for target in "${targets[@]}"; do
  # The corpus grows between runs; the seeds are where it starts.
  mkdir -p "corpus/$target"
  cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
  log="$(mktemp)"
  # One process, bounded in time and memory; libFuzzer stops at the first crash.
  if cargo +nightly fuzz run -O "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    outcome="no crash"
  else
    outcome="CRASH (see fuzz/artifacts/$target/)"
    failed=1
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  echo "$target: ${seconds}s, ${runs} executions, ${outcome}"
  [ "$outcome" = "no crash" ] || tail -40 "$log"
  rm -f "$log"
done
exit "$failed"
