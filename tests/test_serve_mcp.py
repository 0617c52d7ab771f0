"""`inboxrl mcp` driven by the official `mcp` SDK's client over stdio, in one session, on the real kaminski store."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

pytest.importorskip("mcp")

INBOX = "vince.kaminski@enron.com"
GIUSEPPE = "<25336317.1075840776611.JavaMail.evans@thyme>"


def _lavorato_only(db: Path) -> tuple[str, str]:
    """A message of john.lavorato@enron.com that vince.kaminski@enron.com neither sent nor received."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT m.message_id, m.subject FROM messages m WHERE EXISTS (SELECT 1 FROM participants p WHERE "
            "p.message_rowid = m.id AND p.address = 'john.lavorato@enron.com') AND length(m.subject) > 5 AND NOT EXISTS (SELECT 1 FROM "
            "participants p WHERE p.message_rowid = m.id AND p.address = ?) LIMIT 1", (INBOX,)).fetchone()
    finally:
        conn.close()
    assert row, "the store has no lavorato-only message"
    return str(row[0]), str(row[1])


def _text(result: object) -> str:
    return "".join(getattr(c, "text", "") for c in getattr(result, "content", []))


def test_mcp_stdio_session_searches_reads_and_refuses_out_of_scope(enron_store: Path) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    foreign, subject = _lavorato_only(enron_store)
    src = str(Path(__file__).resolve().parent.parent / "src")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "inboxrl", "mcp", "--db", str(enron_store), "--inbox", INBOX, "--before", "2001-05-10"],
        env={"PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"},
    )

    async def session() -> dict[str, object]:
        out: dict[str, object] = {}
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            out["tools"] = sorted(t.name for t in (await s.list_tools()).tools)
            found = await s.call_tool("search_inbox", {"keywords": ["Giuseppe"], "max_results": 20})
            out["search_error"] = found.is_error
            out["search"] = json.loads(_text(found))
            read = await s.call_tool("read_email", {"message_id": GIUSEPPE})
            out["read_error"] = read.is_error
            out["read"] = json.loads(_text(read))
            refused = await s.call_tool("read_email", {"message_id": foreign})
            out["refused_error"] = refused.is_error
            out["refused"] = _text(refused)
            bad = await s.call_tool("search_inbox", {"keywords": "x" * 5, "max_results": -3})
            out["bad_error"] = bad.is_error
        return out

    out = anyio.run(session)
    assert out["tools"] == ["read_email", "search_inbox"]
    assert out["search_error"] is False
    ids = [h["message_id"] for h in out["search"]["results"]]  # type: ignore[index]
    assert any(i.strip("<>") == GIUSEPPE.strip("<>") for i in ids), ids
    assert out["read_error"] is False
    email = out["read"]
    assert email["message_id"].strip("<>") == GIUSEPPE.strip("<>")  # type: ignore[index]
    assert "giuseppe" in json.dumps(email).lower()
    assert out["refused_error"] is True
    assert "not_found" in str(out["refused"]) or "no email" in str(out["refused"]).lower() \
        or "not found" in str(out["refused"]).lower()
    assert subject not in str(out["refused"])  # nothing of the other inbox's mail comes back, not even its subject
    assert "john.lavorato" not in str(out["refused"])
    assert out["bad_error"] is True


def test_mcp_cli_rejects_a_bad_date(enron_store: Path) -> None:
    import subprocess

    r = subprocess.run([sys.executable, "-m", "inboxrl", "mcp", "--db", str(enron_store), "--inbox", INBOX,
                        "--before", "2001-13-40"], check=False, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src")})
    assert r.returncode == 2
    assert "--before must be YYYY-MM-DD" in r.stderr
    assert "Traceback" not in r.stderr
