#!/usr/bin/env bash
# Everything the llama.cpp comparison needs, in one go (docs/llamacpp.md): builds llama-cpp-python if it is missing
# (about 6 minutes of both cores, with the CMAKE_ARGS this CPU needs), unpacks its sdist for the LoRA converter, then
# runs the engine benchmark (issue 24) and the eval benchmark (issue 25). Arguments go to the eval benchmark:
#   bash benchmarks/llamacpp_all.sh --db data/enron.db --questions runs/cpu-demo/data/val.jsonl --limit 20
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SRC=${LLAMA_CPP_SRC_DIR:-/tmp/llsrc}
# One source for the version and the flags: benchmarks/llamacpp_common.py.
read -r VER CMAKE < <("$PY" -c 'import sys; sys.path.insert(0, "benchmarks"); import llamacpp_common as lc; print(lc.LLAMA_CPP_VERSION, lc.CMAKE_ARGS)')
if ! "$PY" -c "import llama_cpp, llama_cpp.server.app" 2>/dev/null; then
  echo "building llama-cpp-python[server]==$VER (about 6 minutes)..." >&2
  CMAKE_ARGS="$CMAKE" "$PY" -m pip install --no-cache-dir "llama-cpp-python[server]==$VER" || exit 2
fi
TREE="$SRC/llama_cpp_python-$VER"
if [ ! -f "$TREE/vendor/llama.cpp/convert_lora_to_gguf.py" ]; then
  mkdir -p "$SRC"
  "$PY" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VER" -d "$SRC" || exit 2
  tar xzf "$SRC/llama_cpp_python-$VER.tar.gz" -C "$SRC" || exit 2
fi
status=0
"$PY" benchmarks/bench_llamacpp_engine.py --llama-cpp-src "$TREE" || status=$?
"$PY" benchmarks/bench_llamacpp_eval.py "$@" || status=$?
exit "$status"
