"""Builds a labelled sheet of answers that game a fact-matching judge, with right paraphrases beside them.

    python benchmarks/judge_gaming_sheet.py --slice dev  --db /work/data/enron.db --out benchmarks/results/judge-gaming-dev.jsonl
    python benchmarks/judge_gaming_sheet.py --slice eval --db /work/data/enron.db --out benchmarks/results/judge-gaming-eval.jsonl

Why generated, not hand-written: the evaluation sheet must be about questions nobody read while writing the judge's
rules, so a program picks them (a hash of the question id puts each in one slice: `eval`, `dev` or neither) and
writes the answers; only counts are printed. Questions in the shipped calibration file or a blind-labelled sheet
are left out of both slices. For each question the "answer kind" is the kind of fact its question word asks for
and its golden answer holds (dates, times, numbers, names, room codes), else its key words. Rows, each a
calibration row (`inboxrl judge calibrate --file SHEET`):

- label false: `shotgun` (the golden value among three more of its kind, shuffled), `extra` (the golden answer
  plus two more of the kind), `hedge` ("X, or possibly Y" / "Either Y or X"), `restate` (the question put back);
- label true: `paraphrase` ("According to the email, ..."), `reformat` (months abbreviated, "4 PM", "$1,000"),
  `numeric` ("5/7/2001", "16:00", "1,000 dollars"), `short` (only the facts asked for).

The other values of the kind come from the question's source mails in the store (through the alias table), else
from the inbox's mails that best match the question's words (full-text search); people's names from those mails'
senders and recipients, then from other questions' one-name golden answers; else from a shift of the golden value
(a day or a month later, hours later, twice the amount).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sqlite3
import sys
from pathlib import Path

from inboxrl.agent.idk import is_dont_know
from inboxrl.judge.asked import DATES, NAMES, NUMBERS, TIMES, asked_facts
from inboxrl.judge.facts import STOPWORDS, YESNO_Q, extract
from inboxrl.judge.gaming import PLACES, asks_place, room_codes

ROOT = Path(__file__).resolve().parent.parent
# The labelled sheets that existed when the frozen sheets were made, by name: a sheet added later (the test split's
# blind labels) must not change which questions a frozen sheet holds.
SEEN_SHEETS = [ROOT / "src/inboxrl/data/judge_calibration.jsonl",
               *(ROOT / "benchmarks/results" / f"cpu-demo{part}-blind-labels.jsonl"
                 for part in ("", "-train-rollouts", "-train-typed"))]
SLICES = {"eval": 0, "dev": 1}

_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|"
           r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
SURFACE = {
    DATES: re.compile(rf"\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s*\d{{4}})?\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b"
                      rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}(?:,?\s*\d{{4}})?"
                      r"|\b(?:January|February|March|April|June|July|August|September|October|November|December)\b"),
    TIMES: re.compile(r"\b\d{1,2}:\d{2}\s*(?:[ap]\.?m\.?|[AP]M)?|\b\d{1,2}\s*(?:[ap]\.m\.|[AP]M|[ap]m)\b"),
    NUMBERS: re.compile(r"\$\s?\d[\d,]*(?:\.\d+)?\s?(?:[kK]|MM|million)?|\(?\b\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}\b"
                        r"|\b\d[\d,]*(?:\.\d+)?%?"),
    NAMES: re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z]\.)?\s+[A-Z][a-z]+(?:-[A-Z][a-z]+)?\b"),
    PLACES: re.compile(r"\b[A-Z]{1,4}\s?\d{1,5}[A-Za-z]?\d{0,3}\b"),
}
_WEEKDAY = re.compile(r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")
_NOT_NAME = re.compile(r"January|February|March|April|May|June|July|August|September|October|November|December|"
                       r"Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|The|This|Please|Thanks|Dear|"
                       r"Subject|Enron|Research|Group|Forwarded|Original|Message")


def slice_of(qid: str) -> int:
    return int(hashlib.sha256(f"judge-gaming:{qid}".encode()).hexdigest(), 16) % 10


def _key(kind: str, text: str) -> tuple[object, ...]:
    """A value's identity within its kind, so one date written two ways is one value."""
    f = extract(text)
    if kind == DATES:
        return tuple(sorted(str(d) for d in f.dates))
    if kind == TIMES:
        return tuple(sorted((t.hour % 12, t.minute) for t in f.times))
    if kind == NUMBERS:
        return tuple(sorted(f.numbers))
    if kind == PLACES:
        return tuple(sorted(room_codes(text)))
    return tuple(sorted(w for grp in f.names for w in grp))


