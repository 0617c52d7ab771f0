"""Settings of question generation, in one pydantic model so a run can be repeated from a YAML/TOML file.

Every knob that changes which questions come out lives here, and the whole config is written into the stats
sidecar: a question file must say how it was made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator

# ConfigFileError is re-exported: callers catch it from here, and it is the one error class of every config file.
from inboxrl.configfile import ConfigFileError, read_config_file


class GenerateConfig(BaseModel):
    # --- email selection -------------------------------------------------------------------------------------
    batch_size: int = Field(20, ge=1, le=100)
    min_body_chars: int = Field(50, ge=0)  # shorter mails (one-liners, empty forwards) hold no askable fact
    max_body_chars: int = Field(5000, ge=1)  # ART-E's own bound: longer ones are mostly newsletters and reports
    order: Literal["random", "chronological"] = "random"  # chronological batches keep threads together
    seed: int = 0
    max_batches_per_inbox: int | None = Field(None, ge=1)  # bounds cost on a large inbox
    per_inbox: int | None = Field(None, ge=1)  # stop an inbox once this many questions survive every filter

    # --- prompt ------------------------------------------------------------------------------------------------
    # Per-email cut in the prompt. 20 mails x 1,200 chars is ~7k tokens: fine for an endpoint, slow on CPU; the
    # bundled 0.5B model wants smaller batches and cuts (see docs/questions.md).
    email_chars: int = Field(1200, ge=100)
    max_questions_per_batch: int = Field(8, ge=1)
    max_tokens: int = Field(1024, ge=16)
    temperature: float = Field(0.0, ge=0.0)

    # --- filters -----------------------------------------------------------------------------------------------
    realism_threshold: float = Field(0.5, ge=0.0, le=1.0)
    dedup_threshold: float = Field(0.8, gt=0.0, le=1.0)  # token Jaccard at or above this is a near-duplicate
    # "lexical" (offline word overlap) or a model spec (the judge's model); None: no support check.
    support_check: str | None = None
    support_max_tokens: int = Field(96, ge=8)

    # --- dates and splits -------------------------------------------------------------------------------------
    min_days_after: int = Field(1, ge=1)
    max_days_after: int = Field(30, ge=1)
    split: Literal["none", "inbox", "time"] = "none"
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_inboxes: list[str] = Field(default_factory=list)  # explicit test inboxes for the inbox split

    # --- running -----------------------------------------------------------------------------------------------
    concurrency: int = Field(1, ge=1)  # requests handed to the backend at once (one generate() call)
    cache: bool = True

    @model_validator(mode="after")
    def _check(self) -> GenerateConfig:
        if self.min_body_chars > self.max_body_chars:
            raise ValueError("min_body_chars must not exceed max_body_chars")
        if self.min_days_after > self.max_days_after:
            raise ValueError("min_days_after must not exceed max_days_after")
        self.test_inboxes = [a.strip().lower() for a in self.test_inboxes]
        return self


def load_config(path: str | Path | None, **overrides: object) -> GenerateConfig:
    """Reads YAML, TOML or JSON (a `[questions]` table or the top level), then applies non-None overrides (CLI
    flags). Every failure, of the file or of the merged values, is a ConfigFileError with one line."""
    data: dict[str, object] = dict(read_config_file(path, section="questions")) if path is not None else {}
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return GenerateConfig.model_validate(data)
    except ValueError as e:
        first = str(e).splitlines()
        raise ConfigFileError(f"invalid question config: {' '.join(first[:3])}") from e
