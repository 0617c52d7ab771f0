"""llama.cpp (llama-cpp-python's `Llama`, in process) against the in-house engine (`LocalBackend`) as the rollout
engine of issue 24 ("A faster engine, measured"): speed, agreement of greedy outputs, cost of a new LoRA adapter.

Prompts: bench_generation.py's real agent prompts (system prompt, tool schemas, a Kaminski question), rendered and
tokenised once by the in-house backend; llama.cpp is given the very same token ids.

(a) Speed: sampled tokens/s over the wall time (prefill included) and decode/prefill tokens/s, greedy, at batch 1 and
    8 (`--batches`), --max-tokens ids per prompt (past the end of turn unless --stop-at-eot). The in-house engine
    decodes a batch in lock-step. llama-cpp-python's `Llama` decodes one sequence (its server serves one request at
    a time), so llama.cpp's batch B is B sequential streams: its figure is what a user of the package gets.
    llama.cpp's own C++ server batches (`--parallel`); the package does not build or expose it.
(b) Agreement: per prompt, the --max-tokens greedy ids of each engine, the length of their common prefix, both
    texts, and whether the replies (up to the first end-of-turn id) are the same. llama.cpp computes on the GGUF's
    Q4_K_M weights, the in-house engine on the same weights de-quantised to bf16/float32: exact agreement is not
    expected.
(c) A new LoRA adapter per GRPO step: a PEFT adapter made with the config's LoRA settings (`get_peft_model` on the
    float32 model, B drawn at random as after training) is saved, converted to GGUF with llama.cpp's
    `convert_lora_to_gguf.py` (from the llama-cpp-python sdist: --llama-cpp-src) and loaded into the already
    loaded `Llama` and applied (`llama_adapter_lora_init` + `llama_set_adapters_lora`, the old one freed, the KV
    cache dropped). The in-house engine's cost for the same step is refreshing its bf16 copy (training.shadow).
    A greedy reply with the adapter, in both engines, checks that the converted adapter is the same adapter.

Writes benchmarks/results/llamacpp-engine-<UTC date>.json and prints tables.

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llsrc
    tar xzf /tmp/llsrc/llama_cpp_python-0.3.36.tar.gz -C /tmp/llsrc
    python benchmarks/bench_llamacpp_engine.py --llama-cpp-src /tmp/llsrc/llama_cpp_python-0.3.36
    python benchmarks/bench_llamacpp_engine.py --no-lora --batches 1 --prompts 2      # quick look
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import llamacpp_common as lc  # the benchmarks folder is not a package

CONVERT = "convert_lora_to_gguf.py"
SDIST_HINT = (f"pip download --no-deps --no-binary :all: llama-cpp-python=={lc.LLAMA_CPP_VERSION} -d /tmp/llsrc && "
              f"tar xzf /tmp/llsrc/llama_cpp_python-{lc.LLAMA_CPP_VERSION}.tar.gz -C /tmp/llsrc, then "
              f"--llama-cpp-src /tmp/llsrc/llama_cpp_python-{lc.LLAMA_CPP_VERSION}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 8], help="batch sizes (1 is always measured: "
                                                                           "the agreement comes from it)")
    ap.add_argument("--prompts", type=int, help="agent prompts (default: the largest batch)")
    ap.add_argument("--max-tokens", type=int, default=96, help="greedy tokens per reply (at least 64 for the "
                                                               "agreement; a reply may end sooner)")
    ap.add_argument("--stop-at-eot", action="store_true", help="end each reply at the end-of-turn token (default: "
                                                                 "always --max-tokens ids, so every prompt compares "
                                                                 "that many and the speed is over fixed lengths)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="auto", help="in-house engine dtype (auto: bf16 where native, as rollouts)")
    ap.add_argument("--n-ctx", type=int, default=4096, help="llama.cpp context")
    ap.add_argument("--gguf", type=Path, help="default: the bundled Qwen GGUF, as the project finds it")
    ap.add_argument("--config", type=Path, default=lc.REPO / "configs" / "cpu-demo.yaml",
                    help="training config whose `lora:` section makes the adapter")
    ap.add_argument("--llama-cpp-src", type=Path, help="llama-cpp-python sdist (or its vendor/llama.cpp), for "
                                                       f"{CONVERT}; needed unless --no-lora")
    ap.add_argument("--lora-steps", type=int, default=3, help="adapters saved, converted and loaded in a row")
    ap.add_argument("--lora-b-std", type=float, default=0.01, help="std of the random LoRA B (a fresh PEFT "
                                                                   "adapter has B = 0: no effect to check)")
    ap.add_argument("--lora-adapter", type=Path, default=None,
                    help="a trained PEFT adapter of the bundled model for (c) instead of a random one, e.g. "
                         "RUN_DIR/final (its own LoRA settings then apply)")
    ap.add_argument("--no-lora", action="store_true", help="skip (c)")
    ap.add_argument("--work-dir", type=Path, help="adapters go here (default: a temporary directory, removed)")
    ap.add_argument("--results-dir", type=Path, default=lc.RESULTS)
    args = ap.parse_args(argv)
    if any(b < 1 for b in args.batches) or args.max_tokens < 1 or args.threads < 1 or args.lora_steps < 1:
        ap.error("--batches, --max-tokens, --threads and --lora-steps must be at least 1")
    if 1 not in args.batches:
        args.batches = [1, *args.batches]
    args.batches = sorted(set(args.batches))
    args.prompts = args.prompts or max(args.batches)
    return args


def convert_script(src: Path | None) -> Path:
    """`convert_lora_to_gguf.py` in the sdist root's vendor/llama.cpp or in the given llama.cpp tree; raises
    MissingLlamaCpp saying how to get the sdist."""
    if src is not None:
        for cand in (src / "vendor" / "llama.cpp" / CONVERT, src / CONVERT):
            if cand.is_file():
                return cand
    where = f"not found under {src}" if src else "needs --llama-cpp-src"
    raise lc.MissingLlamaCpp(f"the LoRA conversion ({CONVERT}) {where}: {SDIST_HINT}")


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def reply(ids: list[int], stop_ids: set[int]) -> list[int]:
    """The ids up to and with the first end-of-turn id: the reply an agent would have read."""
    for i, t in enumerate(ids):
        if t in stop_ids:
            return ids[:i + 1]
    return ids


def agreement_row(i: int, prompt: list[int], mine: list[int], theirs: list[int], stop_ids: set[int],
                  decode: Any) -> dict[str, Any]:
    ra, rb = reply(mine, stop_ids), reply(theirs, stop_ids)
    return {"prompt": i, "prompt_tokens": len(prompt), "common_prefix": common_prefix(mine, theirs),
            "compared": min(len(mine), len(theirs)), "identical": mine == theirs, "reply_identical": ra == rb,
            "inhouse_reply_tokens": len(ra), "llamacpp_reply_tokens": len(rb), "inhouse_ids": mine,
            "llamacpp_ids": theirs, "inhouse_text": decode(mine), "llamacpp_text": decode(theirs)}


# ---- the in-house engine --------------------------------------------------------------------------------------

def inhouse_run(b: Any, chats: list[list[dict[str, Any]]], tools: Any, batch: int, max_tokens: int,
                tag: str, through_eot: bool = False) -> dict[str, Any]:
    """The chats in groups of `batch`, greedy; per chat its prompt and output ids; the backend's own counters.
    `through_eot`: no id ends a reply, each gets `max_tokens` ids (the backend's stop set is swapped meanwhile)."""
    from inboxrl.models.engine import Stops

    saved = b.stops
    if through_eot:
        b.stops = Stops(frozenset(), b.eot_id)
    try:
        return _inhouse_run(b, chats, tools, batch, max_tokens, tag)
    finally:
        b.stops = saved


def _inhouse_run(b: Any, chats: list[list[dict[str, Any]]], tools: Any, batch: int, max_tokens: int,
                 tag: str) -> dict[str, Any]:
    from inboxrl.models.base import ChatRequest

    tot = {"sampled": 0, "prefill_tokens": 0, "prefill_s": 0.0, "decode_s": 0.0, "wall_s": 0.0}
    rows = []
    for start in range(0, len(chats), batch):
        group = chats[start:start + batch]
        reqs = [ChatRequest(f"{tag}-{start + i}", m, tools=tools, max_tokens=max_tokens) for i, m in enumerate(group)]
        t0 = time.perf_counter()
        resps = b.generate(reqs)
        tot["wall_s"] += time.perf_counter() - t0
        s = b.last_stats
        tot["sampled"] += s["sampled_tokens"]
        tot["prefill_tokens"] += s["prefill_tokens"]
        tot["prefill_s"] += s["prefill_s"]
        tot["decode_s"] += s["decode_s"]
        for r, q in zip(resps, reqs):
            if r.error:
                raise RuntimeError(f"in-house engine: {r.error}")
            if not r.input_ids or not r.output_ids:
                raise RuntimeError(f"in-house engine: no prompt or output ids for {q.episode_id}")
            rows.append({"prompt_ids": list(r.input_ids), "out_ids": list(r.output_ids)})
            b.end_episode(q.episode_id)
    return {**tot, "rows": rows, **_rates(tot)}


def _rates(t: dict[str, Any]) -> dict[str, Any]:
    return {"tok_s": t["sampled"] / t["wall_s"] if t["wall_s"] else None,
            "decode_tok_s": t["sampled"] / t["decode_s"] if t["decode_s"] else None,
            "prefill_tok_s": t["prefill_tokens"] / t["prefill_s"] if t["prefill_s"] else None}


# ---- llama.cpp ------------------------------------------------------------------------------------------------

def load_llama(gguf: Path, args: argparse.Namespace) -> tuple[Any, float]:
    from llama_cpp import Llama

    t0 = time.perf_counter()
    llm = Llama(model_path=str(gguf), n_ctx=args.n_ctx, n_threads=args.threads, n_threads_batch=args.threads,
                n_batch=512, logits_all=False, seed=0, verbose=False)
    return llm, time.perf_counter() - t0


class LlamaStreams:
    """Greedy replies from one `Llama`, one sequence at a time. `Llama.generate` keeps the KV cache of the
    longest common prefix with the previous sequence; `computed` counts the prompt tokens it had to evaluate."""

    def __init__(self, llm: Any, stop_ids: set[int]) -> None:
        self.llm, self.stop_ids = llm, stop_ids
        self.last: list[int] = []

    def forget(self) -> None:
        """Drops the cache (a new adapter makes it stale)."""
        self.llm.reset()
        self.last = []

    def greedy(self, prompt: list[int], max_tokens: int) -> dict[str, Any]:
        reused = min(common_prefix(self.last, prompt), len(prompt) - 1)
        out: list[int] = []
        first = None
        t0 = time.perf_counter()
        for tok in self.llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                                     reset=True):
            if first is None:
                first = time.perf_counter() - t0
            out.append(int(tok))
            if int(tok) in self.stop_ids or len(out) >= max_tokens:
                break
        wall = time.perf_counter() - t0
        self.last = prompt + out
        first = first if first is not None else wall
        return {"out_ids": out, "wall_s": wall, "prefill_s": first, "decode_s": wall - first,
                "computed": len(prompt) - reused}

    def run(self, prompts: list[list[int]], max_tokens: int) -> dict[str, Any]:
        """Each prompt as a new episode's first turn, prefilled in full (the in-house engine at batch 1 has no
        cached prefix either), one after the other."""
        tot = {"sampled": 0, "prefill_tokens": 0, "prefill_s": 0.0, "decode_s": 0.0, "wall_s": 0.0}
        rows = []
        for p in prompts:
            self.forget()
            r = self.greedy(p, max_tokens)
            rows.append(r)
            tot["sampled"] += len(r["out_ids"])
            tot["prefill_tokens"] += r["computed"]
            tot["prefill_s"] += r["prefill_s"]
            tot["decode_s"] += r["decode_s"]
            tot["wall_s"] += r["wall_s"]
        # the first token comes out of the prefill: decode time covers the others
        rates = _rates(tot)
        rates["decode_tok_s"] = (tot["sampled"] - len(prompts)) / tot["decode_s"] if tot["decode_s"] else None
        return {**tot, "rows": rows, **rates}


