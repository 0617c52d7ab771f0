"""How many questions have their answer past the part of the source mail that `read_email` shows.

Why: the guided harness answers right after one read (`force_answer_after_read`), so an answer that lies past
`tools.body_char_limit` cannot be read; those questions cap every policy's accuracy, prompted or trained. The ninth
CPU run's wrong and "I don't know" answers after reading the source led here (docs/benchmarks.md).

A question counts as cut when its best source mail is longer than the limit and at least 20 points more of the
golden answer's content words are in the whole body than in the part shown. The body is the store's, exactly what
`read_email` pages through.

    python benchmarks/body_cut.py runs/cpu-demo/data/val.jsonl --db data/enron.db --limit 1500 --limit 3000 \
        --trajectories runs/cpu-demo/validation/step-000000.jsonl
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import typer

from inboxrl.agent.runner import open_store
from inboxrl.questions.grounding import resolve_ids
from inboxrl.questions.schema import QuestionFileError, load_questions
from inboxrl.training.evidence import content_words  # stemmed, the lexical judge's stop words
from inboxrl.trajectory import read_jsonl

app = typer.Typer(add_completion=False)


def coverage(answer: set[str], text: str) -> float:
    return len(answer & content_words(text)) / max(len(answer), 1)


def best_source(conn: sqlite3.Connection, message_ids: list[str], answer: set[str], limit: int
                ) -> tuple[float, float, int] | None:
    """(answer words in the whole body, in the part shown, body length) of the source that holds most of them."""
    best = None
    for rowid in resolve_ids(conn, message_ids).values():
        body = conn.execute("SELECT body FROM messages WHERE id = ?", (rowid,)).fetchone()[0] or ""
        cand = (coverage(answer, body), coverage(answer, body[:limit]), len(body))
        best = cand if best is None or cand > best else best
    return best


@app.command()
def main(questions: Path, db: Path = typer.Option(Path("data/enron.db")),
         limit: list[int] = typer.Option([1500], help="body_char_limit values to compare"),
         show: bool = typer.Option(False, help="List the cut questions"),
         trajectories: list[Path] = typer.Option([], exists=True, dir_okay=False, help="eval/validation trajectories.jsonl: how their episodes "
                                                         "ended on the questions cut at the first --limit")) -> None:
    try:
        qs = load_questions(questions)
        conn = open_store(db)
    except (QuestionFileError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    rows = []
    cut_ids: set[str] = set()
    for lim in limit:
        longer = cut = missing = 0
        for q in qs:
            found = best_source(conn, q.message_ids, content_words(q.answer), lim)
            if found is None:
                missing += 1
                continue
            full, shown, length = found
            longer += length > lim
            if length > lim and full - shown >= 0.2:
                cut += 1
                if lim == limit[0]:
                    cut_ids.add(q.id)
                if show:
                    typer.echo(f"  {q.id}: {length} chars, answer words {full:.2f} in the body, {shown:.2f} shown: "
                               f"{q.question[:90]}")
        rows.append({"body_char_limit": lim, "questions": len(qs), "source_longer": longer, "answer_cut": cut,
                     "source_missing": missing})
    outcomes = {str(f): _outcomes(f, cut_ids) for f in trajectories}
    typer.echo(json.dumps({"file": str(questions), "rows": rows, "outcomes_on_cut": outcomes}, indent=2))


def _outcomes(path: Path, ids: set[str]) -> dict[str, int]:
    """right / wrong / "I don't know" / no answer among a file's episodes on `ids`, as its rubric scored them."""
    out = {"right": 0, "wrong": 0, "dont_know": 0, "no_answer": 0}
    for t in read_jsonl(path):
        if t.question_id in ids and t.rubric is not None:
            r = t.rubric
            out["right" if r.answer_correct else "wrong" if r.attempted_answer else
                "dont_know" if r.said_dont_know else "no_answer"] += 1
    return out


if __name__ == "__main__":
    app()
