"""Rollouts through vLLM on GPUs, with the same episode bookkeeping as the local backend.

On GPUs the policy's tokens are sampled by vLLM (colocated in each training process, or a `trl vllm-serve` server),
which TRL keeps in sync with the trained weights before each rollout. Everything else stays the project's: the
episode loop, the chat rendering and the per-episode token streams of `LocalBackend` (so training still sees
exactly the sampled ids, spliced with the environment's), the judge and the reward. Only the sampling of one turn
is delegated: `VllmEngine` is an `Engine` that sends each episode's whole token stream to vLLM as a token-id prompt
(vLLM's prefix cache makes the repeated prefix cheap) and reads back the sampled ids and log-probs.

Colocate mode requires `tensor_parallel_size: 1` (each rank generates its own episodes independently; a TP group
would have to generate in lock-step across ranks). Server mode lets every rank send its own requests to the server.

Not exercised on the CPU machine this project was built on (no GPU, no vLLM); the bookkeeping is tested with a
scripted sampler (tests/test_train_vllm.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from inboxrl.models.engine import Stops
from inboxrl.models.local import LocalBackend
from inboxrl.models.streams import Stream, Work

# (prompts as token ids, max new tokens, temperatures, stop ids) -> [(sampled ids, their log-probs)]
Sampler = Callable[[list[list[int]], list[int], list[float], list[int]], list[tuple[list[int], list[float]]]]


class VllmEngine:
    """An `Engine` whose turns are sampled by vLLM; it keeps no state of its own (vLLM caches prefixes)."""

    def __init__(self, sampler: Sampler) -> None:
        self.sampler = sampler

    def run(self, items: list[Work], stops: Stops) -> dict[str, float]:
        outs = self.sampler([list(w.stream.ids) for w in items], [w.max_new for w in items],
                            [float(w.req.temperature) for w in items], sorted(stops.ids))
        if len(outs) != len(items):
            raise RuntimeError(f"vLLM returned {len(outs)} completions for {len(items)} prompts")
        for w, (ids, lps) in zip(items, outs):
            ids = [int(i) for i in ids][: w.max_new]
            lps = [float(x) for x in lps][: len(ids)]
            lps += [0.0] * (len(ids) - len(lps))
            if ids and ids[-1] not in stops.ids and len(ids) < w.max_new:
                # vLLM stopped on a stop id but left it out of the output (it does so for special tokens): the
                # model did sample it, and the stream must show the reply closed.
                ids.append(stops.eot_id)
                lps.append(0.0)
            w.out = ids
            w.logprobs = lps
            w.stopped = bool(ids) and ids[-1] in stops.ids
            w.prefill_tokens += len(w.feed)
            w.stream.kv, w.stream.kv_len = None, 0
        return {}

    def release(self, streams: Mapping[str, Stream]) -> None:
        return None


def vllm_backend(model: Any, tokenizer: Any, name: str, sampler: Sampler) -> LocalBackend:
    """A `LocalBackend` (chat rendering, token streams) whose turns vLLM samples."""
    return LocalBackend(model, tokenizer, name, owns_model=False, engine=VllmEngine(sampler))


def colocate_sampler(llm: Any) -> Sampler:
    """Sampling with the vLLM engine TRL colocates in this process (`trainer.vllm_generation.llm`)."""
    from vllm import SamplingParams

    def sample(prompts: list[list[int]], max_new: list[int], temps: list[float],
               stops: list[int]) -> list[tuple[list[int], list[float]]]:
        params = [SamplingParams(n=1, temperature=t, max_tokens=m, stop_token_ids=stops, logprobs=0)
                  for m, t in zip(max_new, temps)]
        outputs = llm.generate([{"prompt_token_ids": p} for p in prompts], sampling_params=params, use_tqdm=False)
        return [_read_output(o.outputs[0]) for o in outputs]

    return sample


def _read_output(c: Any) -> tuple[list[int], list[float]]:
    ids = list(c.token_ids)
    lps: list[float] = []
    for tok, d in zip(ids, c.logprobs or []):
        lp = d.get(tok) if isinstance(d, dict) else None
        lps.append(float(getattr(lp, "logprob", 0.0)) if lp is not None else 0.0)
    return ids, lps


def server_sampler(client: Any) -> Sampler:
    """Sampling through a `trl vllm-serve` server (`VLLMClient.generate` with token-id prompts); requests with the
    same budget and temperature go in one call."""

    def sample(prompts: list[list[int]], max_new: list[int], temps: list[float],
               stops: list[int]) -> list[tuple[list[int], list[float]]]:
        out: list[tuple[list[int], list[float]] | None] = [None] * len(prompts)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, key in enumerate(zip(max_new, temps)):
            groups.setdefault(key, []).append(i)
        for (m, t), idx in groups.items():
            res = client.generate(prompts=[prompts[i] for i in idx], n=1, temperature=t, max_tokens=m, logprobs=0,
                                  generation_kwargs={"stop_token_ids": stops})
            for j, i in enumerate(idx):
                lp = res.get("logprobs")
                seq_lps = [float(x[0]) if x and x[0] is not None else 0.0 for x in lp[j]] if lp else []
                out[i] = (list(res["completion_ids"][j]), seq_lps)
        return [o if o is not None else ([], []) for o in out]

    return sample


def vllm_backend_factory(trainer: Any, name: str) -> Callable[[Any, Any], Any]:
    """`make_backend(model, tokenizer)` for the rollout and validation when the config says `use_vllm`."""
    gen = getattr(trainer, "vllm_generation", None)
    if gen is None:
        raise RuntimeError("use_vllm is set but the trainer has no vLLM engine")
    if gen.mode == "colocate":
        if int(getattr(gen, "tensor_parallel_size", 1)) != 1:
            raise RuntimeError("vllm colocate mode with tensor_parallel_size > 1 cannot run multi-turn episodes "
                               "independently per rank; use tensor_parallel_size: 1 or server mode")
        sampler = colocate_sampler(gen.llm)
    else:
        client = getattr(gen, "vllm_client", None)
        if client is None:  # non-main ranks: their own connection for generation only (no weight sync)
            from trl.generation.vllm_client import VLLMClient

            args = trainer.args
            client = VLLMClient(base_url=args.vllm_server_base_url, host=args.vllm_server_host,
                                server_port=args.vllm_server_port, connection_timeout=args.vllm_server_timeout)
        sampler = server_sampler(client)

    def make(model: Any, tokenizer: Any) -> LocalBackend:
        return vllm_backend(model, tokenizer, name, sampler)

    return make
