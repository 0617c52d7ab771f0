"""The trainer callback: logs, validation, plots and progress events of a run.

One callback rather than several because they share state: the validation at step K must write to the same JSONL
as the training numbers of step K, and the plots are redrawn from that JSONL after each validation. TensorBoard and
W&B get the validation figures and detector counts through the trainer's own `log`, next to TRL's curves.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from inboxrl.agent.config import AgentConfig
from inboxrl.questions.schema import Question
from inboxrl.training import runlog
from inboxrl.training.config import TrainConfig
from inboxrl.training.metric_buffer import buffer_of


def peak_rss_gb() -> float:
    """The process's peak resident memory so far: what a machine needs to run this config (the CPU demo came
    close to a 24 GB machine's limit; docs/cpu-training.md). Kept across the stage resets of `training.memory`."""
    from inboxrl.training.memory import peak_gb

    return peak_gb()


def anon_rss_gb() -> float:
    """The process's resident memory now, without file pages (Linux `RssAnon`). The peak above counts the mail
    store's read-only mmap too, pages the kernel can drop under pressure; this
    is the part it cannot. NaN where /proc is missing."""
    from inboxrl.training.memory import anon_gb

    return anon_gb()


def judge_accept_rate(trajs: Sequence[Any]) -> float:
    """Share of the answers sent to the judge that it accepted (NaN when none was)."""
    verdicts = [t.meta["verdict"] for t in trajs if isinstance(t.meta.get("verdict"), dict)]
    return sum(bool(v.get("accept")) for v in verdicts) / len(verdicts) if verdicts else math.nan


def tensorboard_to(trainer: Any, log_dir: Path, resume_step: int | None = None) -> None:
    """Points transformers' TensorBoard reporter at RUN_DIR/tensorboard (its default is inside the checkpoints
    folder), unless TENSORBOARD_LOGGING_DIR already chose a folder. On a resume it gets a writer that drops the
    events a killed run wrote after the checkpoint resumed from, as the log and episode files are rolled back."""
    from transformers.integrations import TensorBoardCallback

    for cb in trainer.callback_handler.callbacks:
        if not isinstance(cb, TensorBoardCallback):
            continue
        if cb.logging_dir is None:
            cb.logging_dir = str(log_dir)
        if resume_step and cb.tb_writer is None and trainer.accelerator.is_main_process:
            from torch.utils.tensorboard import SummaryWriter

            cb.tb_writer = SummaryWriter(log_dir=cb.logging_dir, purge_step=resume_step + 1)


