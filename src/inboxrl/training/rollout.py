"""The GRPO rollout: TRL's `rollout_func`, running exactly the episodes `inboxrl eval` runs.

Why `rollout_func` and not TRL's `tools` / `environment_factory` loop (see docs/training.md):
- TRL's loop parses tool calls only inside `<tool_call>` tags; the bundled Qwen writes bare JSON, so every episode
  would end after one turn. Our parser (`inboxrl.models.toolcalls`) reads what the model really writes.
- TRL's loop cannot end an episode from a tool (`return_final_answer`), and it would be a second episode
  implementation with its own stopping rules, prompts and error messages. Evaluation numbers would then say nothing
  about the policy being trained.
So the rollout is `agent.runner.run_episodes` with a `LocalBackend` over the trainer's own model, and the episodes
are scored by the same judge, rubric and reward as evaluation.

From each trajectory the trainer gets (all token ids as recorded by the backend, never re-tokenised):
- `prompt_ids`: turn 0's input ids (system prompt and question, rendered by the chat template);
- `completion_ids`: out_0 + in_1 + out_1 + ... + out_last, ending right after the model's end-of-turn token, so
  TRL does not count the episode as truncated;
- `env_mask`: 1 for ids the model sampled (out_k), 0 for ids the environment wrote (in_k: tool results, error
  messages, template tokens). TRL turns it into `tool_mask`: masked ids stay in attention, leave the loss.
TRL hands the prompts already repeated `num_generations` times (one completion per entry, consecutive entries form
a group), and the extra keys returned here reach the reward function as per-sample keyword arguments.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.questions.schema import Question
from inboxrl.scoring.reward import RewardConfig
from inboxrl.trajectory import Trajectory, write_jsonl


class RolloutError(RuntimeError):
    """A rollout that cannot be turned into training data (e.g. a backend that records no token ids)."""


@dataclass
class Sample:
    prompt_ids: list[int]
    completion_ids: list[int]
    env_mask: list[int]  # 1: sampled by the model; 0: written by the environment
    logprobs: list[float]  # sampling log-probs of sampled ids; 0.0 at environment ids
    truncated: bool = False  # cut at max_completion_tokens


def trajectory_sample(traj: Trajectory, max_completion_tokens: int,
                      empty_prompt: Callable[[Trajectory], list[int]] | None = None,
                      filler_id: int = 0) -> Sample:
    """Splices one episode's recorded ids into (prompt, completion, mask).

    An episode with no model turn at all (the backend failed before generating) still yields a sample, because
    TRL needs one completion per prompt: its prompt comes from `empty_prompt` and its completion is one masked
    filler token, so it carries no gradient.
    """
    turns = traj.turns
    if not turns:
        if empty_prompt is None:
            raise RolloutError(f"episode {traj.meta.get('episode_id', traj.question_id)} has no model turn")
        return Sample(prompt_ids=list(empty_prompt(traj)), completion_ids=[filler_id], env_mask=[0], logprobs=[0.0])
    if turns[0].input_ids is None or any(t.output_ids is None for t in turns):
        raise RolloutError("the rollout backend recorded no token ids; GRPO needs a local backend "
                           "(LocalBackend.from_model) with keep_token_ids")
    prompt_ids = list(turns[0].input_ids)
    completion: list[int] = []
    mask: list[int] = []
    logps: list[float] = []
    resets = 0
    for k, turn in enumerate(turns):
        if k > 0:
            ins = list(turn.input_ids or [])
            if len(ins) >= len(prompt_ids) and ins[: len(prompt_ids)] == prompt_ids:
                # The backend re-rendered the whole chat (its stream and the messages diverged): later turns were
                # sampled from a different token context than the splice would show, so the sample ends here.
                resets += 1
                break
            completion += ins
            mask += [0] * len(ins)
            logps += [0.0] * len(ins)
        outs = list(turn.output_ids or [])
        completion += outs
        mask += [1] * len(outs)
        lp = list(turn.output_logprobs or [])
        logps += lp if len(lp) == len(outs) else [0.0] * len(outs)
    truncated = resets > 0
    if len(completion) > max_completion_tokens:
        completion, mask, logps = (completion[:max_completion_tokens], mask[:max_completion_tokens],
                                   logps[:max_completion_tokens])
        truncated = True
    if not completion:  # a turn that sampled nothing: keep TRL's shapes valid, with no gradient
        completion, mask, logps = [filler_id], [0], [0.0]
    return Sample(prompt_ids=prompt_ids, completion_ids=completion, env_mask=mask, logprobs=logps,
                  truncated=truncated)


def equal_reward_groups(rewards: Sequence[float], group_size: int, tol: float = 1e-6) -> list[bool]:
    """For each group of `group_size` consecutive rewards: True when they are all equal (no learning signal)."""
    if len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} rewards do not make whole groups of {group_size}")
    out = []
    for g in range(0, len(rewards), group_size):
        grp = rewards[g:g + group_size]
        out.append(max(grp) - min(grp) <= tol)
    return out


def rollout_stats(trajs: Sequence[Trajectory], gen_seconds: float) -> dict[str, float]:
    """The per-step numbers logged next to TRL's: what the episodes did and how fast they were generated."""
    n = max(len(trajs), 1)
    scored = [t.rubric for t in trajs if t.rubric is not None]
    ns = max(len(scored), 1)
    sampled = sum(len(tr.output_ids or []) for t in trajs for tr in t.turns)
    env = sum(len(tr.input_ids or []) for t in trajs for tr in t.turns[1:])
    rewards = [t.reward for t in trajs if t.reward is not None]
    mean_r = sum(rewards) / len(rewards) if rewards else math.nan
    std_r = (math.sqrt(sum((r - mean_r) ** 2 for r in rewards) / len(rewards)) if rewards else math.nan)
    return {
        "episode/reward_mean": mean_r,
        "episode/reward_std": std_r,
        "episode/accuracy": sum(1 for rb in scored if rb.attempted_answer and rb.answer_correct) / ns,
        "episode/hallucination_rate": sum(1 for rb in scored
                                          if rb.attempted_answer and not rb.answer_correct) / ns,
        "episode/dont_know_rate": sum(1 for rb in scored if rb.said_dont_know) / ns,
        "episode/out_of_turns_rate": sum(1 for rb in scored if rb.ran_out_of_turns) / ns,
        "episode/format_error_rate": sum(1 for rb in scored if rb.total_format_errors > 0) / ns,
        "episode/format_errors_per_episode": sum(rb.total_format_errors for rb in scored) / ns,
        "episode/found_source_rate": sum(1 for rb in scored if rb.found_source_in_search) / ns,
        "episode/read_source_rate": sum(1 for rb in scored if rb.read_source) / ns,
        "episode/avg_turns": sum(len(t.turns) for t in trajs) / n,
        "episode/avg_tool_calls": sum(len(t.tool_events) for t in trajs) / n,
        "tokens/sampled": float(sampled),
        "tokens/environment": float(env),
        "tokens/prompt": float(sum(len(t.turns[0].input_ids or []) for t in trajs if t.turns)),
        "rollout/seconds": gen_seconds,
        "rollout/tokens_per_s": sampled / gen_seconds if gen_seconds > 0 else math.nan,
    }


