"""How many questions have their answer past the part of the source mail that `read_email` shows.

Why: the guided harness answers right after one read (`force_answer_after_read`), so an answer that lies past
`tools.body_char_limit` cannot be read; those questions cap every policy's accuracy, prompted or trained. The ninth
CPU run's wrong and "I don't know" answers after reading the source led here (docs/benchmarks.md).

A question counts as cut when its best source mail is longer than the limit and at least 20 points more of the
golden answer's content words are in the whole body than in the part shown. The body is the store's, exactly what
`read_email` pages through.

    python benchmarks/body_cut.py runs/cpu-demo/data/val.jsonl --db data/enron.db --limit 1500 --limit 3000
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import typer

app = typer.Typer(add_completion=False)

_STOP = set("the a an and or of to in on at for with is was were be been by it that this he she they we i you my your "
            "his her their our from as are will would should can could did do does what when who where why how which "
            "about".split())


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9$]+", text.lower()) if w not in _STOP and len(w) > 1}


def coverage(answer: set[str], text: str) -> float:
    return len(answer & content_words(text)) / max(len(answer), 1)


def best_source(conn: sqlite3.Connection, message_ids: list[str], answer: set[str], limit: int
                ) -> tuple[float, float, int] | None:
    """(answer words in the whole body, in the part shown, body length) of the source that holds most of them."""
    best = None
    for mid in message_ids:
        row = conn.execute("SELECT m.body FROM aliases a JOIN messages m ON m.id = a.message_rowid WHERE a.alias = ?",
                           (mid,)).fetchone()
        if row is None:
            continue
        body = row[0] or ""
        cand = (coverage(answer, body), coverage(answer, body[:limit]), len(body))
        best = cand if best is None or cand > best else best
    return best


@app.command()
def main(questions: Path, db: Path = typer.Option(Path("data/enron.db")),
         limit: list[int] = typer.Option([1500], help="body_char_limit values to compare"),
         show: bool = typer.Option(False, help="List the cut questions")) -> None:
    qs = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = []
    for lim in limit:
        longer = cut = missing = 0
        for q in qs:
            words = content_words(q["answer"])
            found = best_source(conn, q["message_ids"], words, lim)
            if found is None:
                missing += 1
                continue
            full, shown, length = found
            longer += length > lim
            if length > lim and full - shown >= 0.2:
                cut += 1
                if show:
                    typer.echo(f"  {q['id']}: {length} chars, answer words {full:.2f} in the body, {shown:.2f} shown: "
                               f"{q['question'][:90]}")
        rows.append({"body_char_limit": lim, "questions": len(qs), "source_longer": longer, "answer_cut": cut,
                     "source_missing": missing})
    typer.echo(json.dumps({"file": str(questions), "rows": rows}, indent=2))


if __name__ == "__main__":
    app()
