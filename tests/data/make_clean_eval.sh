#!/usr/bin/env bash
# Makes tests/data/clean-eval-qwen.jsonl.gz: a real `inboxrl eval` of the bundled Qwen2.5-Coder-0.5B on the first
# 8 grounded kaminski-train questions, against a kaminski-v store, with the guided harness of configs/cpu-demo.yaml
# (its `agent:` section) and the lexical judge. Not part of the test run: it took 61 minutes on a shared 2-core machine.
#   bash tests/data/make_clean_eval.sh [WORK_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="${INBOXRL_SHARED:-$repo/../shared}"
work="${1:-$(mktemp -d)}"
mkdir -p "$work"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" HF_HUB_OFFLINE=1
inboxrl ingest "$shared/data/enron-mbox/kaminski-v" --db "$work/kaminski.db"
inboxrl eval --config "$repo/configs/cpu-demo.yaml" --db "$work/kaminski.db" \
  --questions "$shared/data/art-e-questions/kaminski-train.jsonl" --grounded-only --limit 8 \
  --model local/qwen2.5-coder-0.5b --judge lexical --concurrency 4 --out "$work/run"
# Eval files carry no token ids already; gzip with no timestamp so a re-run gives the same bytes for the same run.
gzip -n -c "$work/run/trajectories.jsonl" > "$here/clean-eval-qwen.jsonl.gz"
echo "wrote $here/clean-eval-qwen.jsonl.gz from $work/run"
