"""`train(cfg)`: GRPO with LoRA through TRL's `GRPOTrainer`, with the rollout in `training.rollout`.

Layout of a run directory:

    RUN_DIR/config.json            the resolved config of the run (checked again on --resume)
    RUN_DIR/data/                  train.jsonl, val.jsonl, split.json: the fixed split, usable by `inboxrl eval`
    RUN_DIR/metrics.jsonl          train / validation / summary records (see training.runlog)
    RUN_DIR/tensorboard/           the same numbers for TensorBoard
    RUN_DIR/rollouts/step-N.jsonl  every training episode of step N (no token ids), for reading answers
    RUN_DIR/validation/step-N.jsonl
    RUN_DIR/plots/*.png            accuracy / turns / hallucination over steps vs the baselines, reward
    RUN_DIR/checkpoints/checkpoint-N   LoRA adapter + optimizer, scheduler, RNG and trainer state (every save_every)
    RUN_DIR/final/                 the final adapter: `local/<base>+RUN_DIR/final` for ask and eval

Group shape: one optimiser step = `questions_per_step` questions x `num_generations` rollouts, generated together
(TRL's generation batch), then split into micro-batches of `micro_batch_size` for the backward passes, with
gradient accumulation over the whole generation batch. Advantages are normalised within each group
(`scale_rewards: group`); groups with equal rewards are counted and masked out of the loss (training.rollout).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxrl.training import runlog
from inboxrl.training.config import TrainConfig, TrainConfigError
from inboxrl.training.ranks import is_main_process

CHECKPOINTS = "checkpoints"
FINAL = "final"
ADAPTER_META = "inboxrl-adapter.json"


class TrainError(RuntimeError):
    """A run that cannot start or continue; one line for the user."""


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    final_adapter: Path | None
    resumed_from: int | None = None
    validations: list[dict[str, Any]] = field(default_factory=list)
    skipped_groups: int = 0
    groups: int = 0
    seconds: float = 0.0


# ---- checkpoints -------------------------------------------------------------------------------------------------
def _checkpoint_complete(d: Path) -> bool:
    """A checkpoint a kill did not cut short: the trainer state (written last) parses, and the adapter and the
    optimizer state are there."""
    state = d / "trainer_state.json"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError):
        return False
    has_adapter = any((d / n).is_file() for n in ("adapter_model.safetensors", "adapter_model.bin",
                                                  "model.safetensors"))
    has_opt = (d / "optimizer.pt").is_file() or any(d.glob("global_step*"))  # torch or DeepSpeed layout
    return has_adapter and has_opt


def checkpoints(run_dir: Path) -> list[tuple[int, Path, bool]]:
    """(step, dir, complete) of every checkpoint, by step."""
    root = run_dir / CHECKPOINTS
    out = []
    if root.is_dir():
        for d in root.iterdir():
            if d.is_dir() and d.name.startswith("checkpoint-"):
                try:
                    step = int(d.name.split("-", 1)[1])
                except ValueError:
                    continue
                out.append((step, d, _checkpoint_complete(d)))
    return sorted(out)


def last_complete_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    done = [(s, d) for s, d, ok in checkpoints(run_dir) if ok]
    return done[-1] if done else None


def _roll_back_to(run_dir: Path, step: int) -> None:
    """Forget everything after `step`: log records, episode files, and checkpoints a kill left half-written."""
    runlog.truncate_after(run_dir, step)
    for sub in ("rollouts", "validation"):
        d = run_dir / sub
        if d.is_dir():
            for f in d.glob("step-*.jsonl"):
                try:
                    if int(f.stem.split("-", 1)[1]) > step:
                        f.unlink()
                except ValueError:
                    pass
    for s, d, ok in checkpoints(run_dir):
        if s > step or not ok:
            shutil.rmtree(d, ignore_errors=True)


# ---- the run -----------------------------------------------------------------------------------------------------
def _world_size() -> int:
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def build_grpo_config(cfg: TrainConfig, total_steps: int) -> Any:
    """TRL's GRPOConfig from ours. One generation batch (all rollouts of a step) per optimiser step."""
    from trl import GRPOConfig

    world = _world_size()
    per_step = cfg.rollouts_per_step
    if per_step % (cfg.micro_batch_size * world):
        raise TrainConfigError(
            f"micro_batch_size: questions_per_step x num_generations = {per_step} rollouts per step must be a "
            f"multiple of micro_batch_size x processes = {cfg.micro_batch_size} x {world}")
    grad_accum = per_step // (cfg.micro_batch_size * world)
    report_to = [r for r in cfg.report_to if r != "none"]
    kwargs: dict[str, Any] = dict(
        output_dir=str(Path(cfg.run_dir) / CHECKPOINTS),
        seed=cfg.seed,
        use_cpu=cfg.device == "cpu",
        bf16=cfg.bf16,
        activation_checkpointing=cfg.gradient_checkpointing,
        per_device_train_batch_size=cfg.micro_batch_size,
        gradient_accumulation_steps=grad_accum,
        steps_per_generation=grad_accum,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_tokens,
        temperature=cfg.temperature,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_steps=total_steps,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        num_iterations=1,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=cfg.save_total_limit,
        report_to=report_to or "none",
        remove_unused_columns=False,
        shuffle_dataset=True,
        disable_tqdm=True,
        dataloader_num_workers=0,
        log_completions=False,
        use_vllm=cfg.vllm.use_vllm,
    )
    if cfg.vllm.use_vllm:
        kwargs.update(vllm_mode=cfg.vllm.mode, vllm_gpu_memory_utilization=cfg.vllm.gpu_memory_utilization,
                      vllm_tensor_parallel_size=cfg.vllm.tensor_parallel_size)
        if cfg.vllm.max_model_length:
            kwargs["vllm_max_model_length"] = cfg.vllm.max_model_length
        if cfg.vllm.server_base_url:
            kwargs["vllm_server_base_url"] = cfg.vllm.server_base_url
    return GRPOConfig(**kwargs)


