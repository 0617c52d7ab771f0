"""What a run costs: per-token prices for endpoint models, machine time for local ones.

Evaluation reports cost per 1,000 questions next to accuracy, because the point of training a small model is to be
cheaper than a big prompted one at equal accuracy. Endpoint prices are per million input/output tokens; a local
model costs the machine's hourly price times its share of the wall time (a batch of 8 episodes that took 80 s
costs each episode 10 s of machine time).

The defaults are list prices at the time of writing (USD per 1M tokens, no cache or batch discounts); prices
change, so a YAML/TOML/JSON table can replace or extend them (`INBOXRL_PRICES=path`, or `load_price_table`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from inboxrl.configfile import ConfigFileError, read_config_file, validation_message


class ModelPrice(BaseModel):
    input_per_1m: float = Field(0.0, ge=0)
    output_per_1m: float = Field(0.0, ge=0)


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(input_per_1m=2.50, output_per_1m=10.00),
    "gpt-4o-mini": ModelPrice(input_per_1m=0.15, output_per_1m=0.60),
    "gpt-4.1": ModelPrice(input_per_1m=2.00, output_per_1m=8.00),
    "gpt-4.1-mini": ModelPrice(input_per_1m=0.40, output_per_1m=1.60),
    "gpt-4.1-nano": ModelPrice(input_per_1m=0.10, output_per_1m=0.40),
    "o3": ModelPrice(input_per_1m=2.00, output_per_1m=8.00),
    "o3-mini": ModelPrice(input_per_1m=1.10, output_per_1m=4.40),
    "o4-mini": ModelPrice(input_per_1m=1.10, output_per_1m=4.40),
    "gpt-5": ModelPrice(input_per_1m=1.25, output_per_1m=10.00),
    "gpt-5-mini": ModelPrice(input_per_1m=0.25, output_per_1m=2.00),
    "gpt-5-nano": ModelPrice(input_per_1m=0.05, output_per_1m=0.40),
    "gemini-2.0-flash": ModelPrice(input_per_1m=0.10, output_per_1m=0.40),
    "gemini-2.5-flash": ModelPrice(input_per_1m=0.30, output_per_1m=2.50),
    "gemini-2.5-pro": ModelPrice(input_per_1m=1.25, output_per_1m=10.00),
}


class PriceTable(BaseModel):
    models: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    # The machine that runs `local/...` models, per hour (default: a small 2-vCPU cloud VM).
    local_usd_per_hour: float = Field(0.10, ge=0)

    def price(self, model: str) -> ModelPrice | None:
        """Exact name, then without a provider prefix (`openai/gpt-4o`), then the longest known prefix
        (`gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`)."""
        names = [model, model.split("/")[-1]]
        for n in names:
            if n in self.models:
                return self.models[n]
        for n in names:
            best = max((k for k in self.models if n.startswith((k + "-", k + ":"))), key=len,
                       default=None)
            if best is not None:
                return self.models[best]
        return None

    def estimate(self, model: str, prompt_tokens: int, completion_tokens: int,
                 wall_time_s: float = 0.0) -> float | None:
        """USD, or None for a model the table does not know: unknown is not free."""
        if model.lower().startswith("local/"):
            return self.local_usd_per_hour * max(wall_time_s, 0.0) / 3600.0
        p = self.price(model)
        if p is None:
            return None
        return (prompt_tokens * p.input_per_1m + completion_tokens * p.output_per_1m) / 1e6


class PriceTableError(ConfigFileError):
    """A price table that cannot be used; one line naming the file (and a ConfigFileError like any config file)."""


def load_price_table(path: str | Path, merge_defaults: bool = True) -> PriceTable:
    """Reads a table from YAML, TOML or JSON: `{local_usd_per_hour: 0.2, models: {name: {input_per_1m, ...}}}`.
    Listed models are added to (or override) the defaults unless `merge_defaults` is False."""
    try:
        data = read_config_file(path)
    except ConfigFileError as e:
        raise PriceTableError(f"cannot read price table: {e}") from e
    try:
        table = PriceTable.model_validate(data)
    except ValidationError as e:
        raise PriceTableError(validation_message(e, f"price table {path}")) from e
    if merge_defaults and "models" in data:
        table.models = {**DEFAULT_PRICES, **table.models}
    return table


@lru_cache(maxsize=4)
def _table_from_env(path: str | None) -> PriceTable:
    return load_price_table(path) if path else PriceTable()


def default_table() -> PriceTable:
    return _table_from_env(os.environ.get("INBOXRL_PRICES") or None)


def estimate_cost(model_name: str, prompt_tokens: int, completion_tokens: int, wall_time_s: float = 0.0,
                  table: PriceTable | None = None) -> float | None:
    """USD for one call or one episode (None: the model's price is unknown). For local models pass `wall_time_s` = the episode's share of machine time
    (sum of the turns' `ChatResponse.extra["wall_share_s"]`); token counts are ignored for them."""
    return (table or default_table()).estimate(model_name, prompt_tokens, completion_tokens, wall_time_s)
