"""The reliability run (issue 23): hostile keywords and read ids, kill -9 over ingest, eval and training, hostile
mail files, hostile endpoints. Every count it prints is meant to be 0 except the "tried" ones.

    python benchmarks/reliability.py --out benchmarks/results/reliability.json            # everything
    python benchmarks/reliability.py --parts fuzz,files --keywords 2000 --reads 2000      # a quick subset

Bounded in count and time; endpoints are servers this script starts on 127.0.0.1. The searches and reads run in this
one process; kills and ingests of hostile files run as child processes (each with a timeout: a hang is counted, not
waited out). CPU stays at about one core.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from inboxrl.agent.scripted import completion_body, scripted_agent_reply

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("INBOXRL_SHARED", REPO.parent / "shared"))
KAMINSKI = SHARED / "data" / "enron-mbox" / "kaminski-v"
QUESTIONS = SHARED / "data" / "art-e-questions" / "kaminski-train.jsonl"
CLI = "from inboxrl.cli import app; app()"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO / "src")}
SLOW_CALL_S = 2.0  # a tool call slower than this is reported; one over HANG_S counts as a hang
HANG_S = 10.0

NASTIES = [
    '"', '""', "'", '"research', 'research"', "AND", "OR", "NOT", "NEAR", "NEAR(a b, 5)", "NEAR(", "*", "re*", "*ch",
    "-", "-research", ":", "subject:research", "body:model", "{subject body}:x", "^research", "(", ")", "((research)",
    "+research", "a AND", "OR OR OR", "'; DROP TABLE messages; --", '" OR 1=1 --', "1; SELECT * FROM aliases",
    "') UNION SELECT body FROM messages --", "%", "_", "%_%", "\\", "\x00", "a\x00b", "\ud800", "\udfff", "x\udc80y",
    "😀", "👨‍👩‍👧", "\u202eevil", "\u200b", "\ufeff", "ｆｕｌｌｗｉｄｔｈ", "e\u0301", "İstanbul", "straße", "\n\t\r",
    "\x1b[31m", "rowid", "rank", "bm25(messages_fts)", "messages_fts MATCH", "snippet(", "x" * 10_000,
    "research " * 1_500, "9" * 80, "-1", "1e308", "NaN", "null", "[]", "{}", "<script>alert(1)</script>",
    "../../etc/passwd", "vince.kaminski@enron.com", "research group", "Vince Kaminski", "2000-07-16", "😀" * 3000,
    "مرحبا", "你好世界", "кириллица", "enron", "power", "the", "meeting", "model", "price",
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], check=False, capture_output=True, text=True,
                          timeout=timeout, env=env or ENV)


# ---------------------------------------------------------------------------------------------- hostile tool calls


def _scopes(raw: sqlite3.Connection, rng: random.Random, n: int) -> list[tuple[str, str]]:
    """(inbox, before) pairs: inboxes of 30 to 800 messages, each at a date inside its mail's span."""
    rows = raw.execute(
        "SELECT address, min(date), max(date) FROM participants WHERE address != '' AND date IS NOT NULL "
        "GROUP BY address HAVING count(*) BETWEEN 30 AND 800 ORDER BY address").fetchall()
    picked = rng.sample(rows, min(n, len(rows)))
    out = []
    for address, lo, hi in picked:
        day = lo[:10] if lo[:10] == hi[:10] else sorted([lo[:10], hi[:10]])[1]
        out.append((address, rng.choice([day, "2001-06-01", "2000-06-01"])))
    return out


def _allowed(raw: sqlite3.Connection, inbox: str, before: str) -> set[int]:
    """Row ids this scope may see, computed from the tables directly, not by the tools' own scope code."""
    return {r for (r,) in raw.execute(
        "SELECT DISTINCT m.id FROM messages m JOIN participants p ON p.message_rowid = m.id "
        "WHERE p.address = ? AND m.date_ok = 1 AND m.date IS NOT NULL AND m.date < ?", (inbox, before))}


