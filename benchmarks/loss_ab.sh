#!/usr/bin/env bash
# The loss pass of a cpu-demo episode, A/B: the frozen base's dtype x glibc's allocator settings, at the demo's
# typical (1,500 tokens) and long (3,000) episode lengths; each variant in a fresh process, one after another, on an
# otherwise idle machine. One JSON per variant in benchmarks/results/cpu-loss-ab/ (docs/cpu-training.md reads them).
#   bash benchmarks/loss_ab.sh                 # everything (about 15 minutes)
#   bash benchmarks/loss_ab.sh --share-only    # only the two runs that score every completion position
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/cpu-loss-ab}
mkdir -p "$OUT"
run() {  # seq base allocator [share of the completion scored; default the demo's 0.13]
  local share=${4:-0.13} name="seq$1-$2-$3"
  [ "$share" = 0.13 ] || name="$name-share$share"
  python3 benchmarks/bench_train.py --memory --seq "$1" --base-dtype "$2" --allocator "$3" --repeats 2 \
    --model-token-share "$share" --out "$OUT/$name.json" 2>&1 | grep '^\[memory\] loss' || true
}
if [ "${1:-}" = "--share-only" ]; then  # training.model_tokens: every completion position scored, as TRL alone does
  run 1500 bfloat16 arenas 1.0; run 3000 bfloat16 arenas 1.0; exit 0
fi
for base in float32 bfloat16; do for alloc in default arenas mmap4; do run 1500 "$base" "$alloc"; done; done
for alloc in default arenas mmap4; do run 3000 bfloat16 "$alloc"; done
run 1500 bfloat16 arenas 1.0; run 3000 bfloat16 arenas 1.0