@dataclass
class RolloutLog:
    """What the last rollouts did, for callbacks and tests (the trainer's own metrics are averaged away)."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    skipped_groups_total: int = 0
    groups_total: int = 0


class EpisodeRollout:
    """TRL's `rollout_func`: `(prompts, trainer) -> dict`. Prompts are question ids (the dataset's `prompt`).

    `make_backend(model, tokenizer)` builds the generation backend over the trainer's (unwrapped) model; by default
    the project's `LocalBackend.from_model`. `judge` scores answers; `db` is the mail store.
    """

    def __init__(self, questions: Sequence[Question], db: str, agent_cfg: AgentConfig, judge: Any,
                 reward_cfg: RewardConfig, tokenizer: Any, *, num_generations: int, max_completion_tokens: int,
                 batch_size: int | None = None, skip_equal_groups: bool = True, return_logprobs: bool = False,
                 trajectories_dir: Path | None = None, model_name: str = "policy",
                 make_backend: Callable[[Any, Any], Any] | None = None, rollout_dtype: str | None = None):
        self.by_id = {q.id: q for q in questions}
        self.db = db
        self.agent_cfg = agent_cfg
        self.judge = judge
        self.reward_cfg = reward_cfg
        self.tokenizer = tokenizer
        self.num_generations = num_generations
        self.max_completion_tokens = max_completion_tokens
        self.batch_size = batch_size
        self.skip_equal_groups = skip_equal_groups
        self.return_logprobs = return_logprobs
        self.trajectories_dir = trajectories_dir
        self.model_name = model_name
        self.make_backend = make_backend or default_backend_factory(model_name, rollout_dtype)
        # False when another engine (vLLM) samples: no need to gather sharded weights for generation.
        self.generation_needs_weights = True
        self._cpu_s: float | None = None
        self.log = RolloutLog()
        self.last_trajectories: list[Trajectory] = []
        self.last_samples: list[Sample] = []
        self.__name__ = "inboxrl_rollout"

    # TRL calls this.
    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        from trl.models.utils import unwrap_model_for_generation

        questions = [self._question(p) for p in prompts]
        step = int(getattr(trainer.state, "global_step", 0)) + 1  # the optimiser step these rollouts feed
        model_wrapped = getattr(trainer, "model_wrapped", None) or trainer.model
        t0, c0 = time.perf_counter(), time.process_time()
        if self.generation_needs_weights:
            with unwrap_model_for_generation(model_wrapped, trainer.accelerator,
                                             gather_deepspeed3_params=trainer.args.ds3_gather_for_generation) as m:
                trajs = self.run(m, questions)
        else:  # vLLM samples (TRL synced its weights before calling us); the model only lends its config
            trajs = self.run(trainer.model, questions)
        gen_s = time.perf_counter() - t0
        self._cpu_s = time.process_time() - c0  # CPU time: on a shared machine, wall time says little
        return self.to_trainer_batch(trajs, trainer, step, gen_s)

    def _question(self, prompt: Any) -> Question:
        key = prompt if isinstance(prompt, str) else str(prompt)
        try:
            return self.by_id[key]
        except KeyError:
            raise RolloutError(f"rollout got prompt {key!r}, which is not a training question id") from None

    def run(self, model: Any, questions: Sequence[Question]) -> list[Trajectory]:
        """Runs and scores the episodes with `model` in eval mode (no dropout while sampling), restoring its
        mode afterwards: the trainer owns the model."""
        from inboxrl.agent.runner import run_episodes
        from inboxrl.scoring.score import score_trajectories

        was_training = bool(getattr(model, "training", False))
        model.eval()
        try:
            backend = self.make_backend(model, self.tokenizer)
            trajs = run_episodes(questions, backend, self.db, self.agent_cfg,
                                 batch_size=self.batch_size or len(questions))
        finally:
            if was_training:
                model.train()
        if len(trajs) != len(questions):
            raise RolloutError(f"{len(questions)} episodes were started but {len(trajs)} finished")
        failed = [t for t in trajs if t.stop_reason == "backend_error"]
        if trajs and len(failed) == len(trajs):
            # Every episode scored as "no answer" would train on nothing while looking like a run; stop instead.
            raise RolloutError(f"every rollout of this step failed in the model backend: {failed[0].backend_error}")
        score_trajectories(trajs, self.judge, self.reward_cfg, db=self.db, max_turns=self.agent_cfg.max_turns)
        return trajs

    def to_trainer_batch(self, trajs: Sequence[Trajectory], trainer: Any | None, step: int,
                         gen_seconds: float) -> dict[str, Any]:
        """The dict TRL expects, plus the reward and rubric facts as per-sample extras."""
        eos = self._end_id()
        samples = [trajectory_sample(t, self.max_completion_tokens, self._empty_prompt, filler_id=eos)
                   for t in trajs]
        rewards = [float(t.reward if t.reward is not None else self.reward_cfg.format_error_base) for t in trajs]
        # Groups are consecutive entries; with several processes a group can span them, so decide on all rewards.
        all_rewards = _gather(trainer, rewards)
        equal = equal_reward_groups(all_rewards, self.num_generations)
        offset = _process_index(trainer) * len(rewards)
        skipped_local = [equal[(offset + i) // self.num_generations] for i in range(len(rewards))]
        if self.skip_equal_groups:
            for s, skip in zip(samples, skipped_local):
                if skip:  # zero advantage anyway; masking also keeps a KL term (beta > 0) from moving them
                    s.env_mask = [0] * len(s.env_mask)

        stats = rollout_stats(trajs, gen_seconds)
        if self._cpu_s is not None:
            stats["rollout/cpu_seconds"] = self._cpu_s
            self._cpu_s = None
        stats["groups/skipped"] = float(sum(equal))
        stats["groups/total"] = float(len(equal))
        stats["groups/skipped_fraction"] = sum(equal) / len(equal) if equal else 0.0
        stats["episode/truncated_rate"] = sum(s.truncated for s in samples) / max(len(samples), 1)
        self.log.skipped_groups_total += sum(equal)
        self.log.groups_total += len(equal)
        self.log.steps.append({"step": step, **stats})
        self.last_trajectories = list(trajs)
        self.last_samples = samples
        if trainer is not None:
            _log_to_trainer(trainer, stats)
        if self.trajectories_dir is not None:
            # Every process's episodes go into the step's file: rank 0 writes what all ranks ran.
            rank = _process_index(trainer)
            mine = [t.without_token_ids() for t in trajs]
            for t in mine:
                t.meta["rank"] = rank
            everyone = _gather_objects(trainer, mine)
            if _is_main(trainer):
                self._write(everyone, step)

        return {
            "prompt_ids": [s.prompt_ids for s in samples],
            "completion_ids": [s.completion_ids for s in samples],
            "logprobs": [s.logprobs for s in samples] if self.return_logprobs else None,
            "env_mask": [s.env_mask for s in samples],
            # extras: per-sample keyword arguments of the reward function
            "inboxrl_reward": rewards,
            "inboxrl_tier": [str(t.meta.get("tier", "none")) for t in trajs],
            "inboxrl_group_skipped": skipped_local,
        }

    def _write(self, trajs: Sequence[Trajectory], step: int) -> None:
        assert self.trajectories_dir is not None
        path = self.trajectories_dir / f"step-{step:06d}.jsonl"
        write_jsonl(path, list(trajs), append=False)

    def _end_id(self) -> int:
        tok = self.tokenizer
        for name in ("eos_token_id", "pad_token_id"):
            v = getattr(tok, name, None)
            if isinstance(v, int):
                return v
        return 0

    def _empty_prompt(self, traj: Trajectory) -> list[int]:
        msgs = [m.to_openai() for m in traj.messages[:2]]
        ids = self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)


def inboxrl_reward(prompts: list[Any], completions: list[Any], inboxrl_reward: list[float] | None = None,
                   **kwargs: Any) -> list[float]:
    """TRL's reward function. The reward was computed inside the rollout by the judge and the rubric (the same
    code as evaluation); here it is only handed over."""
    if inboxrl_reward is None:
        raise RolloutError("reward missing: the rollout did not return 'inboxrl_reward'")
    return [float(r) for r in inboxrl_reward]


def default_backend_factory(name: str, dtype: str | None = None) -> Callable[[Any, Any], Any]:
    """The project's local backend over the given model; with `dtype`, over a private converted copy of it."""
    def make(model: Any, tokenizer: Any) -> Any:
        from inboxrl.models.local import LocalBackend

        return LocalBackend.from_model(model, tokenizer, name=name, dtype=dtype)

    return make