@contextlib.contextmanager
def _score_completion_tokens_only() -> Iterator[None]:
    """TRL's fused LM head scores only the completion positions on CUDA, but every position (the prompt too) on
    devices without Triton, to keep tile shapes fixed for compilers such as Neuron's. On CPU nothing is compiled,
    and scoring the prompt through a 152k-word head is pure waste (most of a step for a small model), so for the
    duration of a run the CPU takes the compact path as well. Only the positions scored change, not the maths."""
    import trl.trainer.utils as tu

    original = tu._use_triton
    tu._use_triton = lambda device: device.type == "cpu" or original(device)
    try:
        yield
    finally:
        tu._use_triton = original


def _trainer_class(base: type, checkpointing_min_tokens: int | None = None) -> type:
    """TRL's GRPOTrainer, with each micro-batch cut to its own length before the loss (`training.padding`), its LM
    head over the model's own tokens only (`training.model_tokens`), checkpointing by episode length
    (`training.checkpointing`), and our figures in its log records."""
    from inboxrl.training.checkpointing import checkpointing_for
    from inboxrl.training.metric_buffer import MetricBuffer
    from inboxrl.training.model_tokens import model_tokens_only, scored_mask
    from inboxrl.training.padding import trim_padding

    class InboxRLGRPOTrainer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.inboxrl_metrics = MetricBuffer()

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            """Our figures join TRL's in the same record, averaged the same way, for every reporter."""
            mode = "train" if self.model.training else "eval"
            ours = self.inboxrl_metrics.drain(mode)
            super().log({**logs, **({f"eval_{k}": v for k, v in ours.items()} if mode == "eval" else ours)},
                        start_time)

        def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> Any:
            from inboxrl.training.memory import STAGES

            with STAGES.stage("loss"):  # forward and backward of one micro-batch (the rollout nests inside)
                return super().training_step(model, inputs, num_items_in_batch)

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            inputs = trim_padding(inputs)
            scored = scored_mask(inputs)
            n_tokens = inputs["prompt_ids"].size(1) + inputs["completion_ids"].size(1)
            with model_tokens_only(model, scored) if scored is not None else contextlib.nullcontext(), \
                    checkpointing_for(model, n_tokens, checkpointing_min_tokens):
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)

    return InboxRLGRPOTrainer


