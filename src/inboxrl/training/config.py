"""The training config: one typed file (YAML or TOML) that says everything a GRPO run does.

A run must be reproducible from its config alone, so the file carries the base model, LoRA, optimisation, the group
shape, the episode harness (the same `AgentConfig` that `inboxrl eval` uses), the judge and reward, the data and its
split, and the evaluation and checkpoint intervals. Unknown keys are errors: a typo such as `learning_rte` would
otherwise silently train with the default. Every validation error comes out as one line naming the field.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from inboxrl.agent.config import AgentConfig
from inboxrl.configfile import ConfigFileError, apply_overrides, read_config_file, validation_message
from inboxrl.scoring.reward import RewardConfig


class TrainConfigError(ConfigFileError):
    """A config file that cannot be used; the message is one line naming the file and the field. A ConfigFileError,
    so code that reads any part's config catches it like the others."""


_AUTO_PRECISION = ("bf16", "base_dtype", "rollout_dtype", "validation_dtype")


class _Strict(BaseModel):
    # NaN passes no bound check, and pydantic then names the last bound it tried ("less than 1"): say what it is.
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class LoraSettings(_Strict):
    rank: int = Field(16, ge=1, le=1024)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    # All linear layers of a Qwen2/Llama block. Attention-only adapters learn tool formats more slowly.
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if not v or any(not m.strip() for m in v):
            raise ValueError("must name at least one module, with no empty names")
        return v


class VllmSettings(_Strict):
    """Generation through vLLM on GPUs. Off on CPU, where vLLM does not run."""

    use_vllm: bool = False
    mode: Literal["colocate", "server"] = "colocate"
    server_base_url: str | None = None  # server mode: e.g. http://10.0.0.5:8000 (started with `trl vllm-serve`)
    gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_length: int | None = Field(None, ge=256)


class DataSettings(_Strict):
    """Where questions come from and how they split. The split is a pure function of each question's id and
    `split_salt`, so a question is on the same side in every run, whatever the store or the other questions."""

    db: str
    train_questions: str
    # None: validation questions come from the train file through the fixed split below.
    val_questions: str | None = None
    grounded_only: bool = True  # keep only questions whose source mails are all in the store
    # A frozen split (questions.split.FrozenSplit, e.g. src/inboxrl/data/kaminski-split.json): validation and test
    # are its ids, checked against its sha256. None: drawn by hash (val_fraction, test_fraction, split_salt).
    split_file: str | None = None
    # Without split_file: the shares of questions held out for validation and test (drawn per group of linked
    # questions). With it or without: a question whose own draw falls in these shares never trains, so the training
    # pool stays that of the runs before the frozen split.
    val_fraction: float = Field(0.3, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.0, ge=0.0, lt=1.0)
    split_salt: str = "inboxrl-split-v1"
    # Training questions whose cited ids are missing from the store may be re-grounded by answer evidence
    # (training.evidence): a mail found by a search from the question's words that contains every content word of
    # the golden answer (reground_min_coverage) becomes the source. Validation questions never are.
    reground_train: bool = False
    reground_min_coverage: float = Field(1.0, gt=0.0, le=1.0)
    train_limit: int | None = Field(None, ge=1)
    val_limit: int | None = Field(None, ge=1)


class WarmStartSettings(_Strict):
    """A supervised warm start on golden demonstrations of the training questions, before GRPO
    (training.warm_start). Off by default: GRPO alone is the method; this is for policies that are rarely right."""

    enabled: bool = False
    epochs: float = Field(2.0, gt=0.0, le=50.0)
    learning_rate: float = Field(1e-4, gt=0.0, lt=1.0)
    # "linear" decays the rate to zero over the planned steps (epochs x demonstrations / accumulation): the end point
    # is then not the noise of the last batches. Needs a fixed length: a run cut by max_minutes ends mid-decay.
    lr_scheduler: Literal["constant", "linear"] = "constant"
    accumulation: int = Field(4, ge=1)  # demonstrations per optimiser step
    # Share of questions that also get a "read a hit that is not the source, say I don't know" demonstration.
    dont_know_fraction: float = Field(0.25, ge=0.0, le=1.0)
    # Which search the negative reads from (training.demonstrations): one that missed the source, or the first
    # that found it among other mail, which the question's correct demonstration then shares.
    negatives: Literal["other_search", "same_search"] = "other_search"
    max_minutes: float | None = Field(None, gt=0.0)  # its own budget, apart from the GRPO loop's max_minutes
    save_every: int = Field(10, ge=0)  # optimiser steps between resumable snapshots (0: none; the end is saved)
    # None: as the run's gradient_checkpointing. Off, the warm start's short demonstrations (~1,500 tokens) run
    # 1.4x faster at a higher peak; GRPO's long episodes keep the run's setting.
    gradient_checkpointing: bool | None = None