def _hostile_keywords(rng: random.Random) -> Any:
    alphabet = [chr(c) for c in (*range(0x80), 0xA0, 0xAD, 0x2028, 0xD800, 0xDC00, 0xFFFD, 0xFFFF, 0x1F600,
                                 0x10FFFF, 0x0301, 0x05D0, 0x4E00)]
    kws: list[Any] = []
    for _ in range(rng.randint(0, 6)):
        r = rng.random()
        if r < 0.45:
            kws.append(rng.choice(NASTIES))
        elif r < 0.65:
            kws.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))))
        elif r < 0.8:
            kws.append("".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 8))))
        elif r < 0.95:
            kws.append(" ".join(rng.choice(NASTIES) for _ in range(rng.randint(1, 5))))
        else:  # not even a string
            kws.append(rng.choice([None, 3, 1.5, [], {}, ["nested"], True]))
    r = rng.random()
    if r < 0.08:
        return " ".join(str(k) for k in kws)
    if r < 0.1:
        return rng.choice([None, 42, {"a": 1}, "", [], [[]]])
    return kws


def _hostile_id(rng: random.Random, own: list[str], other: list[str], future: list[str], aliases: list[str]) -> Any:
    r = rng.random()
    base = rng.choice(own or other)
    if r < 0.15:
        return rng.choice(own) if own else base
    if r < 0.35:
        return rng.choice(other)  # another inbox's mail: must not be readable
    if r < 0.45:
        return rng.choice(future) if future else base  # this inbox's mail, after the scope's date
    if r < 0.5:
        return rng.choice(aliases) if aliases else base
    mangle = rng.choice([
        lambda s: s.strip("<>"), lambda s: f" {s} ", lambda s: s.upper(), lambda s: s + "\x00", lambda s: s[:-3],
        lambda s: s.replace("@", "%40"), lambda s: f"<{s}>", lambda s: s + "' OR '1'='1",
        lambda s: "' UNION SELECT message_id FROM messages --", lambda s: s * 500, lambda s: "\ud800" + s,
        lambda s: "%", lambda s: "_", lambda s: "*", lambda s: "", lambda s: "<>", lambda s: s.replace(".", "\u2024"),
        lambda s: None, lambda s: 12345, lambda s: [s], lambda s: {"id": s}, lambda s: True, lambda s: 1e308,
    ])
    return mangle(base)


