#!/usr/bin/env bash
# The main job on a fresh machine: install, build the mail store from the shared Enron corpus, and let the bundled
# Qwen2.5-Coder-0.5B answer a real question from Vince Kaminski's inbox, showing every search and read. The bundled
# model runs under its default harness, `guided` (search first, read a hit, then answer); --harness free lifts it.
# Override with: DB=... MODEL=... QUESTION=... INBOX=... DATE=... bash scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."
step() {  # step NAME COMMAND...: runs it and says how long it took
    local name=$1 start=$SECONDS
    shift
    "$@"
    echo "[quickstart] $name took $((SECONDS - start)) s" >&2
}
step install bash scripts/install.sh
export HF_HUB_OFFLINE=1
SHARED=${INBOXRL_SHARED:-../shared}
DB=${DB:-data/enron.db}
MODEL=${MODEL:-local/qwen2.5-coder-0.5b}
INBOX=${INBOX:-vince.kaminski@enron.com}
DATE=${DATE:-2001-04-15}
QUESTION=${QUESTION:-"When is the ALP Project presentation at Enron?"}

mkdir -p "$(dirname "$DB")"
step ingest inboxrl ingest "$SHARED/data/enron-mbox" --db "$DB"          # idempotent: a second run adds nothing
step ask inboxrl ask --db "$DB" --inbox "$INBOX" --date "$DATE" --model "$MODEL" "$QUESTION"