class InboxRLCallback(TrainerCallback):
    def __init__(self, cfg: TrainConfig, run_dir: Path, val_questions: Sequence[Question], judge: Any,
                 tokenizer: Any, val_cfg: AgentConfig, rollout: Any, *, policy_name: str,
                 emit: Callable[[str, dict[str, Any]], None]):
        self.cfg = cfg
        self.run_dir = run_dir
        self.val_questions = list(val_questions)
        self.judge = judge
        self.tokenizer = tokenizer
        self.val_cfg = val_cfg
        self.rollout = rollout
        self.policy_name = policy_name
        self.emit = emit
        self.trainer: Any = None
        # Validation runs the trained weights through the project's local backend, as `inboxrl eval` would (fp32, or
        # a `validation_dtype` copy), whatever the rollouts sample with; the vLLM setup replaces it with its own.
        from inboxrl.training.rollout import default_backend_factory

        self.val_make_backend: Any = default_backend_factory(policy_name, cfg.validation_dtype)
        self._logging_validation = False
        self._step_started = time.perf_counter()
        self._step_cpu = time.process_time()
        self._train_started = time.perf_counter()

    # ---- helpers ---------------------------------------------------------------------------------------------
    def _main(self) -> bool:
        return self.trainer is None or bool(self.trainer.accelerator.is_main_process)

    def _log_validation(self, m: dict[str, Any]) -> None:
        """Validation figures and detector counts as `eval_<key>` (TensorBoard and W&B show them as eval/accuracy,
        eval/checks/shotgun...). Through `transformers.Trainer.log`, not GRPOTrainer's override: that one would also
        flush this step's training-metric buffer into the validation record."""
        from transformers import Trainer

        values = {f"eval_{k}": float(v) for k, v in m.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        control = self.trainer.control
        should_log = control.should_log  # on_log clears it: the step's own training log must still happen
        self._logging_validation = True
        try:
            Trainer.log(self.trainer, values)
        finally:
            self._logging_validation = False
            control.should_log = self.trainer.control.should_log = should_log

    def _validated_steps(self) -> set[int]:
        return {int(r.get("step", -1)) for r in runlog.read(self.run_dir, "validation")}

    # ---- validation ------------------------------------------------------------------------------------------
    def validate(self, step: int) -> dict[str, Any] | None:
        if not self.val_questions or self.trainer is None:
            return None
        from inboxrl.training.validation import write_trajectories

        tr = self.trainer
        model_wrapped = getattr(tr, "model_wrapped", None) or tr.model
        kw = {"batch_size": self.cfg.rollout_batch_size or self.cfg.rollouts_per_step,
              "make_backend": self.val_make_backend, "accelerator": tr.accelerator,
              "model_name": self.policy_name}
        args = (self.tokenizer, self.val_questions, self.cfg.data.db, self.val_cfg, self.judge, self.cfg.reward)
        from inboxrl.training.memory import STAGES, peak_gb

        with STAGES.stage("validation"):
            m, trajs = self._run_validation(tr, model_wrapped, args, kw)
        m["memory/validation_peak_gb"] = STAGES.pop("validation")
        m["memory/peak_rss_gb"] = peak_gb()
        if self._main():
            from inboxrl.checks import check_run_dir

            write_trajectories(self.run_dir / "validation", step, trajs)
            m["judge_accept_rate"] = judge_accept_rate(trajs)
            report = check_run_dir(self.run_dir, self.cfg.reward)  # this validation against the earlier ones
            m.update({f"checks/{k}": n for k, n in report.counts().items()})
            runlog.append(self.run_dir, {"kind": "validation", "step": step, **m, "checks": report.model_dump()})
            self._log_validation(m)
            self.write_plots()
        self.emit("validation", {"step": step, **m})
        return m

    def _run_validation(self, tr: Any, model_wrapped: Any, args: tuple[Any, ...],
                        kw: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
        from trl.models.utils import unwrap_model_for_generation

        from inboxrl.training.validation import run_validation

        if getattr(self.rollout, "generation_needs_weights", True):
            with unwrap_model_for_generation(model_wrapped, tr.accelerator,
                                             gather_deepspeed3_params=tr.args.ds3_gather_for_generation) as model:
                m, trajs = run_validation(model, *args, **kw)
        else:
            # vLLM holds the weights of the last rollout, from before this step's update: bring it up to date.
            tr.vllm_generation.sync_weights()
            tr._last_loaded_step = tr.state.global_step
            m, trajs = run_validation(tr.model, *args, **kw)
        return m, trajs

    def validate_if_needed(self, step: int, final: bool = False) -> None:
        if step in self._validated_steps():
            return
        if final or step % self.cfg.eval_every == 0:
            self.validate(step)

    def write_plots(self) -> list[Path]:
        from inboxrl.evaluation.plots import BaselineError, load_baselines, plot_run

        try:
            baselines = load_baselines(self.cfg.baselines)
        except BaselineError as e:
            self.emit("warning", {"message": f"baselines not drawn: {e}"})
            baselines = []
        records = list(runlog.read(self.run_dir))
        return plot_run(records, self.run_dir / "plots", baselines, title=Path(self.run_dir).name)

    # ---- trainer events --------------------------------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._train_started = time.perf_counter()
        if state.global_step == 0 and self.cfg.validate_at_start:
            self.validate_if_needed(0, final=True)
        self._step_started = time.perf_counter()
        self._step_cpu = time.process_time()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if not logs or not self._main() or self._logging_validation:  # validation has its own record
            return
        kind = "trainer_summary" if "train_runtime" in logs else "train"
        runlog.append(self.run_dir, {"kind": kind, "step": state.global_step, **logs})

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        step = state.global_step
        last = self.rollout.log.steps[-1] if getattr(self.rollout, "log", None) and self.rollout.log.steps else {}
        wall, cpu = time.perf_counter() - self._step_started, time.process_time() - self._step_cpu
        buf = buffer_of(self.trainer)
        if buf is not None:
            # Logged with this step's record. CPU seconds next to wall seconds: the machine may be shared.
            from inboxrl.training.memory import STAGES

            # this step's rollout and loss peaks (training.memory) next to the lifetime peak
            buf.add("train", {"time/step_wall_s": wall, "time/step_cpu_s": cpu, "memory/peak_rss_gb": peak_rss_gb(),
                              "memory/anon_rss_gb": anon_rss_gb(), **STAGES.metrics()})
        self.emit("step", {"step": step, "max_steps": state.max_steps, "seconds": wall, "cpu_seconds": cpu,
                           **last})
        if step % self.cfg.eval_every == 0:
            self.validate_if_needed(step)
        budget = self.cfg.max_minutes
        if budget is not None and time.perf_counter() - self._train_started >= budget * 60 \
                and step < state.max_steps:
            control.should_training_stop = True
            control.should_save = True  # a resumable checkpoint at the step where the budget ran out
            self.emit("warning", {"message": f"time budget of {budget:g} min used up after step {step} of "
                                             f"{state.max_steps}; stopping (resume to continue)"})
            runlog.append(self.run_dir, {"kind": "time_budget", "step": step, "max_minutes": budget})
        self._step_started = time.perf_counter()
        self._step_cpu = time.process_time()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.emit("saved", {"step": state.global_step,
                            "dir": str(Path(args.output_dir) / f"checkpoint-{state.global_step}")})
