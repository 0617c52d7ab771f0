"""The request bodies the server accepts. Anything else is a 4xx JSON error before a model or a store is touched."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_QUESTION_CHARS = 4000  # a real question is a sentence; a megabyte of "question" is an attack on the context
MAX_MESSAGES = 200
MAX_TOKENS = 4096


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inbox: str = Field(..., min_length=3, max_length=320)
    question: str = Field(..., min_length=1, max_length=MAX_QUESTION_CHARS)
    date: str | None = Field(None, description="Today's date for the agent (YYYY-MM-DD): it sees mail sent before")
    stream: bool = False
    model: str | None = None

    @field_validator("inbox")
    @classmethod
    def _inbox(cls, v: str) -> str:
        v = v.strip().lower()
        if "@" not in v or any(c.isspace() for c in v):
            raise ValueError("inbox must be an email address")
        return v

    @field_validator("question")
    @classmethod
    def _question(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("question is empty")
        return v.strip()

    @field_validator("date")
    @classmethod
    def _date(cls, v: str | None) -> str | None:
        if v is None:
            return None
        try:
            return dt.date.fromisoformat(v.strip()).isoformat()
        except ValueError:
            raise ValueError("date must be YYYY-MM-DD") from None


class FunctionSpec(BaseModel):
    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.]+$")
    description: str | None = Field(None, max_length=8000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolSpec(BaseModel):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown OpenAI fields (user, metadata, ...) are ignored

    model: str
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    tools: list[ToolSpec] | None = Field(None, max_length=64)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    seed: int | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1)