def swap_adapter(llm: Any, path: Path, old: Any, scale: float = 1.0) -> tuple[Any, float]:
    """Loads a LoRA GGUF into the loaded model and makes it the context's only adapter, as `Llama.__init__` does
    for `lora_path` (llama_cpp/llama.py), then frees the previous one. The high-level API has no call for this."""
    import llama_cpp.llama_cpp as low  # the ctypes bindings, imported as llama_cpp/llama.py does

    t0 = time.perf_counter()
    adapter = low.llama_adapter_lora_init(llm.model, str(path).encode("utf-8"))
    if not adapter:
        raise RuntimeError(f"llama.cpp could not load the LoRA adapter {path}")
    adapters = (low.llama_adapter_lora_p_ctypes * 1)(adapter)
    scales = (ctypes.c_float * 1)(scale)
    if low.llama_set_adapters_lora(llm.ctx, adapters, 1, scales):
        raise RuntimeError(f"llama.cpp could not apply the LoRA adapter {path}")
    if old:
        low.llama_adapter_lora_free(old)
    return adapter, time.perf_counter() - t0


# ---- the LoRA adapter ---------------------------------------------------------------------------------------------

def lora_settings(config: Path) -> dict[str, Any]:
    """The training config's LoRA as PEFT's keyword arguments, read by the training config loader itself."""
    from inboxrl.training.config import TrainConfig

    lora = TrainConfig.load(config).lora
    return {"r": lora.rank, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout,
            "target_modules": list(lora.target_modules)}