def run_fuzz(db: Path, n_keywords: int, n_reads: int, seed: int = 23) -> dict[str, Any]:
    from inboxrl.tools.base import BadArgumentsError, Scope, UnknownToolError
    from inboxrl.tools.inbox import InboxTools

    rng = random.Random(seed)
    raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    counts_before = [raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("messages", "participants", "aliases")]
    scopes = []
    for inbox, before in _scopes(raw, rng, 24):
        allowed = _allowed(raw, inbox, before)
        mine = raw.execute("SELECT DISTINCT m.id, m.message_id, m.date < ? FROM messages m JOIN participants p ON "
                           "p.message_rowid = m.id WHERE p.address = ? AND m.date IS NOT NULL",
                           (before, inbox)).fetchall()
        own = [mid for r, mid, _ in mine if r in allowed]
        future = [mid for r, mid, early in mine if not early]
        aliases = [a for (a,) in raw.execute(
            "SELECT a.alias FROM aliases a JOIN messages m ON m.id = a.message_rowid WHERE a.alias != m.message_id "
            "AND a.message_rowid IN (SELECT message_rowid FROM participants WHERE address = ?) LIMIT 200", (inbox,))]
        scopes.append((InboxTools(db, Scope(inbox=inbox, before=before)), allowed, own, future, aliases))
    other = [mid for (mid,) in raw.execute("SELECT message_id FROM messages ORDER BY random() LIMIT 3000")]
    by_mid = dict(raw.execute("SELECT message_id, id FROM messages"))
    stats: dict[str, Any] = {"scopes": len(scopes)}

    def one(kind: str, args: dict[str, Any], scope: tuple) -> None:
        tools, allowed = scope[0], scope[1]
        c = stats.setdefault(kind, Counter())
        c.update(leaks=0, exceptions=0)
        t0 = time.perf_counter()
        try:
            res = tools.call("search_inbox" if kind == "search" else "read_email", args)
        except (BadArgumentsError, UnknownToolError):
            c["refused (bad arguments)"] += 1
            res = None
        except Exception as e:  # noqa: BLE001 - the count the run is for
            c["exceptions"] += 1
            stats.setdefault("exception_examples", []).append(f"{kind} {args!r:.200}: {type(e).__name__}: {e}")
            res = None
        dt = time.perf_counter() - t0
        c["tried"] += 1
        c["slow (>2 s)"] += dt > SLOW_CALL_S
        c["hangs (>10 s)"] += dt > HANG_S
        c["max_ms"] = max(c["max_ms"], round(dt * 1000))
        if res is None:
            return
        res.content.encode("utf-8")
        c["ok" if res.ok else f"error: {res.error}"] += 1
        if res.ok and res.ids:
            c["with results"] += 1
            leaked = [i for i in res.ids if by_mid.get(i) not in allowed]
            if leaked:
                c["leaks"] += 1
                stats.setdefault("leak_examples", []).append(f"{kind} {args!r:.200} -> {leaked[:3]}")

    t0 = time.perf_counter()
    for _ in range(n_keywords):
        scope = rng.choice(scopes)
        args: dict[str, Any] = {"keywords": _hostile_keywords(rng)}
        if rng.random() < 0.15:
            args[rng.choice(["from_addr", "to_addr", "sent_after", "sent_before", "max_results"])] = rng.choice(
                [*NASTIES[:20], -5, 0, 10**9, None, "2099-01-01", "1900-01-01", "not a date"])
        one("search", args, scope)
    stats["search_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    for _ in range(n_reads):
        scope = rng.choice(scopes)
        args = {"message_id": _hostile_id(rng, scope[2], other, scope[3], scope[4])}
        if rng.random() < 0.1:
            args["offset"] = rng.choice([-1, 0, 10**12, "5", 2.5, None, 3999])
        one("read", args, scope)
    stats["read_s"] = round(time.perf_counter() - t0, 1)
    for s in scopes:
        s[0].close()
    counts_after = [raw.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                    for t in ("messages", "participants", "aliases")]
    stats["store_unchanged"] = counts_before == counts_after
    raw.close()
    return {k: dict(v) if isinstance(v, Counter) else v for k, v in stats.items()}


# ------------------------------------------------------------------------------------------------ hostile files


def _real(n: int) -> list[bytes]:
    import lzma

    sys.path.insert(0, str(REPO / "src"))
    from inboxrl.store.sources import split_mbox

    msgs, _ = split_mbox(lzma.decompress((KAMINSKI / "universities.mbox.xz").read_bytes()))
    return msgs[:n]


def _mbox(msgs: list[bytes]) -> bytes:
    return b"".join(b"From MAILER-DAEMON Mon Apr 18 14:19:09 2022\n" + m.rstrip(b"\n") + b"\n\n" for m in msgs)


def _hostile_files(d: Path) -> dict[str, Path]:
    import gzip
    import lzma

    good = _real(5)
    m0 = good[0]
    head, _, body = m0.partition(b"\n\n")
    files: dict[str, Path] = {}

    def put(name: str, data: bytes, fname: str | None = None) -> None:
        p = d / name
        p.mkdir()
        (p / (fname or "mail.mbox")).write_bytes(data)
        files[name] = p / (fname or "mail.mbox")

    put("empty file", b"")
    put("random binary", random.Random(1).randbytes(200_000))
    put("truncated xz", lzma.compress(_mbox(good))[:-200], "mail.mbox.xz")
    put("corrupt gz", gzip.compress(_mbox(good))[:40] + b"\xff" * 500, "mail.mbox.gz")
    put("bz2 that is not bz2", b"BZh9" + b"x" * 1000, "mail.mbox.bz2")
    put("NUL bytes everywhere", _mbox(good).replace(b" ", b"\x00"))
    put("1 MB Subject", _mbox([head + b"\nSubject: research " + b"x" * (1 << 20) + b"\n\n" + body]))
    put("10,000 recipients", _mbox([head + b"\nCc: " + b", ".join(b"u%d@x.com" % i for i in range(10_000))
                                    + b"\n\n" + body]))
    put("invalid base64 body", _mbox([head + b"\nContent-Transfer-Encoding: base64\n\nMeeting moved to Friday\n"]))
    put("mixed-encoding From", _mbox([(b"From: J\xf6rg <j\xc3\xb6rg@x.com>\nTo: a@b.com\nSubject: hi\n"
                                      b"Message-ID: <mixed@x>\nDate: Mon, 1 Jan 2001 10:00:00 -0800\n\nbody\n")]))
    put("unterminated multipart", _mbox([head + b"\nMIME-Version: 1.0\nContent-Type: multipart/mixed; "
                                         b"boundary=XX\n\n--XX\nContent-Type: text/plain\n\nhalf a part"]))
    nested = b"".join(b"--B%d\nContent-Type: multipart/mixed; boundary=B%d\n\n" % (i, i + 1) for i in range(500))
    put("500 nested multiparts", _mbox([head + b"\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B0"
                                        b"\n\n" + nested + b"deep\n"]))
    put("5 MB header line", _mbox([head + b"\nX-Junk: " + b"y" * (5 << 20) + b"\n\n" + body]))
    put("headers only, no body", _mbox([head]))
    put("CRLF line ends", _mbox(good).replace(b"\n", b"\r\n"))
    put("100,000-line body", _mbox([head + b"\n\n" + b"line\n" * 100_000]))
    put("CSV without message column", b"file,text\n1,hello\n", "emails.csv")
    put("CSV with broken quoting", b'file,message\n1,"From: a@b.com\nSubject: x\n\nbody\n2,"unclosed\n',
        "emails.csv")
    put("PNG named .eml", b"\x89PNG\r\n\x1a\n" + b"\x00" * 1000, "mail.eml")
    put("mbox of one 'From ' line", b"From \n")
    old = head.replace(b"Date:", b"X-Old-Date:")
    put("future and ancient dates", _mbox([old + b"\nDate: Mon, 1 Jan 2044 10:00:00 -0800\n\n" + body,
                                           old + b"\nDate: Thu, 1 Jan 1970 00:00:00 +0000\n\n" + body]))
    put("duplicate Message-ID, other text", _mbox([m0, m0.replace(b"\n\n", b"\n\nDIFFERENT ", 1)]))
    fifo_dir = d / "FIFO"
    fifo_dir.mkdir()
    os.mkfifo(fifo_dir / "pipe.mbox")
    files["FIFO"] = fifo_dir / "pipe.mbox"
    loop = d / "symlink loop"
    (loop / "a").mkdir(parents=True)
    (loop / "self").symlink_to(".")
    (loop / "a" / "back").symlink_to("..")
    (loop / "a" / "m.mbox").write_bytes(_mbox(good))
    files["directory symlink loop"] = loop
    broken = d / "broken symlink"
    broken.mkdir()
    (broken / "gone.mbox").symlink_to(d / "does-not-exist")
    files["broken symlink in a folder"] = broken
    dev = d / "device"
    dev.mkdir()
    (dev / "zero.mbox").symlink_to("/dev/zero")
    files["symlink to /dev/zero"] = dev
    return files


def run_files(work: Path) -> dict[str, Any]:
    d = work / "hostile-files"
    d.mkdir()
    out: dict[str, Any] = {}
    for name, path in _hostile_files(d).items():
        db = work / f"files-{len(out)}.db"
        t0 = time.perf_counter()
        try:
            r = cli("ingest", str(path), "--db", str(db), "--json", timeout=120)
            code, err, stdout = r.returncode, r.stderr, r.stdout
            hang = False
        except subprocess.TimeoutExpired:
            code, err, stdout, hang = -1, "", "", True
        row: dict[str, Any] = {"exit": code, "s": round(time.perf_counter() - t0, 1), "hang": hang,
                               "traceback": "Traceback" in err}
        if code == 0:
            s = json.loads(stdout)
            row.update(stored=s["store_messages"], skipped=s["skipped"], reasons=s["skip_reasons"])
        else:
            row["message"] = " ".join(err.split())[-200:]
        if db.exists() and code == 0:
            c = sqlite3.connect(db)
            row["integrity"] = c.execute("PRAGMA integrity_check").fetchone()[0]
            c.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")
            c.close()
            r2 = cli("search", "research", "--db", str(db), "--inbox", "vince.kaminski@enron.com", "--json",
                     timeout=60)
            row["search_after"] = "ok" if r2.returncode == 0 else " ".join(r2.stderr.split())[-200:]
        out[name] = row
        log(f"file {name}: {row}")
    return out


# ----------------------------------------------------------------------------------------------- hostile endpoints


class Server:
    """One loopback HTTP server whose POST behaviour is `mode`; `delay_s` slows every good reply."""

    def __init__(self, mode: str, delay_s: float = 0.0) -> None:
        self.mode, self.delay_s, self.stop = mode, delay_s, threading.Event()
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, status: int, data: bytes, ctype: str = "application/json",
                      extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if outer.mode in ("silent", "drip"):
                    return self._hostile()
                self._send(200, b'{"object":"list","data":[{"id":"m"}]}')

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._hostile(body)

            def _hostile(self, body: dict[str, Any] | None = None) -> None:
                m = outer.mode
                if m == "silent":
                    outer.stop.wait(120)
                elif m == "drip":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    self.wfile.flush()
                    while not outer.stop.wait(2.0):
                        try:
                            self.wfile.write(b" ")
                            self.wfile.flush()
                        except OSError:
                            return
                elif m == "close mid-body":
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{\"id\": \"x\", \"cho")
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif m == "garbage{":
                    self._send(200, b"garbage{")
                elif m == "content 12345":
                    self._send(200, completion_body({"role": "assistant", "content": 12345}))
                elif m == "HTML 200":
                    self._send(200, b"<html><body>Bad gateway</body></html>", "text/html")
                elif m == "no choices":
                    self._send(200, b'{"id":"x","object":"chat.completion","choices":[]}')
                elif m == "JSON array":
                    self._send(200, b"[1, 2, 3]")
                elif m == "tool call with numeric name":
                    self._send(200, completion_body({"role": "assistant", "content": None, "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": 7, "arguments": 8}}]}))
                elif m == "arguments not JSON":
                    self._send(200, completion_body({"role": "assistant", "content": None, "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "search_inbox",
                                                                     "arguments": "{keywords: [oops"}}]}))
                elif m == "5 MB reply":
                    self._send(200, completion_body({"role": "assistant", "content": "z" * (5 << 20)}))
                elif m == "always 429":
                    self._send(429, b'{"error":{"message":"rate limited"}}', extra={"Retry-After": "0"})
                elif m == "always 500":
                    self._send(500, b'{"error":{"message":"boom"}}')
                elif m == "401":
                    self._send(401, b'{"error":{"message":"bad key"}}')
                else:  # a working agent endpoint
                    if outer.delay_s:
                        time.sleep(outer.delay_s)
                    self._send(200, scripted_agent_reply(body or {"messages": [{"role": "user", "content": "x"}]}))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]  # killed clients
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


