"""Running every detector over a set of trajectories, or over a run directory as eval and training write it.

An eval run directory holds `trajectories.jsonl`: its episodes are checked alone. A training run directory holds
`validation/step-N.jsonl`: the last validation is checked, the one before it is the "previous" of the abstention
check, and all earlier ones are the history of the divergence check. An exported run (benchmarks/export_run.py)
holds the same files gzipped (`.jsonl.gz`), and is checked the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inboxrl.checks import calls, collapse, divergence, shotgun, unsupported
from inboxrl.checks.report import CheckReport, episode_ids
from inboxrl.scoring.reward import RewardConfig
from inboxrl.trajectory import EVAL_TRAJECTORIES, Trajectory, eval_trajectories, read_jsonl, step_files

VALIDATION_DIR = "validation"


class CheckError(ValueError):
    """A run directory with nothing to check; one line for the user."""


def run_checks(trajectories: Sequence[Trajectory], previous: Sequence[Trajectory] | None = None,
               history: Sequence[Sequence[Trajectory]] | None = None, *,
               reward_cfg: RewardConfig | None = None) -> CheckReport:
    """Every detector over `trajectories` (one file's episodes, in file order).

    `previous`: the validation before this one (abstention collapse); `history`: earlier validations, oldest first
    (divergence); `reward_cfg`: the weights the rewards were computed with (divergence names the term that rose).
    """
    trajs = list(trajectories)
    ids = episode_ids(trajs)
    found = {
        "shotgun": shotgun.detect(trajs, ids),
        "unsupported": unsupported.detect(trajs, ids),
        "answer_collapse": collapse.detect_answer_collapse(trajs, ids),
        "abstention_collapse": collapse.detect_abstention_collapse(trajs, ids, previous),
        "repeated_calls": calls.detect(trajs, ids),
        "divergence": divergence.detect(trajs, ids, history, reward_cfg),
    }
    return CheckReport(n_episodes=len(trajs), detectors=found)


def validation_files(run_dir: Path) -> list[Path]:
    """A training run's validation files, by step."""
    return [p for _, p in step_files(run_dir / VALIDATION_DIR)]


def check_run_dir(run_dir: str | Path, reward_cfg: RewardConfig | None = None) -> CheckReport:
    """The checks of an eval run directory, or of a training run directory's last validation."""
    d = Path(run_dir)
    eval_file = eval_trajectories(d)
    if eval_file.is_file():
        return run_checks(list(read_jsonl(eval_file)), reward_cfg=reward_cfg)
    files = validation_files(d)
    if not files:
        raise CheckError(f"{d}: no {EVAL_TRAJECTORIES} (eval run) and no {VALIDATION_DIR}/step-N.jsonl "
                         f"(training run)")
    sets = [list(read_jsonl(p)) for p in files]
    return run_checks(sets[-1], previous=sets[-2] if len(sets) > 1 else None, history=sets[:-1] or None,
                      reward_cfg=reward_cfg)
