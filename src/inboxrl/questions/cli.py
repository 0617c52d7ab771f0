"""`inboxrl questions ...`: generate question sets from any inbox, describe and split question files."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

questions_app = typer.Typer(no_args_is_help=True, help="Questions with verified answers: generate, describe, split.")
_err = Console(stderr=True)
_out = Console()


def _fail(msg: str, code: int = 1) -> NoReturn:
    _err.print(f"[red]error:[/red] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""
    app.add_typer(questions_app, name="questions")


@questions_app.command("generate")
def generate_cmd(
    db: Path = typer.Option(..., "--db", help="The mail store (SQLite) built by `inboxrl ingest`."),
    inbox: list[str] = typer.Option(..., "--inbox", help="Inbox address; repeat for several inboxes."),
    model: str = typer.Option(..., "--model", help="Generator model spec, e.g. local/qwen2.5-coder-0.5b or gpt-4.1."),
    out: Path = typer.Option(..., "--out", help="Output JSONL (ART-E field names)."),
    config: Path | None = typer.Option(None, "--config", help="YAML/TOML with generation settings (flags win)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Emails per model call (default 20)."),
    per_inbox: int | None = typer.Option(None, "--per-inbox", help="Stop an inbox once N questions survive."),
    max_batches: int | None = typer.Option(None, "--max-batches", help="At most N batches per inbox."),
    seed: int | None = typer.Option(None, "--seed", help="Seed for batch order and question dates."),
    min_body: int | None = typer.Option(None, "--min-body-chars", help="Shortest usable body (default 50)."),
    max_body: int | None = typer.Option(None, "--max-body-chars", help="Longest usable body (default 5000)."),
    email_chars: int | None = typer.Option(None, "--email-chars", help="Cut each email to N chars in the prompt."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Generation budget per batch."),
    temperature: float | None = typer.Option(None, "--temperature"),
    realism: float | None = typer.Option(None, "--realism-threshold", help="Keep how_realistic >= this (0.5)."),
    dedup: float | None = typer.Option(None, "--dedup-threshold", help="Token Jaccard counted as duplicate (0.8)."),
    support_check: str | None = typer.Option(
        None, "--support-check", help="'lexical', or a model spec (the judge's) asked if the answer is stated."),
    split: str | None = typer.Option(None, "--split", help="none | inbox | time: also write FILE.train/.test."),
    test_fraction: float | None = typer.Option(None, "--test-fraction", help="Share of inboxes/questions for test."),
    test_inbox: list[str] = typer.Option([], "--test-inbox", help="Explicit test inbox (repeatable)."),
    concurrency: int | None = typer.Option(None, "--concurrency", help="Requests sent to the model at once."),
    cache_path: Path | None = typer.Option(None, "--cache", help="Call cache (default: OUT_DIR/.qgen-cache.sqlite)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Neither read nor write the call cache."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for --model."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON."),
) -> None:
    """Generate questions, answers and source ids from batches of an inbox's mail, validated and filtered."""
    from inboxrl.questions.config import ConfigFileError, load_config
    from inboxrl.questions.split import SplitError, choose_test_inboxes

    try:
        cfg = load_config(
            config, batch_size=batch_size, per_inbox=per_inbox, max_batches_per_inbox=max_batches, seed=seed,
            min_body_chars=min_body, max_body_chars=max_body, email_chars=email_chars, max_tokens=max_tokens,
            temperature=temperature, realism_threshold=realism, dedup_threshold=dedup,
            support_check=support_check, split=split, test_fraction=test_fraction,
            test_inboxes=test_inbox or None, concurrency=concurrency, cache=False if no_cache else None,
        )
    except ConfigFileError as e:
        _fail(str(e), 2)
    inboxes = list(dict.fromkeys(a.strip().lower() for a in inbox if a.strip()))
    bad = [a for a in inboxes if "@" not in a]
    if not inboxes or bad:
        _fail(f"--inbox must be an email address, got {', '.join(bad) or 'nothing'}", 2)
    if not db.is_file():
        _fail(f"mail store not found: {db} (build it with `inboxrl ingest`)", 2)
    if cfg.split == "inbox":
        try:
            choose_test_inboxes(inboxes, cfg.test_fraction, cfg.seed, cfg.test_inboxes)
        except SplitError as e:
            _fail(str(e), 2)
    try:
        conn = _open_store(db)
    except Exception as e:  # noqa: BLE001 - not a SQLite file, wrong schema
        _fail(f"cannot read mail store {db}: {e}", 2)

    from inboxrl.models import registry
    from inboxrl.models.base import BackendError
    from inboxrl.models.spec import parse_spec
    from inboxrl.questions.cache import CallCache
    from inboxrl.questions.generate import LazyBackend
    from inboxrl.questions.output import write_run
    from inboxrl.questions.prompt import PROMPT_VERSION
    from inboxrl.questions.split import split_questions
    from inboxrl.questions.support import LexicalSupport

    def lazy(spec: str) -> LazyBackend:
        # A bad spec fails now, before any work; the weights load on the first call the cache cannot answer.
        local = parse_spec(spec).is_local
        opts = {"base_url": base_url} if base_url and not local else {}
        return LazyBackend(spec, lambda: registry.load_backend(spec, **opts))

    try:
        backend = lazy(model)
        support: Any = None
        if cfg.support_check:
            support = (LexicalSupport() if cfg.support_check.strip().lower() == "lexical"
                       else lazy(cfg.support_check))
    except BackendError as e:
        _fail(str(e), 1)

    cache = CallCache((cache_path or out.parent / ".qgen-cache.sqlite") if cfg.cache else None)
    try:
        result = _run_with_progress(conn, inboxes, backend, cfg, cache, support, quiet=as_json)
    except BackendError as e:
        _fail(f"{e} (finished batches are cached; re-run to resume)", 1)
    except KeyboardInterrupt:
        _fail("interrupted; finished batches are cached, re-run to resume", 1)
    finally:
        cache.close()
        conn.close()

    for addr, st in result.per_inbox.items():
        if not st["generation"].seen:
            _err.print(f"[yellow]warning:[/yellow] {addr}: no usable mail in the store "
                       f"({st['selection'].seen} mails in the inbox)", highlight=False)
    splits = None
    if cfg.split != "none":
        try:
            splits = split_questions(result.questions, cfg.split, cfg.test_fraction, cfg.seed, cfg.test_inboxes,
                                     inboxes=inboxes)
            for name, part in splits.items():
                if not part:
                    _err.print(f"[yellow]warning:[/yellow] the {name} split is empty", highlight=False)
        except SplitError as e:
            _err.print(f"[yellow]warning:[/yellow] no split written: {e}", highlight=False)
    meta = {
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": backend.name,
        "prompt_version": PROMPT_VERSION,
        "db": str(db),
        "inboxes": inboxes,
        "config": cfg.model_dump(),
        "command": " ".join(["inboxrl", *sys.argv[1:]]),
    }
    try:
        summary = write_run(out, result, meta, splits)
    except OSError as e:
        _fail(f"cannot write {out}: {e}", 1)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    _print_stages(summary)
    _out.print(f"wrote {summary['questions']} questions to {out}" + "".join(
        f"; {k}: {v['questions']} ({', '.join(v['inboxes']) or '-'})" for k, v in summary["splits"].items()),
        highlight=False)
    t = summary["timing"]
    _out.print(f"model calls {t['model_calls']} (cache hits {t['cache_hits']}), "
               f"{t['s_per_batch'] if t['s_per_batch'] is not None else '-'} s per batch; "
               f"stats in {out.name}.stats.json, drops in {out.name}.dropped.ndjson", highlight=False)


