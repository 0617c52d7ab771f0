"""Training's scoring + backward pass: fp32 vs bf16 autocast, on the bundled Qwen-0.5B with the demo's LoRA.

    python benchmarks/bench_backward.py                  # 1,500-token episodes, 2 repeats each, interleaved
    python benchmarks/bench_backward.py --tokens 3000 --repeats 3

In the CPU demonstration 63% of a GRPO step was the trainer's forward + backward over the episodes (one episode per
micro-batch). `bf16: true` in a training config makes the trainer run them under bf16 autocast; this measures what
that buys on this CPU (AVX512-BF16 here; a CPU without native bf16 can be slower in bf16, so measure before
turning it on elsewhere). Both variants run in one process, interleaved, so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=1500, help="episode length (prompt + completion)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=16)
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from inboxrl.models.bundled import ensure_converted

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(ensure_converted("qwen2.5-coder-0.5b"), dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=targets))
    model.train()
    ids = torch.randint(0, model.config.vocab_size - 1, (1, args.tokens), generator=torch.Generator().manual_seed(0))

    def step(bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=ids).logits
        # as the trainer does: per-token log-probs of the sequence's own next tokens, in fp32
        logp = torch.log_softmax(logits.float(), -1)[0, :-1].gather(-1, ids[0, 1:, None]).mean()
        (-logp).backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"float32": [], "bf16_autocast": []}
    step(False)  # warm-up: allocator, thread pool
    for r in range(args.repeats):
        for name, bf16 in (("float32", False), ("bf16_autocast", True)):
            times[name].append(step(bf16))
            # as it goes: on a CPU without native bf16 one bf16 step can take many minutes
            print(f"repeat {r + 1}: {name} {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"tokens": args.tokens, "threads": args.threads, "lora_rank": args.rank,
                      "seconds": {k: [round(x, 2) for x in v] for k, v in times.items()},
                      "median_s": {k: round(v, 2) for k, v in med.items()},
                      "bf16_speedup": round(med["float32"] / med["bf16_autocast"], 2)}, indent=2))


if __name__ == "__main__":
    main()
