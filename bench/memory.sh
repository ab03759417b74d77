#!/usr/bin/env bash
# Memory benchmark: refdoctor bundle validate and inspect on every input of
# the hostile suite (internal/craft.Hostile), each run as a child process
# whose peak RSS the kernel reports. Prints each run and the worst case;
# exits 1 if any run reaches 64 MiB or answers without its expected code.
#
# Usage: bench/memory.sh [-run REGEXP]
# Env:   BENCH_DIR (default /tmp/refdoctor-bench); the inputs (a few
#        hundred MB, generated once) stay in BENCH_DIR/memcheck-inputs.
set -euo pipefail

dir=${BENCH_DIR:-/tmp/refdoctor-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$dir"
(cd "$root" && go build -o "$dir/refdoctor" . && go build -o "$dir/memcheck" ./bench/memcheck)
"$dir/memcheck" -bin "$dir/refdoctor" -dir "$dir/memcheck-inputs" "$@"