def make_peft(base_dir: Path, settings: dict[str, Any], b_std: float, seed: int = 0,
              adapter: Path | None = None) -> tuple[Any, float]:
    """The float32 policy with a LoRA adapter: a trained one from `adapter`, else one whose B is random (a trained
    adapter's is not zero)."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if adapter is not None:
        return PeftModel.from_pretrained(model, str(adapter)), time.perf_counter() - t0
    pm = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **settings))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * b_std)
    return pm, time.perf_counter() - t0


def convert(script: Path, adapter_dir: Path, base_dir: Path, out: Path) -> float:
    """Runs llama.cpp's converter with its own gguf-py and conversion package first on the path."""
    root = script.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(root / "gguf-py"), str(root), os.environ.get("PYTHONPATH", "")) if p)}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, str(script), str(adapter_dir), "--base", str(base_dir), "--outfile",
                        str(out), "--outtype", "f32"], env=env, capture_output=True, text=True, check=False)
    if r.returncode != 0 or not out.is_file():
        tail = "\n".join((r.stderr or r.stdout).splitlines()[-12:])
        raise RuntimeError(f"{script.name} failed (exit {r.returncode}):\n{tail}")
    return time.perf_counter() - t0


def lora_phase(args: argparse.Namespace, script: Path, b: Any, streams: LlamaStreams, prompt: list[int],
               base_out: dict[str, list[int]], chat: list[dict[str, Any]], tools: Any, work: Path) -> dict[str, Any]:
    from inboxrl.models.bundled import ensure_converted
    from inboxrl.models.local import LocalBackend
    from inboxrl.training.shadow import refresh

    base_dir = ensure_converted(lc.BUNDLED_KEY)
    settings = lora_settings(args.config)
    if args.lora_adapter:  # the trained adapter's own settings
        own = json.loads((args.lora_adapter / "adapter_config.json").read_text())
        settings = {k: own[k] for k in settings if k in own}
    print(f"(c) LoRA {settings}: float32 model + PEFT", file=sys.stderr, flush=True)
    pm, peft_s = make_peft(base_dir, settings, args.lora_b_std, adapter=args.lora_adapter)
    refresh_s = []
    for _ in range(args.lora_steps + 1):  # the first call allocates the copy; a run pays that once
        t0 = time.perf_counter()
        shadow = refresh(pm)
        refresh_s.append(time.perf_counter() - t0)
    steps = []
    adapter = None
    for k in range(args.lora_steps):
        d = work / f"step-{k}"
        t0 = time.perf_counter()
        pm.save_pretrained(d)
        save_s = time.perf_counter() - t0
        gguf = work / f"step-{k}.gguf"
        convert_s = convert(script, d, base_dir, gguf)
        adapter, load_s = swap_adapter(streams.llm, gguf, adapter)
        streams.forget()
        steps.append({"save_s": save_s, "convert_s": convert_s, "load_apply_s": load_s,
                      "total_s": save_s + convert_s + load_s, "gguf_bytes": gguf.stat().st_size})
        print(f"  step {k}: save {save_s:.2f} s, convert {convert_s:.2f} s, load+apply {load_s:.3f} s",
              file=sys.stderr, flush=True)
    # the same adapter in both engines, greedy on the first prompt
    with_lora = streams.greedy(prompt, args.max_tokens)
    lb = LocalBackend.from_model(shadow, b.tokenizer, name="local/lora-check", threads=args.threads)
    mine = inhouse_run(lb, [chat], tools, 1, args.max_tokens, "lora", not args.stop_at_eot)["rows"][0]["out_ids"]
    llama_ids = with_lora["out_ids"]
    tok = b.tokenizer
    return {
        "settings": settings, "b_std": None if args.lora_adapter else args.lora_b_std,
        "adapter": str(args.lora_adapter) if args.lora_adapter else None, "peft_build_s": peft_s,
        "inhouse_refresh_first_s": refresh_s[0], "inhouse_refresh_s": refresh_s[1:],
        "llamacpp_steps": steps,
        "check": {"llamacpp_changed_by_adapter": llama_ids != base_out["llamacpp"],
                  "inhouse_changed_by_adapter": mine != base_out["inhouse"],
                  "common_prefix": common_prefix(mine, llama_ids), "inhouse_tokens": len(mine),
                  "llamacpp_tokens": len(llama_ids), "inhouse_text": tok.decode(mine),
                  "llamacpp_text": tok.decode(llama_ids),
                  "llamacpp_decode_tok_s_with_adapter": (len(llama_ids) - 1) / with_lora["decode_s"]
                  if with_lora["decode_s"] else None},
    }