ENDPOINT_MODES = ["drip", "silent", "close mid-body", "garbage{", "content 12345", "HTML 200", "no choices",
                  "JSON array", "tool call with numeric name", "arguments not JSON", "5 MB reply", "always 429",
                  "always 500", "401", "refused port"]


def run_endpoints() -> dict[str, Any]:
    from inboxrl.models.base import BackendError, ChatRequest
    from inboxrl.models.openai_backend import OpenAIBackend

    out: dict[str, Any] = {}
    for mode in ENDPOINT_MODES:
        srv = None
        if mode == "refused port":
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
        else:
            srv = Server(mode)
            url = srv.url
        retries: list[str] = []
        b = OpenAIBackend("m", base_url=url, timeout_s=3, max_retries=2, backoff_s=0.05, on_retry=retries.append)
        req = ChatRequest(episode_id="e", messages=[{"role": "user", "content": "hi"}], max_tokens=5)
        row: dict[str, Any] = {}
        t0 = time.perf_counter()
        try:
            r = b.generate([req])[0]
            row["outcome"] = f"error: {r.error}" if r.error else f"ok ({len(r.text)} chars, " \
                f"{len(r.tool_calls or [])} calls)"
            row["exception"] = None
        except Exception as e:  # noqa: BLE001 - counted: the run is about these
            row["exception"] = f"{type(e).__name__}: {e}"
        row["s"] = round(time.perf_counter() - t0, 1)
        row["retries_reported"] = len(retries)
        t0 = time.perf_counter()
        try:
            b.check(timeout_s=2)
            row["check"] = "reachable"
        except BackendError as e:
            row["check"] = f"BackendError: {e}"
        except Exception as e:  # noqa: BLE001 - counted: the run is about these
            row["check"] = f"EXCEPTION {type(e).__name__}: {e}"
        row["check_s"] = round(time.perf_counter() - t0, 1)
        row["one_line"] = "\n" not in str(row.get("outcome", ""))
        out[mode] = row
        log(f"endpoint {mode}: {row}")
        if srv:
            srv.close()
    return out


