#!/usr/bin/env bash
# Sets up (idempotent) and runs the test suite. Tests read real Enron mail from ../shared (INBOXRL_SHARED).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${INBOXRL_SHARED:-../shared}
if [ ! -d "$SHARED/data/enron-mbox" ]; then
  # Off CI the tests that need the mail skip (and say so); on CI a missing corpus is a failure, not a skip.
  if [ "${CI:-}" = "true" ]; then
    echo "error: shared data not found at $SHARED (set INBOXRL_SHARED); CI does not skip it" >&2
    exit 1
  fi
  echo "warning: shared data not found at $SHARED: the tests that need it will skip" >&2
fi
bash scripts/install.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# Static checks first (seconds; ~1 min for mypy's first, uncached run): lint rules and types as pinned in pyproject.
"${PYTHON:-python3}" -m ruff check --quiet
"${PYTHON:-python3}" -m mypy
exec "${PYTHON:-python3}" -m pytest -q "$@"
