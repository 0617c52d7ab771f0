"""Reward-hacking detectors over trajectories: shotgun answers, unsupported facts, answer and abstention collapse,
repeated calls, and reward/accuracy divergence in training (docs/detectors.md gives each rule and threshold).

Above scoring, below training and evaluation: both call `run_checks` after each validation or eval run.
"""

from inboxrl.checks.report import DETECTORS, CheckReport, DetectorResult, episode_ids
from inboxrl.checks.run import check_run_dir, run_checks

__all__ = ["DETECTORS", "CheckReport", "DetectorResult", "check_run_dir", "episode_ids", "run_checks"]