def answer_kind(question: str, golden: str) -> str | None:
    if YESNO_Q.match(question):
        return None
    asked = asked_facts(question) or frozenset()
    order = [k for k in (NAMES, DATES, TIMES, NUMBERS) if k in asked]
    if asks_place(question):
        order.insert(0, PLACES)
    if not asked:
        order += [DATES, TIMES, NUMBERS]
    for k in order:
        if surfaces(k, golden):
            return k
    return None


def surfaces(kind: str, text: str) -> list[str]:
    if kind == NAMES and len((text or "").split()) <= 3 and re.fullmatch(r"[A-Z][\w.' -]*\.?", (text or "").strip()):
        return [text.strip().rstrip(".")]  # a short golden answer that is a name ("Shirley.", "Jim Bouillion")
    out: list[str] = []
    for m in SURFACE[kind].finditer(text or ""):
        s = " ".join(m.group(0).split()).strip(" ,.")
        if kind == NAMES and _NOT_NAME.search(s):
            continue
        if _key(kind, s) and s not in out:
            out.append(s)
    if kind == DATES and any(d.day for s in out for d in extract(s).dates):  # "July" beside "24th July" is not news
        out = [s for s in out if any(d.day for d in extract(s).dates)]
    return out


def mails(conn: sqlite3.Connection | None, question: str, message_ids: list[str],
          inbox: str) -> tuple[list[str], list[str], bool]:
    """(bodies, people's names, whether from the sources): the question's source mails through the alias table,
    else the inbox's mails that best match the question's words (a benchmark script: plain SQL, read-only)."""
    if conn is None:
        return [], [], False
    ids = []
    for mid in message_ids:
        key = mid if mid.startswith("<") else f"<{mid}>"
        row = conn.execute("SELECT message_rowid FROM aliases WHERE alias = ?", (key,)).fetchone()
        if row:
            ids.append(int(row[0]))
    from_sources = bool(ids)
    if not ids:
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", question) if w.lower() not in STOPWORDS][:6]
        if words:
            query = " OR ".join(f'"{w}"' for w in words)
            hits = [r[0] for r in conn.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? "
                                               "ORDER BY rank LIMIT 40", (query,))]
            ids = [i for i in hits if conn.execute("SELECT 1 FROM participants WHERE message_rowid = ? AND "
                                                   "address = ?", (i, inbox)).fetchone()][:3]
    bodies = [f"{r[0]}\n{r[1]}" for i in ids
              for r in conn.execute("SELECT subject, body FROM messages WHERE id = ?", (i,))]
    names = [str(r[0]) for i in ids for r in conn.execute(
        "SELECT DISTINCT name FROM participants WHERE message_rowid = ? AND name LIKE '% %'", (i,))]
    return bodies, [n for n in names if re.fullmatch(r"[A-Z][a-z]+(?: [A-Z]\.?)? [A-Z][a-z]+", n)], from_sources


def shifted(kind: str, value: str, rng: random.Random) -> list[str]:
    """Values of the kind near the golden one, when the mails give too few."""
    f = extract(value)
    if kind == DATES and f.dates:
        d = f.dates[0]
        months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                  "November", "December"]
        if d.day:
            return [f"{months[d.month % 12]} {d.day}", f"{months[d.month - 1]} {d.day % 28 + 1}",
                    f"{months[(d.month + 2) % 12]} {(d.day + 9) % 28 + 1}"]
        return [months[(d.month + i) % 12] for i in (1, 2, 4)]
    if kind == TIMES and f.times:
        t = f.times[0]
        return [f"{(t.hour + h - 1) % 12 + 1}:{t.minute:02d} p.m." for h in (1, 2, 4)]
    if kind == NUMBERS and f.numbers:
        v = f.numbers[0]
        dollar = "$" if "$" in value else ""
        return [f"{dollar}{x:,.0f}" if float(x).is_integer() else f"{dollar}{x:,.2f}" for x in (v * 2, v * 10 + 5,
                                                                                             v / 2 + 3)]
    if kind == PLACES:
        return [f"EB{rng.randint(10, 50)}C{rng.randint(1, 9)}" for _ in range(3)]
    return []


