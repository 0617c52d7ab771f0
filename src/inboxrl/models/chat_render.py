"""Rendering chats with a model's own template, and finding the text a new turn adds.

The token stream of an episode must be exactly what the model saw and sampled. So the backend never re-tokenises
the chat: it renders the chat twice (up to the model's last reply, and with the new messages plus the generation
prompt), and tokenises only the difference. This module holds the template side of that: normalising OpenAI
messages so any template renders them, probing what a template does (tools? how does a reply end?), and the diff.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_PROBE_TOOL = {"type": "function", "function": {
    "name": "probe_tool_xq", "description": "probe", "parameters": {"type": "object", "properties": {}}}}
_MARK = "ZQXJ-reply-end-probe"


def normalise(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the messages that every template can render: content is always a string, and tool-call arguments
    are objects (templates apply `tojson` to them; a JSON string would be encoded twice)."""
    out = []
    for m in messages:
        d = dict(m)
        if d.get("content") is None:
            d["content"] = ""
        elif not isinstance(d["content"], str):  # OpenAI content parts
            d["content"] = "".join(p.get("text", "") for p in d["content"] if isinstance(p, dict))
        if d.get("tool_calls"):
            calls = []
            for c in d["tool_calls"]:
                c = dict(c)
                fn = dict(c.get("function") or {})
                if isinstance(fn.get("arguments"), str):
                    try:
                        fn["arguments"] = json.loads(fn["arguments"])
                    except ValueError:
                        pass
                c["function"] = fn
                calls.append(c)
            d["tool_calls"] = calls
        out.append(d)
    return out


@dataclass
class TemplateInfo:
    supports_tools: bool  # does the template show `tools=` to the model?
    end_of_turn: str  # the text that closes an assistant reply, e.g. "<|im_end|>"
    after_turn: str  # what the template writes after it, e.g. "\n"


class ChatRenderer:
    def __init__(self, tokenizer: Any) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template")
        self.tokenizer = tokenizer
        self.info = self._probe()

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
               add_generation_prompt: bool) -> str:
        kw: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
        if tools and self.info.supports_tools:
            kw["tools"] = tools
        text = self.tokenizer.apply_chat_template(normalise(messages), **kw)
        assert isinstance(text, str)
        return text

    def _probe(self) -> TemplateInfo:
        base = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        plain = self.tokenizer.apply_chat_template(base, tokenize=False, add_generation_prompt=True)
        try:
            with_tools = self.tokenizer.apply_chat_template(base, tools=[_PROBE_TOOL], tokenize=False,
                                                            add_generation_prompt=True)
            supports = "probe_tool_xq" in with_tools and with_tools != plain
        except Exception:  # noqa: BLE001 - a template that cannot take tools simply does not support them
            supports = False
        full = self.tokenizer.apply_chat_template(base + [{"role": "assistant", "content": _MARK}], tokenize=False)
        tail = full[full.rfind(_MARK) + len(_MARK):] if _MARK in full else ""
        eot, after = self._split_tail(tail)
        return TemplateInfo(supports_tools=supports, end_of_turn=eot, after_turn=after)

    def _split_tail(self, tail: str) -> tuple[str, str]:
        """Splits the text after a reply into the end-of-turn token and what follows it ("<|im_end|>", "\n")."""
        specials = sorted({str(t) for t in getattr(self.tokenizer, "all_special_tokens", [])} |
                          {str(t) for t in getattr(self.tokenizer, "added_tokens_encoder", {})}, key=len, reverse=True)
        stripped = tail.lstrip()
        for s in specials:
            if s and stripped.startswith(s):
                return tail[: len(tail) - len(stripped)] + s, stripped[len(s):]
        return tail, ""

    def suffix(self, messages: list[dict[str, Any]], n_before: int, tools: list[dict[str, Any]] | None) -> str | None:
        """The text the messages after `messages[:n_before]` add, up to and including the generation prompt, where
        `messages[n_before - 1]` is the model's own last reply. None when the template does not render the shorter
        chat as a prefix of the longer one (then the stream cannot be continued)."""
        before = self.render(messages[:n_before], tools, add_generation_prompt=False)
        after = self.render(messages, tools, add_generation_prompt=True)
        if not after.startswith(before):
            return None
        # `before` ends with the reply's end-of-turn and what follows it; that part is added by the caller from
        # what the model actually sampled, so it is cut here.
        closing = self.info.end_of_turn + self.info.after_turn
        if not closing or not before.endswith(closing):
            return None
        return after[len(before):]