# ---- small helpers over the trainer, tolerant of `trainer=None` (tests and offline use) --------------------------
def _gather(trainer: Any | None, values: list[float]) -> list[float]:
    acc = getattr(trainer, "accelerator", None)
    if acc is None or getattr(acc, "num_processes", 1) == 1:
        return list(values)
    from accelerate.utils import gather_object

    return list(gather_object(list(values)))


def _gather_objects(trainer: Any | None, items: list[Trajectory]) -> list[Trajectory]:
    """All processes' items in rank order (every process must call it)."""
    acc = getattr(trainer, "accelerator", None)
    if acc is None or getattr(acc, "num_processes", 1) == 1:
        return list(items)
    from accelerate.utils import gather_object

    return list(gather_object(list(items)))


def _process_index(trainer: Any | None) -> int:
    acc = getattr(trainer, "accelerator", None)
    return int(getattr(acc, "process_index", 0)) if acc is not None else 0


def _is_main(trainer: Any | None) -> bool:
    acc = getattr(trainer, "accelerator", None)
    return bool(getattr(acc, "is_main_process", True)) if acc is not None else True


def _log_to_trainer(trainer: Any, stats: dict[str, float]) -> None:
    """Adds our numbers to the trainer's log records (averaged per logging step, sent to every reporter)."""
    from inboxrl.training.metric_buffer import buffer_of

    buf = buffer_of(trainer)
    if buf is not None:
        buf.add("train" if getattr(trainer.model, "training", True) else "eval", stats)
