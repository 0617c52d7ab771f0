"""The generator's prompt. Its version is part of the cache key: change the wording, bump PROMPT_VERSION.

Emails are shown with batch-local ids 1..n, never their Message-IDs: a small model copies "3" reliably and mangles
"<30784365.1075856273296.JavaMail.evans@thyme>". Bodies are cut to a budget (quoted history first, then at a word
boundary), because a 20-mail batch must fit a small model's context and CPU prefill time.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from inboxrl.questions.select import Batch, Email

PROMPT_VERSION = "q1"

SYSTEM = """\
You write questions for a dataset that tests an email search assistant. You are shown emails from the inbox of \
{owner}. Write questions that {first} might really type, weeks later, to find a fact in these emails.

Rules:
- First person: the inbox owner is asking ("When is my meeting with Sarah?", "What did John send me about the \
Houston lease?").
- Short: one sentence, at most 20 words.
- The answer is concrete and stated in the emails: a date, time, amount, name, place or short fact.
- Ask with the detail a person would remember (the topic, roughly who, roughly when). Name people by first name \
only. Never mention email ids or quote a whole subject line.
- Cite every email the answer comes from by its id number in "source_ids".
- Skip emails with nothing worth asking (newsletters, spam, auto-replies). Few good questions beat many weak ones.
- "how_realistic" is a number from 0 to 1: how likely the owner would really ask this (1 = surely, 0 = never).

Reply with JSON only, in exactly this form:
{{"questions": [{{"question": "...", "answer": "...", "source_ids": [1], "how_realistic": 0.8}}]}}"""

USER = """\
Inbox owner: {owner}

{emails}

Write at most {k} questions about these emails. Reply with the JSON only."""

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "generated_questions",
        "schema": {
            "type": "object",
            "properties": {
                "questions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "question": {"type": "string"},
                            "answer": {"type": "string"},
                            "source_ids": {"type": "array", "items": {"type": "integer"}},
                            "how_realistic": {"type": "number"},
                        },
                        "required": ["question", "answer", "source_ids", "how_realistic"],
                        "additionalProperties": False,
                    },
                }
            },
            "required": ["questions"],
            "additionalProperties": False,
        },
    },
}

_QUOTE_MARKERS = re.compile(
    r"^\s*(-{3,}\s*Original Message\s*-{3,}|-{3,}\s*Forwarded by|On .+ wrote:\s*$)",
    re.IGNORECASE | re.MULTILINE,
)


def owner_label(name: str, address: str) -> str:
    return f"{name} <{address}>" if name else address


def first_name(name: str, address: str) -> str:
    """The owner's first name for the prompt; falls back to the address's local part (e.g. 'vince')."""
    name = re.sub(r"[\"']", "", name).strip()
    if "," in name:  # "Kaminski, Vince"
        name = name.split(",", 1)[1].strip()
    parts = name.split()
    if parts and parts[0].isalpha():
        return parts[0].capitalize()
    local = address.split("@")[0].split(".")[0]
    return local.capitalize() or "the owner"


def clean_body(body: str, budget: int) -> str:
    """Fits a body into `budget` chars, dropping what a reader would skip first."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if len(text) <= budget:
        return text
    unquoted = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith(">"))
    if len(unquoted) <= budget:
        return unquoted
    text = unquoted
    m = _QUOTE_MARKERS.search(text, 200)  # only cut history when some own text comes before it
    if m and m.start() <= budget:
        text = text[: m.start()].rstrip() + "\n[earlier messages cut]"
        if len(text) <= budget + 24:
            return text
    cut = text[:budget]
    space = cut.rfind(" ", int(budget * 0.8))
    return (cut[:space] if space > 0 else cut).rstrip() + " [...]"


def _recipients(e: Email, limit: int = 4) -> str:
    names = [n or a for n, a in e.to]
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} others"
    return ", ".join(names)


def render_email(local_id: int, e: Email, budget: int) -> str:
    try:
        day = datetime.strptime(e.date[:10], "%Y-%m-%d").strftime("%Y-%m-%d (%A)")
    except ValueError:
        day = e.date[:10]
    lines = [f"### Email {local_id}", f"From: {owner_label(e.from_name, e.from_addr)}"]
    to = _recipients(e)
    if to:
        lines.append(f"To: {to}")
    lines += [f"Date: {day}", f"Subject: {e.subject.strip() or '(no subject)'}", "", clean_body(e.body, budget)]
    return "\n".join(lines)


def build_messages(batch: Batch, owner_name: str, max_questions: int, email_chars: int) -> list[dict[str, str]]:
    owner = owner_label(owner_name, batch.inbox)
    emails = "\n\n".join(render_email(i, e, email_chars) for i, e in batch.by_local_id().items())
    return [
        {"role": "system", "content": SYSTEM.format(owner=owner, first=first_name(owner_name, batch.inbox))},
        {"role": "user", "content": USER.format(owner=owner, emails=emails, k=max_questions)},
    ]