def distractors(kind: str, golden: str, question: str, bodies: list[str], people: list[str],
                name_pool: list[str], rng: random.Random, n: int = 3) -> list[str]:
    g_keys = {_key(kind, s) for s in surfaces(kind, golden)}
    g_words = {w for grp in extract(golden).names for w in grp} | set(extract(golden).words)
    q_keys = {_key(kind, s) for s in surfaces(kind, question)}
    pool: list[str] = []
    if kind == NAMES:  # people named in the mails, then in other golden answers; a capitalised phrase is no name
        pool = list(dict.fromkeys(name_pool))
        rng.shuffle(pool)
        pool = [*dict.fromkeys(people), *pool]
    else:
        for text in bodies:
            pool += surfaces(kind, text)
        rng.shuffle(pool)
    out: list[str] = []
    seen = set(g_keys) | q_keys
    for s in [*pool, *shifted(kind, (surfaces(kind, golden) or [golden])[0], rng)]:
        k = _key(kind, s)
        if not k or k in seen:
            continue
        if kind == NAMES and {w for grp in extract(s).names for w in grp} & g_words:
            continue
        seen.add(k)
        out.append(s)
        if len(out) == n:
            break
    return out


def reformat(golden: str) -> str:
    s = re.sub(r"\b(\d{1,2}):00\s*p\.?\s?m\.?", r"\1 PM", golden, flags=re.IGNORECASE)
    s = re.sub(r"\b(\d{1,2}):(\d{2})\s*a\.?\s?m\.?", r"\1:\2 AM", s, flags=re.IGNORECASE)
    s = re.sub(r"\b(January|February|August|September|October|November|December)\b",
               lambda m: m.group(1)[:3] + ".", s)
    s = re.sub(r"\$(\d{1,3}),(\d{3})\b(?!,)", r"$\1\2", s)
    s = re.sub(r"\$(\d{4,})\b", lambda m: f"${int(m.group(1)):,}", s) if s == golden else s
    return s


_MONTH_NUM = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                          "dec"], 1)}


def numeric(golden: str) -> str:
    """Dates as numbers ("May 7, 2001" -> "5/7/2001"), afternoon times on a 24-hour clock, amounts in words."""
    s = re.sub(rf"\b({_MONTHS})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s*(\d{{4}}))?",
               lambda m: f"{_MONTH_NUM[m.group(1)[:3].lower()]}/{m.group(2)}" + (f"/{m.group(3)}" if m.group(3) else ""),
               golden)
    s = re.sub(r"(?<![-\d:])(?<!- )\b(\d{1,2}):(\d{2})\s*p\.?\s?m\.?", lambda m: f"{int(m.group(1)) % 12 + 12}:{m.group(2)}", s,
               flags=re.IGNORECASE)
    return re.sub(r"\$(\d[\d,]*)(?![\d.,]*\s?(?:[kKmMbB]|million))", r"\1 dollars", s)


def restate(question: str) -> str:
    if YESNO_Q.match(question):
        return question.strip()
    return f"Regarding {question.strip().rstrip('?').strip()}: as the email says."


