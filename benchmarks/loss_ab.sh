#!/usr/bin/env bash
# The loss pass of a cpu-demo episode, A/B: the frozen base's dtype x glibc's allocator settings, at the demo's
# typical (1,500 tokens) and long (3,000) episode lengths; each variant in a fresh process, one after another, on an
# otherwise idle machine. One JSON per variant in benchmarks/results/cpu-loss-ab/ (docs/cpu-training.md reads them).
#   bash benchmarks/loss_ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/cpu-loss-ab}
mkdir -p "$OUT"
run() {  # seq base allocator
  python3 benchmarks/bench_train.py --memory --seq "$1" --base-dtype "$2" --allocator "$3" --repeats 2 \
    --model-token-share 0.13 --out "$OUT/seq$1-$2-$3.json" 2>&1 | grep '^\[memory\] loss' || true
}
for base in float32 bfloat16; do for alloc in default arenas mmap4; do run 1500 "$base" "$alloc"; done; done
for alloc in default arenas mmap4; do run 3000 bfloat16 "$alloc"; done
