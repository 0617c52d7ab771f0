"""Helpers shared by the training tests: real questions grounded in the real store, the tiny model, a spy backend."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from inboxrl.questions.schema import Question


def grounded(db: Path, questions_path: Path, n: int | None = None) -> list[Question]:
    from inboxrl.questions.grounding import grounded_questions

    qs = sorted(grounded_questions(db, questions_path), key=lambda q: q.id)
    assert qs, "no grounded questions in the test store"
    return qs[:n] if n else qs


class SpyBackend:
    """Delegates every call to the real LocalBackend and keeps what it returned and each episode's final token
    stream. It changes nothing: every id in a response was produced by the model."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.name = inner.name
        self.native_tools = inner.native_tools
        self.template_tools = inner.template_tools
        self.responses: dict[str, list[Any]] = defaultdict(list)
        self.streams: dict[str, list[int] | None] = {}

    def generate(self, requests: list[Any]) -> list[Any]:
        out = self.inner.generate(requests)
        for r, o in zip(requests, out):
            self.responses[r.episode_id].append(o)
        return out

    def end_episode(self, episode_id: str) -> None:
        self.streams[episode_id] = self.inner.stream(episode_id)
        self.inner.end_episode(episode_id)


def tiny_model() -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inboxrl.training.tiny import build_tiny_model

    d = build_tiny_model()
    return AutoModelForCausalLM.from_pretrained(d), AutoTokenizer.from_pretrained(d)


def train_config(tmp_path: Path, db: Path, questions_path: Path, **over: Any) -> Any:
    """A tiny-model config on the real store and the real Kaminski questions."""
    from inboxrl.training.config import TrainConfig

    data = {"db": str(db), "train_questions": str(questions_path), "grounded_only": True, "val_limit": 2}
    data.update(over.pop("data", {}))
    base = {"run_dir": str(tmp_path / "run"), "model": "tiny/qwen2", "seed": 0,
            "lora": {"rank": 4, "alpha": 8, "dropout": 0.0}, "learning_rate": 5e-3,
            "num_generations": 2, "questions_per_step": 2, "max_steps": 2, "micro_batch_size": 2,
            "max_turns": 2, "max_tokens_per_turn": 16, "max_completion_tokens": 512, "judge": "lexical",
            "eval_every": 2, "validate_at_start": False, "save_every": 1, "threads": 1, "data": data}
    base.update(over)
    return TrainConfig.from_dict(base)
