"""Validation during training: the validation questions through the `inboxrl eval` harness and metrics.

The same `run_episodes`, judge, rubric and `evaluation.metrics.metrics` as `inboxrl eval`, with the policy's
current weights, so the curve in the report is directly comparable with the prompted baselines' eval runs. With
several processes each runs a shard of the questions (under ZeRO-3 every rank must take part in gathering the
weights anyway) and the trajectories are gathered before the metrics are computed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.questions.schema import Question
from inboxrl.scoring.reward import RewardConfig
from inboxrl.trajectory import Trajectory, write_jsonl


def run_validation(model: Any, tokenizer: Any, questions: Sequence[Question], db: str, agent_cfg: AgentConfig,
                   judge: Any, reward_cfg: RewardConfig, *, model_name: str, batch_size: int = 8,
                   make_backend: Any = None, accelerator: Any = None) -> tuple[dict[str, Any], list[Trajectory]]:
    """(metrics, trajectories) of one validation pass; the model's train/eval mode is restored afterwards."""
    from inboxrl.agent.runner import run_episodes
    from inboxrl.evaluation.metrics import metrics
    from inboxrl.scoring.score import score_trajectories
    from inboxrl.training.rollout import default_backend_factory

    make_backend = make_backend or default_backend_factory(model_name)
    rank, world = 0, 1
    if accelerator is not None:
        rank, world = int(accelerator.process_index), int(accelerator.num_processes)
    shard = list(questions)[rank::world]
    was_training = bool(getattr(model, "training", False))
    model.eval()
    t0 = time.perf_counter()
    try:
        backend = make_backend(model, tokenizer)
        trajs = run_episodes(shard, backend, db, agent_cfg, batch_size=max(1, min(batch_size, len(shard) or 1)))
    finally:
        if was_training:
            model.train()
    score_trajectories(trajs, judge, reward_cfg, db=db, max_turns=agent_cfg.max_turns)
    if world > 1:
        from accelerate.utils import gather_object

        dumped = gather_object([t.model_dump_json() for t in trajs])
        trajs = [Trajectory.model_validate_json(s) for s in dumped]
    m = metrics(trajs)
    m["seconds"] = time.perf_counter() - t0
    sampled = sum(len(tr.output_ids or []) for t in trajs for tr in t.turns)
    m["tokens_per_s"] = sampled / m["seconds"] if m["seconds"] > 0 else None
    return m, trajs


def write_trajectories(out_dir: Path, step: int, trajs: Sequence[Trajectory]) -> Path:
    path = out_dir / f"step-{step:06d}.jsonl"
    write_jsonl(path, [t.without_token_ids() for t in trajs], append=False)
    return path
