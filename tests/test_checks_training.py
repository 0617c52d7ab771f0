"""The detectors after every validation of a real GRPO run (the tiny model of configs/smoke.yaml, the real store
and questions): their counts and flags in metrics.jsonl, and validation figures and counts in TensorBoard through
the trainer's own logging."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxrl.checks import DETECTORS
from train_helpers import train_config


def _tags(tb_dir: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps: dict[str, list[int]] = {}
    for f in sorted(tb_dir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(f))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            steps.setdefault(tag, []).extend(e.step for e in acc.Scalars(tag))
    return steps


@pytest.mark.slow
def test_checks_run_after_every_validation_and_reach_the_trainer_log(tmp_path: Path, enron_store: Path,
                                                                     questions_path: Path) -> None:
    from inboxrl.training import runlog
    from inboxrl.training.trainer import train

    cfg = train_config(tmp_path, enron_store, questions_path, eval_every=1, validate_at_start=True,
                       report_to=["tensorboard"])
    result = train(cfg)
    assert result.steps == 2

    vals = list(runlog.read(result.run_dir, "validation"))
    assert [v["step"] for v in vals] == [0, 1, 2]
    for v in vals:
        assert 0.0 <= v["accuracy"] <= 1.0 and "judge_accept_rate" in v
        assert set(v["checks"]["detectors"]) == set(DETECTORS) and v["checks"]["n_episodes"] == v["n"] == 2
        for name in DETECTORS:
            assert v[f"checks/{name}"] == v["checks"]["detectors"][name]["count"]
    # step 0 has nothing to compare with; later validations compare with it
    assert "no previous validation" in vals[0]["checks"]["detectors"]["abstention_collapse"]["detail"]
    assert "against the first validation" in vals[2]["checks"]["detectors"]["divergence"]["detail"]
    # the validation log did not swallow the step's training numbers, and made no train record of its own
    train_recs = list(runlog.read(result.run_dir, "train"))
    assert [r["step"] for r in train_recs] == [1, 2]
    assert all("episode/reward_mean" in r and "loss" in r and "eval_accuracy" not in r for r in train_recs)

    tags = _tags(result.run_dir / "tensorboard")
    assert sorted(tags["eval/accuracy"]) == [0, 1, 2]
    for name in DETECTORS:
        assert sorted(tags[f"eval/checks/{name}"]) == [0, 1, 2]
    assert "train/loss" in tags and "train/episode/reward_mean" in tags