def _check_run_dir(cfg: TrainConfig, run_dir: Path, resume: bool) -> tuple[int, Path] | None:
    saved = run_dir / "config.json"
    last = last_complete_checkpoint(run_dir)
    if resume:
        if saved.is_file():
            old = json.loads(saved.read_text())
            for key in ("model", "num_generations", "questions_per_step", "data", "lora", "seed"):
                if json.dumps(old.get(key), sort_keys=True) != json.dumps(
                        json.loads(cfg.model_dump_json()).get(key), sort_keys=True):
                    raise TrainError(f"--resume: {key} differs from the run in {run_dir}; start a new run_dir "
                                     f"instead of resuming with a different {key}")
        return last
    if last is not None or (run_dir / FINAL).exists():
        raise TrainError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another run_dir")
    return None


def write_split(cfg: TrainConfig) -> Any:
    """Writes the run's fixed split to RUN_DIR/data (train.jsonl, val.jsonl, split.json) and returns it, so that
    baselines can be evaluated on the validation questions before any training."""
    from inboxrl.training.data import load_split

    split = load_split(cfg.data, cfg.agent_config())
    split.write(Path(cfg.run_dir) / "data")
    return split


def train(cfg: TrainConfig, *, resume: bool = False, on_event: Callable[[str, dict[str, Any]], None] | None = None,
          rollout_wrapper: Callable[[Any], Any] | None = None) -> TrainResult:
    """Runs (or resumes) a GRPO run. `on_event(kind, data)` reports progress to a CLI ("setup", "step",
    "validation", "saved", "done"). `rollout_wrapper` may wrap the rollout function (tests use it to script
    rewards for a deterministic edge case)."""
    t_start = time.time()
    emit = on_event or (lambda kind, data: None)
    run_dir = Path(cfg.run_dir)
    resume_from = _check_run_dir(cfg, run_dir, resume)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_main_process():  # one writer of the run directory, whatever the number of processes
        if resume_from is not None:
            _roll_back_to(run_dir, resume_from[0])
        elif resume:
            _roll_back_to(run_dir, 0)  # --resume with nothing saved yet: a fresh start, minus the killed run's log
            if (run_dir / runlog.METRICS_FILE).exists():
                (run_dir / runlog.METRICS_FILE).unlink()
        (run_dir / "config.json").write_text(cfg.model_dump_json(indent=1))

    from inboxrl.training.memory import tune_allocator

    tune_allocator()  # at most 2 arenas, each holding freed memory of its own (training.memory)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)

    # Data and the fixed split.
    split = write_split(cfg)
    if not split.train:
        raise TrainError(f"no training questions left after grounded-only and the split "
                         f"(loaded {split.n_loaded}, grounded {split.n_grounded})")
    total_steps = cfg.total_steps(len(split.train))
    emit("setup", {"train": len(split.train), "val": len(split.val), "grounded": split.n_grounded,
                   "regrounded": split.regrounded, "frozen_problems": split.frozen_problems,
                   "steps": total_steps, "resume_from": resume_from[0] if resume_from else None,
                   "precision": cfg.precision()})

    # Model, tokenizer, judge.
    from inboxrl.judge.registry import load_judge
    from inboxrl.training.base_model import load_base

    model, tok, base_path, base_spec = load_base(cfg.model, dtype=cfg.base_dtype)
    try:
        judge = load_judge(cfg.judge)
    except Exception as e:  # noqa: BLE001 - any loader failure becomes one line
        raise TrainError(f"judge: cannot load {cfg.judge!r}: {str(e).splitlines()[0] if str(e) else e}") from None

    # The rollout and the trainer.
    from datasets import Dataset
    from peft import LoraConfig
    from trl import GRPOTrainer

    from inboxrl.training.callbacks import InboxRLCallback, tensorboard_to
    from inboxrl.training.rollout import EpisodeRollout, inboxrl_reward

    policy_name = f"{base_spec}+{run_dir / FINAL}"
    rollout = EpisodeRollout(
        split.train, cfg.data.db, cfg.agent_config().model_copy(update={"seed": None}), judge, cfg.reward, tok,
        num_generations=cfg.num_generations, max_completion_tokens=cfg.max_completion_tokens,
        batch_size=cfg.rollout_batch_size, skip_equal_groups=cfg.skip_equal_groups,
        return_logprobs=cfg.vllm.use_vllm, trajectories_dir=run_dir / "rollouts", model_name=policy_name,
        rollout_dtype=cfg.rollout_dtype)
    rollout_fn = rollout_wrapper(rollout) if rollout_wrapper else rollout

    grpo_args = build_grpo_config(cfg, total_steps)
    peft_cfg = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
    from inboxrl.training.warm_start import prepare_policy

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    # TRL 1.16 (and PEFT, in the warm start) read a property transformers 5 deprecated, once per rollout or step:
    # noise in every step's output.
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)

    model, peft_for_trainer = prepare_policy(cfg, model, tok, split.train, judge, peft_cfg, run_dir,
                                             resuming_checkpoint=resume_from is not None, emit=emit)
    dataset = Dataset.from_dict({"prompt": [q.id for q in split.train]})
    val_cfg = cfg.agent_config(temperature=cfg.agent.temperature)
    callback = InboxRLCallback(cfg, run_dir, split.val, judge, tok, val_cfg, rollout, policy_name=policy_name,
                               emit=emit)
    trainer = _trainer_class(GRPOTrainer, cfg.checkpointing_min_tokens)(
        model=model, reward_funcs=[inboxrl_reward], args=grpo_args, train_dataset=dataset, processing_class=tok,
        peft_config=peft_for_trainer, rollout_func=rollout_fn, callbacks=[callback])
    callback.trainer = trainer
    tensorboard_to(trainer, run_dir / "tensorboard", resume_from[0] if resume_from else None)
    if cfg.vllm.use_vllm:
        from inboxrl.training.vllm_backend import vllm_backend_factory

        rollout.make_backend = vllm_backend_factory(trainer, policy_name)
        rollout.generation_needs_weights = False
        callback.val_make_backend = rollout.make_backend
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints raw log dicts; our callback reports progress instead

    with _score_completion_tokens_only():
        trainer.train(resume_from_checkpoint=str(resume_from[1]) if resume_from else None)
    steps = int(trainer.state.global_step)

    # The after-point of the curve, if the last step was not a validation step.
    if cfg.validate_at_end:
        callback.validate_if_needed(steps, final=True)

    final = run_dir / FINAL
    if trainer.accelerator.is_main_process:
        trainer.save_model(str(final))
        tok.save_pretrained(str(final))
        (final / ADAPTER_META).write_text(json.dumps({
            "base_spec": base_spec, "base_path": base_path, "steps": steps, "config": cfg.model_dump(mode="json"),
            "model_spec": f"{base_spec}+{final}"}, indent=1))
        callback.write_plots()
    result = TrainResult(run_dir=run_dir, steps=steps, final_adapter=final,
                         resumed_from=resume_from[0] if resume_from else None,
                         validations=list(runlog.read(run_dir, "validation")),
                         skipped_groups=rollout.log.skipped_groups_total, groups=rollout.log.groups_total,
                         seconds=time.time() - t_start)
    if trainer.accelerator.is_main_process:
        runlog.append(run_dir, {"kind": "summary", "step": steps, "seconds": result.seconds,
                                "skipped_groups": result.skipped_groups, "groups": result.groups,
                                "resumed_from": result.resumed_from, "final_adapter": str(final),
                                "precision": cfg.precision()})
    emit("done", {"steps": steps, "final": str(final), "seconds": result.seconds})
    return result