# ---- report -------------------------------------------------------------------------------------------------------

def _summary_rows(speed: list[dict[str, Any]]) -> list[list[Any]]:
    return [[s["engine"], s["batch"], s["tok_s"], s["decode_tok_s"], s["prefill_tok_s"], s["sampled"],
             round(s["wall_s"], 1)] for s in speed]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["INBOXRL_DTYPE"] = args.dtype  # what precision_record() reports is what was loaded
    try:
        lc.require(("llama_cpp",))
        script = None if args.no_lora else convert_script(args.llama_cpp_src)
    except lc.MissingLlamaCpp as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    import bench_generation as bg

    from inboxrl.models.hardware import precision_record
    from inboxrl.models.registry import load_backend

    record = lc.run_record(argv)
    gguf = args.gguf or lc.bundled_gguf()
    t0 = time.perf_counter()
    b = load_backend(f"local/{lc.BUNDLED_KEY}", threads=args.threads, dtype=args.dtype, shared=False)
    inhouse_load = time.perf_counter() - t0
    llm, llama_load = load_llama(gguf, args)
    through = not args.stop_at_eot
    streams = LlamaStreams(llm, set() if through else set(b.stop_ids))
    print(f"loaded: in-house {inhouse_load:.1f} s ({precision_record()['local_dtype']}), "
          f"llama.cpp {llama_load:.1f} s", file=sys.stderr, flush=True)

    tools = bg.TOOLS if b.template_tools else None
    chats = [[{"role": "system", "content": bg.SYSTEM}, {"role": "user", "content": q}]
             for q in bg.questions(args.prompts)]
    inhouse_run(b, chats[:1], tools, 1, 4, "warmup")  # first-call costs out of the figures
    streams.run([[int(t) for t in b.tokenizer("Hello", add_special_tokens=False)["input_ids"]]], 4)
    streams.forget()

    speed: list[dict[str, Any]] = []
    per_batch: dict[int, dict[str, Any]] = {}
    for batch in args.batches:
        print(f"(a) in-house, batch {batch}", file=sys.stderr, flush=True)
        per_batch[batch] = inhouse_run(b, chats, tools, batch, args.max_tokens, f"b{batch}", through)
        speed.append({"engine": "in-house", "batch": batch, **{k: v for k, v in per_batch[batch].items()
                                                                if k != "rows"}})
    prompts = [r["prompt_ids"] for r in per_batch[1]["rows"]]
    print(f"(a) llama.cpp, {len(prompts)} sequential streams", file=sys.stderr, flush=True)
    lrun = streams.run(prompts, args.max_tokens)
    for batch in args.batches:  # one sequence at a time: batch B is B streams in a row, the same figure
        speed.append({"engine": "llama.cpp", "batch": batch, "sequential": True,
                      **{k: v for k, v in lrun.items() if k != "rows"}})

    agreement = [agreement_row(i, mine["prompt_ids"], mine["out_ids"], theirs["out_ids"], set(b.stop_ids),
                               b.tokenizer.decode)
                  for i, (mine, theirs) in enumerate(zip(per_batch[1]["rows"], lrun["rows"]))]

    doc = {**record, "benchmark": "llamacpp-engine", "gguf": str(gguf), "precision": precision_record(),
           "threads": args.threads, "max_tokens": args.max_tokens, "through_eot": through, "prompts": len(chats),
           "load_s": {"inhouse": inhouse_load, "llamacpp": llama_load},
           "speed": speed, "agreement": agreement, "lora": None,
           "notes": ["llama.cpp batch B = B sequential streams (llama-cpp-python decodes one sequence)",
                     "llama.cpp computes on the Q4_K_M weights; the in-house engine on them de-quantised"]}
    path = lc.write_result(doc, "llamacpp-engine", args.results_dir)  # (a) and (b) are kept whatever (c) does
    lora = None
    if script is not None:
        work = args.work_dir or Path(tempfile.mkdtemp(prefix="llamacpp-lora-"))
        work.mkdir(parents=True, exist_ok=True)
        try:
            lora = lora_phase(args, script, b, streams, prompts[0], {"inhouse": per_batch[1]["rows"][0]["out_ids"],
                                                                     "llamacpp": lrun["rows"][0]["out_ids"]},
                              chats[0], tools, work)
        except Exception as e:  # noqa: BLE001 - recorded in the results and printed; (a) and (b) stand
            import traceback

            traceback.print_exc()
            lora = {"error": f"{type(e).__name__}: {e}"}
        finally:
            if args.work_dir is None:
                shutil.rmtree(work, ignore_errors=True)
        doc["lora"] = lora
        lc.write_result(doc, "llamacpp-engine", path=path)

    print(lc.markdown_table(["engine", "batch", "tok/s (wall)", "decode tok/s", "prefill tok/s", "sampled",
                             "wall s"], _summary_rows(speed)))
    print()
    print(lc.markdown_table(["prompt", "prompt tokens", "ids compared", "common prefix", "identical",
                             "reply tokens in-house / llama.cpp", "same reply"],
                            [[a["prompt"], a["prompt_tokens"], a["compared"], a["common_prefix"], a["identical"],
                              f"{a['inhouse_reply_tokens']} / {a['llamacpp_reply_tokens']}", a["reply_identical"]]
                             for a in agreement]))
    if lora and "error" in lora:
        print(f"\n(c) LoRA failed: {lora['error']}")
    elif lora:
        print()
        rows = [[k, s["save_s"], s["convert_s"], s["load_apply_s"], s["total_s"]]
                for k, s in enumerate(lora["llamacpp_steps"])]
        print(lc.markdown_table(["llama.cpp step", "save PEFT s", "convert s", "load + apply s", "total s"], rows))
        print(f"in-house bf16 copy refresh: first {lora['inhouse_refresh_first_s']:.2f} s (allocates), then "
              + ", ".join(f"{s:.2f}" for s in lora["inhouse_refresh_s"]) + " s")
        print(f"adapter check: {lora['check']['common_prefix']} common greedy tokens with the adapter; changed by "
              f"it: llama.cpp {lora['check']['llamacpp_changed_by_adapter']}, in-house "
              f"{lora['check']['inhouse_changed_by_adapter']}")
    print(f"\nwritten {path}", file=sys.stderr)
    return 1 if lora and "error" in lora else 0


if __name__ == "__main__":
    raise SystemExit(main())
