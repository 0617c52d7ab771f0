"""How an episode runs: turn budget, tool-call mode, what happens on a malformed call, and the harness helps.

Every knob that changes what the model sees lives here, so a trajectory file can be traced back to one config and a
prompted baseline can be reproduced exactly. Load from YAML or TOML with `AgentConfig.load(path)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from inboxrl.configfile import (
    ConfigFileError,
    apply_overrides,
    parse_overrides,
    read_config_file,
    validation_message,
)
from inboxrl.tools.inbox import ToolsConfig

# Named harness presets: the keys each one sets. `guided` is the harness the CPU demo trains and validates with
# (configs/cpu-demo.yaml); without it the bundled 0.5B model re-reads the right email until refused and runs out of
# turns on README's own quickstart question.
HARNESS_PRESETS: dict[str, dict[str, Any]] = {
    "free": {"force_search_first": False, "force_read_after_search": False, "force_answer_after_read": False},
    "guided": {"force_search_first": True, "force_read_after_search": True, "force_answer_after_read": True},
}
HARNESS_NAMES = tuple(HARNESS_PRESETS)


class AgentConfig(BaseModel):
    # A misspelt key (`max_turn`) is an error at load, in the file, the `agent:` section or `--set`, not a default.
    model_config = ConfigDict(extra="forbid")

    # A named preset (HARNESS_PRESETS) filling the keys it names that the config does not set itself. None: not
    # chosen, and `with_harness_default` applies the model's own default (bundled local models guided, endpoints
    # free); a config that sets any of the preset's keys itself counts as chosen.
    harness: Literal["free", "guided", "custom"] | None = None
    # Each model call is one turn; a retry after a format error counts too, so the budget bounds cost.
    max_turns: int = Field(10, ge=1)
    # auto: native OpenAI tool calls where the backend has them, JSON-in-text otherwise.
    tool_mode: Literal["auto", "native", "json"] = "auto"
    # In JSON mode, let a local chat template that knows tools (Qwen's) describe them; False uses our compact
    # description instead, which is ~200 prompt tokens cheaper on every turn of every rollout.
    template_tools: bool = False
    # Show the tools' optional arguments (search filters, paging)? auto: only to native-tool models. Small local
    # models fill in every argument they are shown, with made-up values, and then find nothing.
    optional_tool_args: Literal["auto", "show", "hide"] = "auto"
    # retry: the model is told what was wrong and gets another turn (it counts toward max_turns); end: stop.
    on_format_error: Literal["retry", "end"] = "retry"
    # An identical repeated call is refused with a message to change keywords or answer. Small models otherwise
    # loop on one call until the turns run out.
    refuse_repeated_calls: bool = True
    # A final answer before any search is refused ("search first"): it can only be a guess.
    require_search_before_answer: bool = True
    # The first turn must be a search: native endpoints get `tool_choice`, local models a reply that already starts
    # with `{"name": "search_inbox", "arguments": {"keywords": [` (not trained on: it is the harness's text). Small
    # models otherwise open with a guessed answer or an invented tool.
    force_search_first: bool = False
    # The turn after a successful read_email must be the final answer (local models: the reply starts with
    # `{"name": "return_final_answer", "arguments": {"answer": "`; endpoints: `tool_choice`). The answer may still
    # be "I don't know". Small models otherwise re-send the same read until refused, then give up.
    force_answer_after_read: bool = False
    # The turn after a search that found emails must read one of them (`..."message_id": "`): which one is still
    # the model's choice. Small models otherwise re-send their own search instead of reading a result.
    force_read_after_search: bool = False
    # After a turn that went wrong (format error, refused call), the next turn samples at least this hot. Greedy
    # decoding of a tiny model otherwise loops on the same refused call until the budget runs out. 0 turns this off. It never lowers `temperature`
    # (GRPO rollouts already sample), so it only changes greedy runs.
    retry_temperature: float = Field(0.7, ge=0.0)
    # Tell the model when its next turn is the last one, so it answers instead of searching into the wall.
    last_turn_warning: bool = True
    # Several calls in one turn are run in order (up to this many), stopping at a final answer.
    max_calls_per_turn: int = Field(4, ge=1)
    max_tokens_per_turn: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    seed: int | None = None
    # The tools' own settings: result counts, body and header limits, search fallback.
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    # Keep token ids and logprobs in trajectories (training needs them; eval files drop them anyway).
    keep_token_ids: bool = True

    @model_validator(mode="before")
    @classmethod
    def _fill_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("harness") in HARNESS_PRESETS:
            data = {**HARNESS_PRESETS[data["harness"]], **data}
        return data

    @model_validator(mode="after")
    def _name_harness(self) -> AgentConfig:
        if self.harness is None and self.model_fields_set & set(HARNESS_PRESETS["free"]):
            self.harness = self.harness_name()
        return self

    def harness_name(self) -> Literal["free", "guided", "custom"]:
        """The preset these settings equal, else "custom": what trajectories and metrics record."""
        for name, preset in HARNESS_PRESETS.items():
            if all(getattr(self, k) == v for k, v in preset.items()):
                return "guided" if name == "guided" else "free"
        return "custom"

    def with_harness(self, name: str) -> AgentConfig:
        """These settings under the named preset (an explicit `--harness` wins over the config file's keys)."""
        if name not in HARNESS_PRESETS:
            raise ValueError(f"unknown harness {name!r}: use {' or '.join(HARNESS_NAMES)}")
        return self.model_copy(update={**HARNESS_PRESETS[name], "harness": name})

    def with_harness_default(self, model_spec: str) -> AgentConfig:
        """The model's default preset when none was chosen, so `ask` on a bundled model answers on its defaults."""
        if self.harness is not None:
            return self
        from inboxrl.models.spec import default_harness

        return self.with_harness(default_harness(model_spec))

    @classmethod
    def load(cls, path: str | Path | None, overrides: dict[str, Any] | None = None) -> AgentConfig:
        """Reads YAML, TOML or JSON; an `agent:` table/section is used when present, so a training config (whose
        `agent:` section is the episode harness) serves `inboxrl eval --config` as is. `overrides` are dotted keys
        of this section (`tools.body_char_limit`); an `agent.` prefix is accepted so the keys given to
        `inboxrl train --set` work here unchanged. With no path, the overrides apply to the defaults.
        A file that cannot be read or parsed is a ConfigFileError; bad values stay a pydantic ValidationError
        (both are ValueErrors)."""
        data = read_config_file(path, section="agent") if path is not None else {}
        relative = {k.removeprefix("agent."): v for k, v in (overrides or {}).items()}
        return cls.model_validate(apply_overrides(data, relative))

    def tools_config(self) -> ToolsConfig:
        """The tools' config object."""
        return self.tools


def load_agent_config(path: str | Path | None, set_items: list[str] | None = None) -> AgentConfig:
    """What `--config` and `--set` give the commands that run episodes. Every failure, an unknown key included, is
    one ConfigFileError line naming the file or the override, before any model loads."""
    source = str(path) if path is not None else "agent defaults"
    if set_items:
        source += " with --set " + " ".join(set_items)
    try:
        return AgentConfig.load(path, parse_overrides(set_items or []))
    except ValidationError as e:
        raise ConfigFileError(validation_message(e, source)) from e
