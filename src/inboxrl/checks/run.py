"""Running every detector over a set of trajectories, or over a run directory as eval and training write it.

An eval run directory holds `trajectories.jsonl`: its episodes are checked alone. A training run directory holds
`validation/step-N.jsonl`: the last validation is checked, the one before it is the "previous" of the abstention
check, and all earlier ones are the history of the divergence check.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from inboxrl.checks import calls, collapse, divergence, shotgun, unsupported
from inboxrl.checks.report import CheckReport, episode_ids
from inboxrl.scoring.reward import RewardConfig
from inboxrl.trajectory import Trajectory, read_jsonl

EVAL_TRAJECTORIES = "trajectories.jsonl"
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
    def step(p: Path) -> int:
        try:
            return int(p.stem.split("-", 1)[1])
        except (IndexError, ValueError):
            return -1

    return sorted((p for p in (run_dir / VALIDATION_DIR).glob("step-*.jsonl") if step(p) >= 0), key=step)


def check_run_dir(run_dir: str | Path, reward_cfg: RewardConfig | None = None) -> CheckReport:
    """The checks of an eval run directory, or of a training run directory's last validation."""
    d = Path(run_dir)
    if (d / EVAL_TRAJECTORIES).is_file():
        return run_checks(list(read_jsonl(d / EVAL_TRAJECTORIES)), reward_cfg=reward_cfg)
    files = validation_files(d)
    if not files:
        raise CheckError(f"{d}: no {EVAL_TRAJECTORIES} (eval run) and no {VALIDATION_DIR}/step-N.jsonl "
                         f"(training run)")
    sets = [list(read_jsonl(p)) for p in files]
    return run_checks(sets[-1], previous=sets[-2] if len(sets) > 1 else None, history=sets[:-1] or None,
                      reward_cfg=reward_cfg)