class TrainConfig(_Strict):
    run_dir: str = "runs/train"
    seed: int = 0
    # A model spec as `inboxrl eval` takes it (`local/qwen2.5-coder-0.5b`, `local/<dir or hub id>`), or
    # `tiny/qwen2`: a 2-layer random model built locally for smoke tests.
    model: str = "local/qwen2.5-coder-0.5b"
    lora: LoraSettings = Field(default_factory=LoraSettings)

    learning_rate: float = Field(1e-5, gt=0.0, lt=1.0)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    # GRPO: N rollouts per question (a group), M questions per optimiser step.
    num_generations: int = Field(4, ge=2)
    questions_per_step: int = Field(2, ge=1)
    # Exactly one of the two: a number of optimiser steps, or passes over the training questions.
    max_steps: int | None = Field(None, ge=1)
    epochs: float | None = Field(None, gt=0.0)
    # A wall-clock budget for the training loop of this process (validation at step 0 included): the run stops
    # after the first step that ends past it, saves a checkpoint and the final adapter. A resumed run gets a
    # fresh budget. On a shared CPU the number of steps is the unknown, not the time the user can spare.
    max_minutes: float | None = Field(None, gt=0.0)
    # Sequences per forward/backward pass. The whole group batch is generated at once and then split into
    # micro-batches, so this bounds memory (logits over a 152k vocabulary are the big tensor), not the group shape.
    micro_batch_size: int = Field(1, ge=1)
    beta: float = Field(0.0, ge=0.0)  # KL to the base model; 0 keeps no reference model in memory
    epsilon: float = Field(0.2, gt=0.0, lt=1.0)
    loss_type: Literal["dapo", "grpo", "dr_grpo", "bnpo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    # Groups whose rewards are all equal carry no signal: their tokens leave the loss (and they are counted).
    skip_equal_groups: bool = True

    # The episode: the same harness as `inboxrl eval` (`inboxrl eval --config <this file>` reads this section).
    # max_turns and max_tokens_per_turn, when set, override the agent section's.
    agent: AgentConfig = Field(default_factory=AgentConfig)
    max_turns: int | None = Field(None, ge=1)
    max_tokens_per_turn: int | None = Field(None, ge=8)
    # Cap on one whole episode's completion (sampled + tool tokens) as the trainer sees it.
    max_completion_tokens: int = Field(4096, ge=16)
    temperature: float = Field(1.0, gt=0.0, le=2.0)  # rollout sampling; the trainer scores with the same value
    rollout_batch_size: int | None = Field(None, ge=1)  # episodes in lock-step; default: the whole step's rollouts
    # Rollouts on a private copy of the policy in bfloat16 or int8 (LoRA merged): faster sampling on CPU, at the
    # price of a small mismatch between the sampling and the trained policy. None: sample with the trained model.
    # "auto": bfloat16 where this machine has native bf16, else the trained float32 model (models.hardware).
    rollout_dtype: Literal["bfloat16", "int8"] | None = None
    # Validation on such a copy too. None keeps fp32, like `inboxrl eval`; with a dtype, the same numbers come from
    # `INBOXRL_DTYPE=<dtype> inboxrl eval`. Before and after are always measured alike, so the comparison holds.
    # "auto" as above (`INBOXRL_DTYPE=auto` resolves the same way for the baselines).
    validation_dtype: Literal["bfloat16", "int8"] | None = None

    judge: str = "lexical"
    reward: RewardConfig = Field(default_factory=RewardConfig)
    data: DataSettings

    eval_every: int = Field(10, ge=1)  # validation every K steps (and at step 0 when validate_at_start)
    validate_at_start: bool = True
    validate_at_end: bool = True  # the "after" point of the curve, when the last step is not a validation step
    save_every: int = Field(10, ge=1)  # LoRA adapter + optimizer state every K steps
    save_total_limit: int | None = Field(None, ge=1)
    logging_steps: int = Field(1, ge=1)
    report_to: list[Literal["tensorboard", "wandb", "none"]] = ["tensorboard"]  # pydantic copies list defaults
    baselines: list[str] = Field(default_factory=list)  # `inboxrl eval` output dirs drawn as lines in the plots

    threads: int | None = Field(None, ge=1)  # torch threads; None leaves torch's default
    device: Literal["cpu", "auto"] = "cpu"
    # bf16 autocast for the trainer's forward/backward (GPUs; on CPUs with AVX512-BF16 or AMX it is faster too;
    # on an AVX2-only CPU it is slower than float32). "auto" turns it on only where bf16 is native.
    bf16: bool = False
    # The frozen base's dtype while training; the LoRA weights stay float32 (PEFT). Under bf16 autocast a float32
    # base is cast to bf16 at every forward anyway: a bf16 base skips those casts and their cache and halves the
    # weights, and the rollouts already sample from bf16 weights. "auto": bfloat16 where bf16 is native.
    base_dtype: Literal["float32", "bfloat16"] = "float32"
    gradient_checkpointing: bool = False
    # With checkpointing on, episodes of at most this many tokens keep their activations (training.checkpointing):
    # faster, at the memory their activations take. None: every episode is checkpointed.
    checkpointing_min_tokens: int | None = Field(None, ge=1)
    vllm: VllmSettings = Field(default_factory=VllmSettings)
    warm_start: WarmStartSettings = Field(default_factory=WarmStartSettings)

    @model_validator(mode="before")
    @classmethod
    def _resolve_auto(cls, data: Any) -> Any:
        """`auto` precision settings become what this machine runs fastest, before validation, so the run's
        config.json records what actually ran (a bf16 run on a CPU without native bf16 is ~3x slower)."""
        if not isinstance(data, dict) or "auto" not in (data.get(k) for k in _AUTO_PRECISION):
            return data
        from inboxrl.models.hardware import bf16_native, resolve_dtype

        device = str(data.get("device", "cpu"))
        data = dict(data)
        if data.get("bf16") == "auto":
            data["bf16"] = bf16_native(device)
        for key in ("rollout_dtype", "validation_dtype"):
            data[key] = resolve_dtype(data.get(key), device)
        if data.get("base_dtype") == "auto":
            data["base_dtype"] = resolve_dtype("auto", device) or "float32"
        return data

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if (self.max_steps is None) == (self.epochs is None):
            raise ValueError("set exactly one of max_steps and epochs")
        if self.vllm.use_vllm and self.device == "cpu":
            raise ValueError("vllm.use_vllm needs GPUs: set device: auto")
        if self.vllm.use_vllm and self.vllm.mode == "colocate" and self.vllm.tensor_parallel_size != 1:
            raise ValueError("vllm.tensor_parallel_size must be 1 in colocate mode (each rank runs its own "
                             "episodes); use vllm.mode: server for a tensor-parallel engine")
        if self.vllm.use_vllm and self.vllm.mode == "server" and not self.vllm.server_base_url:
            raise ValueError("vllm.mode 'server' needs vllm.server_base_url")
        if self.max_completion_tokens < self.turn_tokens:
            raise ValueError("max_completion_tokens must be at least max_tokens_per_turn")
        if "none" in self.report_to and len(self.report_to) > 1:
            raise ValueError("report_to: 'none' cannot be combined with other reporters")
        if self.data.val_fraction + self.data.test_fraction >= 1.0:
            raise ValueError("data.val_fraction + data.test_fraction must leave a share for training (below 1)")
        return self

    # ---- derived values -------------------------------------------------------------------------------------
    @property
    def rollouts_per_step(self) -> int:
        return self.num_generations * self.questions_per_step

    @property
    def turns(self) -> int:
        return self.max_turns if self.max_turns is not None else self.agent.max_turns

    @property
    def turn_tokens(self) -> int:
        return self.max_tokens_per_turn if self.max_tokens_per_turn is not None else self.agent.max_tokens_per_turn

    def precision(self) -> str:
        """One line for the console and the run log: what computes in which dtype, and what the hardware has. A
        bf16 setting on a CPU without native bf16 is called out: it runs, about 3x slower than float32."""
        from inboxrl.models.hardware import bf16_native, describe

        line = (f"bf16 autocast {'on' if self.bf16 else 'off'}, base {self.base_dtype}, "
                f"rollouts {self.rollout_dtype or 'float32'}, "
                f"validation {self.validation_dtype or 'float32'} ({describe()})")
        wants_bf16 = self.bf16 or "bfloat16" in (self.base_dtype, self.rollout_dtype, self.validation_dtype)
        if self.device == "cpu" and wants_bf16 and not bf16_native("cpu"):
            line += "; bf16 is emulated here and slower than float32: consider `auto`"
        return line

    def agent_config(self, *, temperature: float | None = None) -> AgentConfig:
        """The harness of an episode: the agent section with this run's turn and token budgets. Rollouts sample
        at `temperature`; validation passes the agent section's own temperature (greedy by default), as eval."""
        return self.agent.model_copy(update={
            "max_turns": self.turns,
            "max_tokens_per_turn": self.turn_tokens,
            "temperature": self.temperature if temperature is None else temperature,
            "keep_token_ids": True,
        })

    def total_steps(self, n_train_questions: int) -> int:
        if self.max_steps is not None:
            return self.max_steps
        assert self.epochs is not None
        return max(1, math.ceil(self.epochs * n_train_questions / self.questions_per_step))

    def resolved(self, base: Path) -> TrainConfig:
        """Relative paths in the file are relative to the current directory, as on a command line; `$VARS` and
        `~` are expanded so shipped configs can say `$INBOXRL_SHARED/data/...`."""
        env = {**os.environ}
        env.setdefault("INBOXRL_SHARED", str(default_shared_dir()))

        def fix(p: str | None) -> str | None:
            if p is None:
                return None
            p = os.path.expanduser(_expand(p, env))
            return str(Path(p) if Path(p).is_absolute() else (base / p))

        data = self.data.model_copy(update={
            "db": fix(self.data.db), "train_questions": fix(self.data.train_questions),
            "val_questions": fix(self.data.val_questions), "split_file": fix(self.data.split_file)})
        return self.model_copy(update={"run_dir": fix(self.run_dir), "data": data,
                                       "baselines": [fix(b) for b in self.baselines]})

    def fingerprint(self) -> str:
        return hashlib.sha1(self.model_dump_json().encode()).hexdigest()[:12]

    # ---- loading --------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """The whole file (sections included: `agent:`, `reward:`, ...) with `a.b=value` overrides applied before
        validation, so a bad override is reported like a bad setting in the file."""
        try:
            data = read_config_file(path)
        except ConfigFileError as e:
            raise TrainConfigError(str(e)) from e
        _set_dotted(data, overrides or {})
        return cls.from_dict(data, source=str(Path(path)))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise TrainConfigError(validation_message(e, str(source))) from None


def default_shared_dir() -> Path:
    """`$INBOXRL_SHARED`, else `<repo>/../shared` (the repo holding this source tree)."""
    env = os.environ.get("INBOXRL_SHARED")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3].parent / "shared"


def _expand(p: str, env: dict[str, str]) -> str:
    """`$VAR` and `${VAR}` from `env`; unknown variables stay as written (and the missing path is reported)."""
    import string

    return string.Template(p).safe_substitute(env)


def _set_dotted(data: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Applies `a.b=value` overrides from the command line onto the loaded mapping."""
    try:
        apply_overrides(data, overrides)
    except ConfigFileError as e:
        raise TrainConfigError(str(e)) from e