# -------------------------------------------------------------------------------------------------- kill -9


def _store_state(db: Path) -> dict[str, Any]:
    c = sqlite3.connect(db)
    try:
        state: dict[str, Any] = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                 for t in ("messages", "aliases", "participants", "skips", "ingested_sources")}
        state["alias_map"] = hash(frozenset(c.execute(
            "SELECT a.alias, m.content_hash FROM aliases a JOIN messages m ON m.id = a.message_rowid")))
        state["integrity"] = c.execute("PRAGMA integrity_check").fetchone()[0]
        c.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")
        state["fts_research"] = c.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'research'").fetchone()[0]
        return state
    finally:
        c.close()


def _kill_at(cmd: list[str], at_s: float, env: dict[str, str], ready: Any = None) -> tuple[bool, float]:
    """Starts cmd in its own process group and SIGKILLs the group at_s seconds after `ready()` first holds (after
    the start when there is no `ready`); (killed before it ended, seconds from the start)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while ready is not None and p.poll() is None and not ready() and time.monotonic() - t0 < 3600:
        time.sleep(0.05)
    try:
        p.wait(timeout=at_s)
        return False, time.monotonic() - t0
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        return True, time.monotonic() - t0


def _lines(path: Path, kind: str | None = None) -> int:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if kind is None or f'"kind": "{kind}"' in line)


def run_ingest_kills(work: Path, n: int, rng: random.Random) -> dict[str, Any]:
    """All of kaminski-v (49 folders) in transactions of 200 messages, killed at a random moment of its writing."""
    cmd = [sys.executable, "-c", CLI, "ingest", str(KAMINSKI), "--workers", "2", "--config",
           str(work / "small-batches.yaml"), "--db"]
    clean = work / "clean.db"
    p = subprocess.Popen([*cmd, str(clean)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while p.poll() is None and not clean.exists():
        time.sleep(0.02)
    t0 = time.monotonic()
    assert p.wait(timeout=900) == 0
    write_s = time.monotonic() - t0  # from the store file's creation to the end
    want = _store_state(clean)
    trials = []
    for i in range(n):
        db = work / f"kill-ingest-{i}.db"
        at = rng.uniform(0.0, 0.95 * write_s)
        env = {**ENV, "INBOXRL_INGEST_POOL_MIN_BYTES": "0"} if i % 2 else ENV  # half with worker processes
        killed, _ = _kill_at([*cmd, str(db)], at, env, ready=db.exists)
        try:
            r = cli("search", "research", "--db", str(db), "--inbox", "vince.kaminski@enron.com")
            before = "refused: " + " ".join(r.stderr.split())[-120:] if r.returncode else "answered"
        except subprocess.TimeoutExpired:
            before = "hang"
        r = cli("ingest", str(KAMINSKI), "--db", str(db), "--workers", "2", "--json", timeout=900)
        got = _store_state(db) if r.returncode == 0 else {"resume_failed": " ".join(r.stderr.split())[-300:]}
        diff = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
        trials.append({"kill_at_s_after_db": round(at, 2), "killed": killed, "search_before_resume": before,
                       "differences": diff})
        log(f"ingest kill {i}: at {at:.2f}s killed={killed} search before resume: {before} differences={diff}")
    return {"write_s": round(write_s, 1), "want": {k: v for k, v in want.items() if k != "alias_map"},
            "trials": trials, "lost_or_duplicated": sum(bool(t["differences"]) for t in trials)}


def _trajectories(path: Path) -> tuple[list[str], int]:
    """(question ids of the parseable lines, torn or unparseable lines)."""
    ids, bad = [], 0
    if not path.exists():
        return ids, bad
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            ids.append(str(json.loads(line)["question_id"]))
        except (ValueError, KeyError):
            bad += 1
    return ids, bad


def run_eval_kills(work: Path, db: Path, n: int, rng: random.Random, model: str) -> dict[str, Any]:
    qfile = work / "eval-q.jsonl"
    qfile.write_text("".join(QUESTIONS.read_text().splitlines(keepends=True)[:16]))
    want = [str(json.loads(line)["id"]) for line in qfile.read_text().splitlines()]
    srv = Server("agent", delay_s=0.3) if model == "endpoint" else None
    spec = ["--model", "m", "--base-url", srv.url] if srv else ["--model", model, "--max-turns", "2"]
    base = [sys.executable, "-c", CLI, "eval", "--db", str(db), "--questions", str(qfile), "--judge", "lexical",
            "--concurrency", "2", *spec]
    t0 = time.perf_counter()  # a whole run first: the kills land between its start and its end
    r = subprocess.run([*base, "--out", str(work / "eval-clean")], check=False, capture_output=True, text=True,
                       timeout=3600, env=ENV)
    clean_s = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    trials = []
    for i in range(n):
        out = work / f"kill-eval-{model.replace('/', '_')}-{i}"
        # after 0 to n-2 finished episodes, then up to a second more: inside an episode or inside a write
        after = rng.randint(0, len(want) - 2)
        at = rng.uniform(0.0, 1.0)
        killed, _ = _kill_at([*base, "--out", str(out)], at, ENV,
                             ready=lambda o=out, k=after: _lines(o / "trajectories.jsonl") >= k)
        before, torn = _trajectories(out / "trajectories.jsonl")
        r = subprocess.run([*base, "--out", str(out), "--json"], check=False, capture_output=True, text=True,
                           timeout=1800, env=ENV)
        ids, bad = _trajectories(out / "trajectories.jsonl")
        n_metrics = None
        if r.returncode == 0:
            n_metrics = next(iter(json.loads(r.stdout)["models"].values()))["n"]
        c = Counter(ids)
        trial = {"kill_after_episodes": after, "then_s": round(at, 2), "killed": killed,
                 "done_before_resume": len(before),
                 "torn_before_resume": torn, "resume_exit": r.returncode, "lines": len(ids), "bad_lines": bad,
                 "lost": sorted(set(want) - set(ids)), "duplicated": sorted(k for k, v in c.items() if v > 1),
                 "metrics_n": n_metrics}
        trials.append(trial)
        log(f"eval kill {i} ({model}): {trial}")
    if srv:
        srv.close()
    return {"model": model, "questions": len(want), "clean_s": round(clean_s, 1), "trials": trials,
            "lost_or_duplicated": sum(bool(t["lost"] or t["duplicated"] or t["bad_lines"]
                                           or t["metrics_n"] != len(want)) for t in trials)}


def run_train_kills(work: Path, db: Path, n: int, rng: random.Random) -> dict[str, Any]:
    sets = ["--set", f"data.db={db}", "--set", "threads=1", "--set", "max_steps=4", "--set", "save_every=1"]
    trials = []
    for i in range(n):
        run_dir = work / f"kill-train-{i}"
        base = [sys.executable, "-c", CLI, "train", "--config", str(REPO / "configs" / "smoke.yaml"), *sets,
                "--set", f"run_dir={run_dir}"]
        after = rng.randint(0, 3)  # logged steps; then a few seconds into the next step (or its checkpoint)
        at = rng.uniform(0.0, 10.0)
        killed, _ = _kill_at(base, at, ENV, ready=lambda d=run_dir, k=after: _lines(d / "metrics.jsonl", "train") >= k)
        r = subprocess.run([*base, "--resume", "--json"], check=False, capture_output=True, text=True,
                           timeout=1800, env=ENV)
        steps: list[int] = []
        bad = 0
        log_path = run_dir / "metrics.jsonl"
        for line in (log_path.read_text().splitlines() if log_path.exists() else []):
            try:
                rec = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if rec.get("kind") == "train":
                steps.append(int(rec["step"]))
        c = Counter(steps)
        trial = {"kill_after_steps": after, "then_s": round(at, 1), "killed": killed, "resume_exit": r.returncode,
                 "resume_error": " ".join(r.stderr.split())[-300:] if r.returncode else None,
                 "train_steps_logged": sorted(steps), "duplicated_steps": sorted(k for k, v in c.items() if v > 1),
                 "missing_steps": sorted(set(range(1, 5)) - set(steps)), "bad_lines": bad}
        trials.append(trial)
        log(f"train kill {i}: {trial}")
    return {"trials": trials, "lost_or_duplicated": sum(bool(t["duplicated_steps"] or t["missing_steps"]
                                                             or t["bad_lines"] or t["resume_exit"]) for t in trials)}


# ------------------------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="fuzz,files,endpoints,ingest,eval,train")
    ap.add_argument("--keywords", type=int, default=10_000)
    ap.add_argument("--reads", type=int, default=10_000)
    ap.add_argument("--ingest-kills", type=int, default=10)
    ap.add_argument("--eval-kills", type=int, default=6)
    ap.add_argument("--eval-model", default="endpoint", help="'endpoint' (a scripted agent on a loopback HTTP "
                                                              "server) or a model spec such as local/smollm2-135m")
    ap.add_argument("--train-kills", type=int, default=4)
    ap.add_argument("--db", type=Path, help="a store of kaminski-v (built in the work folder when absent)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "reliability.json")
    ap.add_argument("--seed", type=int, default=23)
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    parts = set(a.parts.split(","))
    rng = random.Random(a.seed)
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "args": vars(a) | {
        "db": str(a.db), "out": str(a.out)}}
    try:
        result["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=False,
                                          capture_output=True, text=True).stdout.strip()
    except OSError:
        result["commit"] = None
    with tempfile.TemporaryDirectory(prefix="inboxrl-reliability-") as tmp:
        work = Path(tmp)
        (work / "small-batches.yaml").write_text("batch_messages: 200\n")
        db = a.db
        if db is None and parts & {"fuzz", "eval", "train"}:
            db = work / "kaminski.db"
            log("building the kaminski-v store")
            r = cli("ingest", str(KAMINSKI), "--db", str(db), "--workers", "1", "--json", timeout=900)
            assert r.returncode == 0, r.stderr
        if "fuzz" in parts:
            log(f"{a.keywords} hostile keyword lists, {a.reads} hostile read ids")
            result["fuzz"] = run_fuzz(db, a.keywords, a.reads, a.seed)
            log(json.dumps(result["fuzz"])[:2000])
        if "files" in parts:
            result["files"] = run_files(work)
        if "endpoints" in parts:
            result["endpoints"] = run_endpoints()
        if "ingest" in parts:
            result["kill_ingest"] = run_ingest_kills(work, a.ingest_kills, rng)
        if "eval" in parts:
            result["kill_eval"] = run_eval_kills(work, db, a.eval_kills, rng, a.eval_model)
        if "train" in parts:
            result["kill_train"] = run_train_kills(work, db, a.train_kills, rng)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, ensure_ascii=False, default=str))
    log(f"written {a.out}")


if __name__ == "__main__":
    main()