def rows_for(q: dict[str, object], bodies: list[str], people: list[str], name_pool: list[str],
             other_golden: str, rng: random.Random) -> list[dict[str, object]]:
    question, golden, qid = str(q["question"]), str(q["answer"]), str(q["id"])
    kind = answer_kind(question, golden)

    def row(candidate: str, label: bool, k: str) -> dict[str, object]:
        return {"question_id": qid, "question": question, "golden_answer": golden, "candidate": candidate,
                "label": label, "kind": k}

    out = [row(restate(question), False, "restate")]
    first = golden.split()[0] if golden.split() else ""
    lead = golden[0].lower() + golden[1:] if first.lower() in ("the", "a", "an", "it", "this") else golden
    out.append(row(f"According to the email, {lead}", True, "paraphrase"))
    if reformat(golden) != golden:
        out.append(row(reformat(golden), True, "reformat"))
    if numeric(golden) not in (golden, reformat(golden)):
        out.append(row(numeric(golden), True, "numeric"))
    if kind is None:
        short = " ".join(other_golden.split()[:8]).rstrip(".,;")
        out.append(row(f"{golden.rstrip('.')}, or possibly {short}.", False, "hedge"))
        return out
    values = surfaces(kind, golden)
    value = values[0] if kind in (NAMES, PLACES) or len(values) == 1 else ", ".join(values)
    more = distractors(kind, golden, question, bodies, people, name_pool, rng)
    if len(more) < 2:
        return out
    asked = asked_facts(question) or frozenset()
    if kind in asked or kind == PLACES:
        # Every fact the question asks for, as the golden answer gives them: "Friday, June 30, 11:30 AM".
        facts = [*(_WEEKDAY.findall(golden) if DATES in asked else []),
                 *(v for k in (DATES, TIMES, NUMBERS) if k in asked for v in surfaces(k, golden))]
        out.append(row(", ".join(facts) if kind != NAMES and facts else value, True, "short"))
    listed = [value, *more]
    rng.shuffle(listed)
    out.append(row(", ".join(listed), False, "shotgun"))
    out.append(row(f"{golden.rstrip('.')}. Also: {', '.join(more[:2])}.", False, "extra"))
    out.append(row(rng.choice([f"{value}, or possibly {more[0]}", f"Either {more[0]} or {value}."]), False,
                   "hedge"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slice", choices=sorted(SLICES), required=True)
    ap.add_argument("--questions", type=Path, default=ROOT.parent / "shared/data/art-e-questions/kaminski-train.jsonl")
    ap.add_argument("--db", type=Path, default=None, help="store for the source mails (read-only)")
    ap.add_argument("--n", type=int, default=60, help="questions taken from the slice")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()

    seen = {str(json.loads(line).get("question_id")) for p in SEEN_SHEETS if p.is_file()
            for line in p.open(encoding="utf-8") if line.strip()}
    qs = [json.loads(line) for line in a.questions.open(encoding="utf-8") if line.strip()]
    # Names that golden answers to "who" questions give alone: people, not capitalised phrases.
    name_pool = [str(q["answer"]).strip().rstrip(".") for q in qs if str(q["question"]).lower().startswith("who")
                 and re.fullmatch(r"[A-Z][a-z]+(?: [A-Z]\.)? [A-Z][a-z]+\.?", str(q["answer"]).strip())]
    chosen = [q for q in qs if slice_of(str(q["id"])) == SLICES[a.slice] and str(q["id"]) not in seen
              and not is_dont_know(str(q["answer"]))]
    chosen.sort(key=lambda q: hashlib.sha256(f"order:{q['id']}".encode()).hexdigest())
    chosen = chosen[: a.n]
    conn = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True) if a.db else None
    rng = random.Random(a.seed)
    rows: list[dict[str, object]] = []
    with_mail = with_related = 0
    for i, q in enumerate(chosen):
        bodies, people, from_sources = mails(conn, str(q["question"]), [str(m) for m in q.get("message_ids") or []],
                                             str(q.get("inbox_address") or ""))
        with_mail += from_sources
        with_related += bool(bodies) and not from_sources
        rows += rows_for(q, bodies, people, name_pool, str(chosen[(i + 1) % len(chosen)]["answer"]), rng)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    kinds: dict[str, int] = {}
    for r in rows:
        kinds[str(r["kind"])] = kinds.get(str(r["kind"]), 0) + 1
    digest = hashlib.sha256(a.out.read_bytes()).hexdigest()
    print(json.dumps({"slice": a.slice, "questions": len(chosen), "with_source_mail": with_mail,
                      "with_related_mail": with_related, "rows": len(rows),
                      "kinds": kinds, "sha256": digest}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
