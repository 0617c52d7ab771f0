#!/usr/bin/env bash
# Sets up (idempotent) and runs the test suite. Tests read real Enron mail from ../shared (INBOXRL_SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "${PYTHON:-python3}" -m pytest -q "$@"