def _open_store(db: Path) -> Any:
    from inboxrl.store.access import Store

    store = Store.open(db)
    store.check()
    return store.conn


def _run_with_progress(conn: Any, inboxes: list[str], backend: Any, cfg: Any, cache: Any, support: Any,
                       quiet: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from inboxrl.questions.generate import generate_questions

    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("batches"),
                  TimeElapsedColumn(), console=_err, disable=quiet, transient=False) as bar:
        task = bar.add_task("batches", total=None)

        def progress(advance: int, total: int) -> None:
            bar.update(task, advance=advance, total=total)

        return generate_questions(conn, inboxes, backend, cfg, cache=cache, support=support, progress=progress)


def _print_stages(summary: dict[str, Any]) -> None:
    table = Table(title="Stage counts", title_justify="left")
    for col in ("stage", "unit", "seen", "kept", "dropped (reason: n)"):
        table.add_column(col, justify="right" if col in ("seen", "kept") else "left")
    for s in summary["stages"]:
        drops = ", ".join(f"{k}: {v}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1])) or "-"
        notes = {k: v for k, v in s["notes"].items() if v not in (None, False, 0)}
        if notes:
            drops += "  [dim](" + ", ".join(f"{k}={v}" for k, v in notes.items()) + ")[/dim]"
        table.add_row(s["name"], s["unit"], str(s["seen"]), str(s["kept"]), drops)
    _out.print(table)


@questions_app.command("stats")
def stats_cmd(
    files: list[Path] = typer.Argument(..., help="Question files (JSONL); several are shown side by side."),
    as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON."),
) -> None:
    """Question/answer length, first-person rate, how_realistic, sources per question, questions per inbox."""
    from inboxrl.questions.schema import QuestionFileError, load_questions
    from inboxrl.questions.stats import question_stats

    results: dict[str, Any] = {}
    for f in files:
        try:
            results[str(f)] = question_stats(load_questions(f))
        except QuestionFileError as e:
            _fail(str(e), 2)
    if as_json:
        typer.echo(json.dumps(results, indent=2, ensure_ascii=False))
        return
    _out.print(stats_table(results))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if not v.is_integer() else str(int(v))
    return str(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def stats_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The stats of one file as (label, value) rows; docs/questions.md uses the same rows."""
    qw, aw, hr = s["question_words"], s["answer_words"], s["how_realistic"]
    sp, pi = s["sources_per_question"], s["questions_per_inbox"]
    rows = [
        ("questions", _fmt(s["questions"])),
        ("question words: mean / median / p90", f"{_fmt(qw['mean'])} / {_fmt(qw['median'])} / {_fmt(qw['p90'])}"),
        ("answer words: mean / median / p90", f"{_fmt(aw['mean'])} / {_fmt(aw['median'])} / {_fmt(aw['p90'])}"),
        ("first-person rate", _pct(s["first_person_rate"])),
        ("ends with '?'", _pct(s["question_mark_rate"])),
        ("how_realistic: mean / median", f"{_fmt(hr['mean'])} / {_fmt(hr['median'])}"),
        ("how_realistic missing", _fmt(hr["missing"])),
    ]
    total = max(1, s["questions"] - hr["missing"])
    for k, v in hr["histogram"].items():
        rows.append((f"  how_realistic {k}", f"{v} ({v / total:.0%})"))
    rows.append(("sources per question: mean / max", f"{_fmt(sp['mean'])} / {_fmt(sp['max'])}"))
    n = max(1, s["questions"])
    three_plus = sum(v for k, v in sp["counts"].items() if k not in ("0", "1", "2"))
    shares = (sp["counts"].get("1", 0), sp["counts"].get("2", 0), three_plus)
    rows.append(("  1 / 2 / 3+ sources", " / ".join(f"{x / n:.0%}" for x in shares)))
    rows.append(("inboxes", _fmt(pi["inboxes"])))
    rows.append(("questions per inbox: min / median / max", (f"{_fmt(pi['min'])} / {_fmt(pi['median'])} / "
                                                             f"{_fmt(pi['max'])}")))
    rows.append(("query dates", f"{s['query_dates']['first'] or '-'} .. {s['query_dates']['last'] or '-'}"))
    return rows


def stats_table(results: dict[str, Any]) -> Table:
    table = Table(title="Question sets", title_justify="left")
    table.add_column("")
    names = list(results)
    for name in names:
        table.add_column(Path(name).name, justify="right")
    per_file = [stats_rows(results[n]) for n in names]
    for i, (label, _v) in enumerate(per_file[0] if per_file else []):
        table.add_row(label, *[rows[i][1] for rows in per_file])
    return table


@questions_app.command("split")
def split_cmd(
    file: Path = typer.Argument(..., help="A question file to split."),
    db: Path | None = typer.Option(None, "--db", help="Split by source: train/validation/test sharing no source mail "
                                                      "(resolved through this store's aliases) and no near-duplicate."),
    out: Path | None = typer.Option(None, "--out", help="With --db: the folder for train/validation/test.jsonl."),
    frozen: Path | None = typer.Option(None, "--frozen", help="With --db: validation and test from a frozen split "
                                                              "file (ids and sha256, checked)."),
    validation_ids: Path | None = typer.Option(None, "--validation-ids", help="With --db: a question file whose ids "
                                                                               "are the validation set."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="With --db: share of components for validation."),
    salt: str = typer.Option("inboxrl-split-v1", "--salt", help="With --db: the hash salt of the draw."),
    keep_ungrounded: bool = typer.Option(False, "--keep-ungrounded", help="With --db: questions whose sources the "
                                                                          "store lacks may train (never held out)."),
    freeze_to: Path | None = typer.Option(None, "--freeze", help="With --db: also write a frozen split file."),
    by: str = typer.Option("inbox", "--by", help="Without --db: inbox | time"),
    test_fraction: float = typer.Option(0.2, "--test-fraction"),
    seed: int = typer.Option(0, "--seed"),
    test_inbox: list[str] = typer.Option([], "--test-inbox", help="Explicit test inbox (repeatable)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """With --db: DIR/train, validation and test.jsonl sharing no source mail and no near-duplicate question (the split
    training uses). Without: FILE.train.jsonl and FILE.test.jsonl, no inbox in both (--by inbox) or test strictly
    later (--by time)."""
    if db is not None:
        _split_by_source(file, db, out, frozen, validation_ids, val_fraction, test_fraction, salt, keep_ungrounded,
                         freeze_to, as_json)
        return
    from inboxrl.questions.output import split_path, write_questions
    from inboxrl.questions.schema import QuestionFileError, load_questions
    from inboxrl.questions.split import SplitError, split_questions

    if by not in ("inbox", "time"):
        _fail(f"--by must be inbox or time, got {by!r}", 2)
    if not 0 < test_fraction < 1:
        _fail("--test-fraction must be between 0 and 1", 2)
    try:
        qs = load_questions(file)
        parts = split_questions(qs, by, test_fraction, seed, [a.lower() for a in test_inbox])  # type: ignore[arg-type]
    except (QuestionFileError, SplitError) as e:
        _fail(str(e), 2)
    summary: dict[str, dict[str, Any]] = {}
    for name, part in parts.items():
        p = split_path(file, name)
        write_questions(p, part)
        summary[name] = {"file": str(p), "questions": len(part),
                         "inboxes": sorted({q.inbox_address for q in part}),
                         "query_dates": [min((q.query_date for q in part), default=None),
                                         max((q.query_date for q in part), default=None)]}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    for name, s in summary.items():
        _out.print(f"{name}: {s['questions']} questions, {len(s['inboxes'])} inboxes, "
                   f"{s['query_dates'][0]} .. {s['query_dates'][1]} -> {s['file']}", highlight=False)


def _split_by_source(file: Path, db: Path, out: Path | None, frozen: Path | None, validation_ids: Path | None,
                     val_fraction: float, test_fraction: float, salt: str, keep_ungrounded: bool,
                     freeze_to: Path | None, as_json: bool) -> None:
    from inboxrl.questions.schema import QuestionFileError, load_questions
    from inboxrl.questions.split import FrozenSplit, SplitError, freeze, split_by_source

    if out is None:
        _fail("--out DIR is required with --db", 2)
    if frozen is not None and validation_ids is not None:
        _fail("--frozen and --validation-ids both choose the validation set; give one", 2)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction <= 1 and val_fraction + test_fraction <= 1):
        _fail("--val-fraction and --test-fraction must lie in [0, 1] and sum to at most 1", 2)
    if not db.is_file():
        _fail(f"mail store not found: {db} (build it with `inboxrl ingest`)", 2)
    try:
        _open_store(db).close()
    except Exception as e:  # noqa: BLE001 - not a SQLite file, wrong schema
        _fail(f"cannot read mail store {db}: {e}", 2)
    try:
        qs = load_questions(file)
        fz = FrozenSplit.load(frozen) if frozen is not None else None
        val = {q.id for q in load_questions(validation_ids)} if validation_ids is not None else None
        res = split_by_source(qs, db, frozen=fz, validation_ids=val, val_fraction=val_fraction,
                              test_fraction=test_fraction, salt=salt, grounded_only=not keep_ungrounded)
    except (QuestionFileError, SplitError) as e:
        _fail(str(e), 2)
    meta = {"questions_file": file.name, "n_loaded": res.n_loaded, "n_grounded": res.n_grounded,
            "frozen": str(frozen) if frozen else None, "frozen_problems": res.frozen_problems}
    assert out is not None
    summary = res.split.write(out, meta)
    if freeze_to is not None:
        freeze(res.split, freeze_to, {
            "questions_file": file.name, "n_grounded": res.n_grounded,
            "made_by": " ".join(["inboxrl", *sys.argv[1:]]) if sys.argv[1:2] == ["questions"] else "inboxrl questions split",
            "rules": "docs/splits.md: no shared source mail (after aliases), no near-duplicate, across parts"})
    brief = {k: summary[k] for k in ("n_loaded", "n_grounded", "frozen_problems")}
    brief.update({p: {"n": summary[p]["n"], "sha256": summary[p]["sha256"]} for p in ("train", "validation", "test")})
    brief["dropped"] = {k: len(v) for k, v in summary["dropped"].items()}
    brief["out"] = str(out)
    if as_json:
        typer.echo(json.dumps(brief, indent=2))
    else:
        _out.print(f"{res.n_loaded} questions, {res.n_grounded} grounded in {db}", highlight=False)
        for p in ("train", "validation", "test"):
            _out.print(f"{p}: {brief[p]['n']} questions, sha256 {brief[p]['sha256'][:12]}… -> {out / (p + '.jsonl')}",
                       highlight=False)
        for k, n in brief["dropped"].items():
            _out.print(f"dropped ({k}): {n}", highlight=False)
    for problem in res.frozen_problems:
        _err.print(f"[yellow]warning:[/yellow] frozen split: {problem}", highlight=False, soft_wrap=True)
