"""Shared by the viewer tests: the committed real runs, a hostile episode and hostile mail, a live server."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from inboxrl.trajectory import Message, Rubric, ToolCall, ToolEvent, Trajectory, TurnRecord, write_jsonl

DATA = Path(__file__).resolve().parent / "data" / "viewer"
GUIDED = DATA / "run-guided"  # real: `inboxrl eval` of the bundled Qwen on 3 grounded questions (README there)
SMOL = DATA / "run-smol"
INBOX = "vince.kaminski@enron.com"
HOSTILE_ID = "<hostile-1@example.com>"
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=2">'
JS_LINK = '<a href="javascript:window.__pwned=3">click me</a>'
HOSTILE = f"{SCRIPT} {IMG} {JS_LINK}"


def hostile_mbox() -> bytes:
    msg = (f"From MAILER-DAEMON Mon Apr 18 14:19:09 2022\n"
           f"Message-ID: {HOSTILE_ID}\n"
           f"Date: Mon, 2 Apr 2001 10:00:00 -0700 (PDT)\n"
           f"From: evil@example.com\n"
           f"To: {INBOX}\n"
           f"Subject: {SCRIPT} {IMG}\n"
           f"X-From: {JS_LINK}\n\n"
           f"Hello {HOSTILE}\n"
           f"<iframe src=\"javascript:window.__pwned=6\"></iframe>\n\n")
    return msg.encode()


def hostile_trajectory() -> Trajectory:
    """An episode whose question, keywords, hits, raw output, answer and sources all carry live HTML."""
    search = ToolCall(id="c1", name="search_inbox", arguments={"keywords": [SCRIPT, "budget"]})
    read = ToolCall(id="c2", name="read_email", arguments={"message_id": HOSTILE_ID})
    final = ToolCall(id="c3", name="return_final_answer",
                     arguments={"answer": HOSTILE, "sources": [HOSTILE_ID, "javascript:window.__pwned=5"]})
    hits = {"results": [{"message_id": HOSTILE_ID, "date": "2001-04-02 10:00:00", "from": JS_LINK,
                         "subject": f"{SCRIPT} {IMG}", "snippet": HOSTILE}]}
    email = {"message_id": HOSTILE_ID, "date": "2001-04-02", "from": "evil@example.com", "to": [INBOX],
             "subject": SCRIPT, "body": HOSTILE}
    return Trajectory(
        question_id="hostile-q", question=f"What does {SCRIPT} say?", golden_answer=IMG,
        golden_message_ids=[HOSTILE_ID], inbox_address=INBOX, query_date="2001-05-01", model="local/hostile",
        messages=[Message(role="system", content="s"), Message(role="user", content="q"),
                  Message(role="assistant", content=HOSTILE, tool_calls=[search]),
                  Message(role="tool", tool_call_id="c1", name="search_inbox", content=json.dumps(hits)),
                  Message(role="assistant", content="", tool_calls=[read]),
                  Message(role="tool", tool_call_id="c2", name="read_email", content=json.dumps(email)),
                  Message(role="assistant", content="", tool_calls=[final]),
                  Message(role="tool", tool_call_id="c3", name="return_final_answer", content="{}")],
        turns=[TurnRecord(index=0, raw_output=HOSTILE, tool_calls=[search]),
               TurnRecord(index=1, raw_output=JS_LINK, tool_calls=[read], format_error=None),
               TurnRecord(index=2, raw_output=IMG, tool_calls=[final])],
        tool_events=[ToolEvent(turn=0, name="search_inbox", arguments=search.arguments, result_ids=[HOSTILE_ID]),
                     ToolEvent(turn=1, name="read_email", arguments=read.arguments, result_ids=[HOSTILE_ID]),
                     ToolEvent(turn=2, name="return_final_answer", arguments=final.arguments)],
        final_answer=HOSTILE, final_sources=[HOSTILE_ID, "javascript:window.__pwned=5"], stop_reason="answered",
        rubric=Rubric(attempted_answer=True, answer_correct=False, num_turns=3, judge_reason=IMG), reward=-0.7)


def hostile_run(dst: Path) -> Path:
    """A run dir: the guided run's real episodes plus the hostile one, under a hostile model name."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(GUIDED / "trajectories.jsonl", dst / "trajectories.jsonl")
    write_jsonl(dst / "trajectories.jsonl", [hostile_trajectory()])
    return dst


def hostile_store(enron_store: Path, dst: Path) -> Path:
    """A copy of the real kaminski store with the hostile message ingested into it."""
    from inboxrl.store.ingest import ingest

    db = dst / "store.db"
    shutil.copy(enron_store, db)
    mbox = dst / "hostile.mbox"
    mbox.write_bytes(hostile_mbox())
    ingest([mbox], db, workers=1)
    return db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """The app under a real uvicorn server on a free local port; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        th.join(timeout=10)
