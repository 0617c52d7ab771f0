"""Scoring finished trajectories: judge, rubric, reward and cost, written back into each trajectory.

Evaluation and training both call `score_trajectories`, so that a reward in a training log and a reward in an
evaluation report mean exactly the same thing. All attempted answers of a call go to the judge in ONE
`judge_many` batch: a local judge model then generates them together, and an LLM judge's cache is consulted once.
"I don't know" and missing answers are never sent to the judge (they are not attempts).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from inboxrl.agent.idk import is_dont_know
from inboxrl.judge.base import Judge, Verdict
from inboxrl.scoring.cost import episode_cost
from inboxrl.scoring.reward import RewardConfig, reward, tier
from inboxrl.scoring.rubric import IdResolver, build_rubric
from inboxrl.trajectory import Trajectory

DEFAULT_MAX_TURNS = 10


def needs_judging(traj: Trajectory) -> bool:
    """An answered episode whose answer is a real attempt and whose question has a golden answer."""
    return (traj.stop_reason in (None, "answered") and traj.final_answer is not None
            and traj.golden_answer is not None and not is_dont_know(traj.final_answer))


def score_trajectories(trajs: Sequence[Trajectory], judge: Judge | None, reward_cfg: RewardConfig | None = None,
                       db: str | Path | sqlite3.Connection | None = None,
                       max_turns: int | None = None) -> list[Trajectory]:
    """Fills `rubric`, `reward` and `cost_usd` of every trajectory (in place) and returns them.

    `max_turns` is the turn budget the episodes ran with; when None it is read from `traj.meta["max_turns"]`,
    else the agent's default of 10. `judge` may be None only if no trajectory needs judging (all "I don't know",
    out of turns, format errors...); otherwise a ValueError says so. The verdict is also kept in
    `traj.meta["verdict"]` so that reports can show the judge's reason and which judge decided.
    """
    cfg = reward_cfg or RewardConfig()
    to_judge = [i for i, t in enumerate(trajs) if needs_judging(t)]
    verdicts: dict[int, Verdict] = {}
    if to_judge:
        if judge is None:
            raise ValueError(f"{len(to_judge)} answers need a judge, but no judge was given")
        items = [(trajs[i].question, trajs[i].golden_answer or "", trajs[i].final_answer or "") for i in to_judge]
        got = judge.judge_many(items)
        if len(got) != len(items):
            raise RuntimeError(f"judge {getattr(judge, 'name', judge)!r} returned {len(got)} verdicts "
                               f"for {len(items)} answers")
        verdicts = dict(zip(to_judge, got))

    resolver = IdResolver(db)
    try:
        for i, t in enumerate(trajs):
            mt = max_turns if max_turns is not None else int(t.meta.get("max_turns", DEFAULT_MAX_TURNS))
            v = verdicts.get(i)
            t.rubric = build_rubric(t, v, mt, db=resolver)
            t.reward = reward(t.rubric, cfg)
            t.meta["tier"] = tier(t.rubric)
            t.cost_usd = episode_cost(t)
            if v is not None:
                t.meta["verdict"] = {"accept": v.accept, "reason": v.reason, "judge": v.judge}
    finally:
        resolver.close()
    return list(trajs)
