"""Plain progress lines for `inboxrl train` off a terminal (nohup, CI): what is said, and how often.

The clock here is scripted (a deterministic edge case: throttling by wall time); the real CLI's lines are asserted
in test_train_resume, which runs `inboxrl train` as a subprocess with its stderr piped."""

from __future__ import annotations

from inboxrl.training.progress_lines import PlainProgress


class ScriptedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_warm_start_lines_are_throttled_but_the_first_and_last_step_always_said() -> None:
    clock = ScriptedClock()
    p = PlainProgress(every_s=60, clock=clock)
    assert p.line("warm_start", {"demonstrations": 8, "steps": 4}) is None
    said = []
    for step in range(1, 5):
        clock.now += 30  # a step every 30 s: step 2 comes 30 s after step 1's line, step 3 60 s; step 4 is the last
        said.append(p.line("warm_start_step", {"step": step, "total": 4, "loss": 1.0 / step}))
    assert said[0] == "warm start step 1/4: loss 1.000, 0.5 min elapsed, about 1.5 min left"
    assert said[1] is None
    assert said[2] == "warm start step 3/4: loss 0.333, 1.5 min elapsed, about 0.5 min left"
    assert said[3] == "warm start step 4/4: loss 0.250, 2.0 min elapsed"


def test_a_resumed_warm_start_estimates_from_the_steps_it_ran_itself() -> None:
    clock = ScriptedClock()
    p = PlainProgress(every_s=60, clock=clock)
    # No "warm_start" event seen by this process before its first step: it resumed at step 10 of 20.
    clock.now += 10
    first = p.line("warm_start_step", {"step": 11, "total": 20, "loss": 0.5})
    assert first == "warm start step 11/20: loss 0.500, 0.0 min elapsed"  # nothing measured yet: no estimate
    clock.now += 60
    assert p.line("warm_start_step", {"step": 12, "total": 20, "loss": 0.4}) == (
        "warm start step 12/20: loss 0.400, 1.0 min elapsed, about 8.0 min left")


def test_every_grpo_step_is_said_and_missing_figures_are_a_dash() -> None:
    p = PlainProgress()
    line = p.line("step", {"step": 3, "max_steps": 27, "seconds": 190.4, "episode/reward_mean": 0.3456,
                           "episode/accuracy": 0.25, "episode/avg_turns": 3.0, "groups/skipped": 1,
                           "groups/total": 2, "rollout/tokens_per_s": float("nan")})
    assert line == "GRPO step 3/27: reward 0.346  acc 25.0%  turns 3  skipped groups 1/2  – tok/s  190 s/step"
    assert p.line("validation", {"step": 3}) is None  # the CLI prints validations itself, on a terminal too
