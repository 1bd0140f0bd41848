#!/usr/bin/env bash
# run.sh [SECONDS]: build the fuzz targets (nightly, cargo-fuzz) and run each for SECONDS
# (default 60) from a copy of its seed corpus; write the executions, coverage and
# findings to FUZZING.md. A crash leaves its input in fuzz/artifacts/<target>/: copy it
# to fuzz/regressions/<target>/ (replayed by `cargo test`) once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q nightly || { echo "run.sh: a nightly toolchain is needed for cargo fuzz" >&2; exit 1; }
cargo +nightly fuzz build
targets=$(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v phx-hook-fuzz)
out=$(mktemp)
status=0
for t in $targets; do
  work=target/fuzz-corpus/$t
  rm -rf "$work"; mkdir -p "$work"; cp fuzz/corpus/"$t"/* "$work"/
  log=target/fuzz-$t.log
  if cargo +nightly fuzz run "$t" "$work" -- -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 >"$log" 2>&1; then
    result=none
  else
    result="**crash: see fuzz/artifacts/$t/**"
    status=1
  fi
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  echo "| \`$t\` | ${runs:-?} | ${cov:-?} | $(ls "$work" | wc -l) | $result |" >>"$out"
done
{
  echo "# Fuzzing"
  echo
  echo "Every parser of untrusted or semi-trusted input has a cargo-fuzz target in \`fuzz/\`"
  echo "(entry points in \`src/fuzzing.rs\`). \`make fuzz\` (or \`fuzz/run.sh SECONDS\`) runs each"
  echo "for a set time from its seed corpus (\`fuzz/corpus/\`, made by \`fuzz/seed.sh\` from real"
  echo "gpg output and the project's examples). Inputs that crashed a target are kept in"
  echo "\`fuzz/regressions/<target>/\` and replayed by \`cargo test\` (\`fuzzing::tests\`)."
  echo
  echo "Last run: $(date -u +%Y-%m-%d), ${secs} s per target, $(nproc) cores, $(rustc +nightly --version)."
  echo
  echo "| target | executions | coverage (edges) | corpus after | findings |"
  echo "|---|---|---|---|---|"
  cat "$out"
  echo
  echo "## Findings so far"
  echo
  cat fuzz/FINDINGS.md
} >FUZZING.md
rm -f "$out"
exit $status
