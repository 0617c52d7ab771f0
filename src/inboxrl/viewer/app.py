"""The viewer's web app (FastAPI + Jinja2): runs, questions side by side, one episode, its emails, blind labels.

Mail and model output are hostile, so every value goes through Jinja's autoescape, no page carries a script of its
own, and the Content-Security-Policy forbids scripts outright: an escaping slip would still run nothing. Links are
built from the app's own paths with URL-encoded ids, never from content.
"""

from __future__ import annotations

import hmac
import math
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from inboxrl.scoring.reward import RewardConfig, reward, tier
from inboxrl.viewer import episode as episode_view
from inboxrl.viewer import labels as blind
from inboxrl.viewer.index import OUTCOME_LABELS, OUTCOMES, EpisodeRef
from inboxrl.viewer.runs import Column, Runs, detector_names

PAGE_SIZE = 50
TOKEN_COOKIE = "inboxrl_view_token"
CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
       "base-uri 'none'; frame-ancestors 'none'")
SHOWS = ("all", *OUTCOMES[:-1], "had_format_error", "flagged", "changed")
SHOW_LABELS = {"all": "all", **OUTCOME_LABELS, "had_format_error": "had a format error",
               "flagged": "flagged by a detector", "changed": "changed between the two runs"}


class _Guard(BaseHTTPMiddleware):
    """Security headers on every response; with a token, every request must carry it (query, cookie or bearer)."""

    def __init__(self, app: Any, token: str | None):
        super().__init__(app)
        self.token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        set_cookie = False
        if self.token:
            given = (request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE)
                     or request.headers.get("authorization", "").removeprefix("Bearer ").strip())
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return PlainTextResponse("401: this viewer needs its token (?token=...)", status_code=401)
            set_cookie = "token" in request.query_params
        if request.method == "POST":  # a form posted from another site's page is refused
            origin = request.headers.get("origin")
            if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
                return PlainTextResponse("403: cross-site form", status_code=403)
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes a browser send Origin: null
        if set_cookie and self.token:
            resp.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        return resp


def _fmt(v: Any, kind: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if kind == "pct":
        return f"{100 * float(v):.1f}%"
    if kind == "usd":
        return f"${float(v):.2f}"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


METRIC_COLUMNS = [  # (key, header, format): the runs page's table
    ("n_scored", "n", ""), ("accuracy", "accuracy", "pct"), ("hallucination_rate", "wrong", "pct"),
    ("dont_know_rate", "I don't know", "pct"), ("out_of_turns_rate", "out of turns", "pct"),
    ("format_error_rate", "format errors", "pct"), ("avg_turns", "turns", ""),
    ("latency_p50_s", "latency p50 s", ""), ("latency_p95_s", "p95 s", ""),
    ("cost_per_1000_usd", "cost per 1,000", "usd"),
]


def _index_metrics(c: Column) -> dict[str, Any]:
    """Rates from the index, for a run without metrics.json (a bare trajectories file)."""
    n = len(c.refs)
    if not n:
        return {}
    count = {o: sum(1 for r in c.refs if r.outcome == o) for o in OUTCOMES}
    return {"n_scored": n - count["unscored"], "accuracy": count["right"] / n, "hallucination_rate": count["wrong"] / n,
            "dont_know_rate": count["idk"] / n, "out_of_turns_rate": count["out_of_turns"] / n,
            "format_error_rate": sum(1 for r in c.refs if r.format_errors) / n,
            "avg_turns": sum(r.turns for r in c.refs) / n}


def _curve_svg(points: list[tuple[int, float]], w: int = 420, h: int = 160) -> dict[str, Any] | None:
    """Coordinates of a small line plot (numbers only; the template draws it as inline SVG)."""
    if not points:
        return None
    xs = [p[0] for p in points]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    pad = 30

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (w - 2 * pad)

    def sy(y: float) -> float:
        return h - pad + (pad * 2 - h) * y  # y in 0..1

    pts = [(round(sx(x), 1), round(sy(y), 1), x, y) for x, y in points]
    return {"w": w, "h": h, "pad": pad, "polyline": " ".join(f"{a},{b}" for a, b, _, _ in pts), "points": pts,
            "y0": sy(0), "y1": sy(1)}


def create_app(run_paths: list[str | Path], db: str | Path | None = None, labels: str | Path | None = None,
               token: str | None = None) -> FastAPI:
    runs = Runs(list(run_paths))
    if labels is not None:
        lp = Path(labels).resolve()
        for r in runs.runs:
            if lp == r.path or r.path in lp.parents:
                raise ValueError(f"--labels {lp} is inside the run {r.path}: the viewer writes nothing into runs")
    qcols = runs.question_columns
    # One row per question, in order of first appearance; cells index each column's refs.
    order: dict[str, str] = {}
    for c in qcols:
        for ref in c.refs:
            order.setdefault(ref.question_id, ref.question)
    rows = list(order.items())
    blind_pool = blind.pool(qcols) if labels is not None else []
    reward_cfg = RewardConfig()

    env = jinja2.Environment(loader=jinja2.PackageLoader("inboxrl.viewer", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["fmt"] = _fmt
    env.globals.update(OUTCOME_LABELS=OUTCOME_LABELS, SHOW_LABELS=SHOW_LABELS, METRIC_COLUMNS=METRIC_COLUMNS)
    templates = Jinja2Templates(env=env)
    app = FastAPI(title="inboxrl viewer", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_Guard, token=token)

    def page(request: Request, name: str, **ctx: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"runs": runs.runs, "has_labels": labels is not None,
                                                          **ctx})

    def col_or_404(cid: int) -> Column:
        if not 0 <= cid < len(runs.columns):
            raise _not_found(f"no run column {cid}")
        return runs.columns[cid]

    def ref_or_404(c: Column, i: int) -> EpisodeRef:
        if not 0 <= i < len(c.refs):
            raise _not_found(f"no episode {i} in {c.label}")
        return c.refs[i]

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request) -> HTMLResponse:
        views = []
        for r in runs.runs:
            cols = [{"col": c, "m": c.metrics or _index_metrics(c)} for c in r.columns]
            names, over = r.checks_over_steps()
            views.append({"run": r, "cols": cols, "detectors": detector_names(r.columns),
                          "curve": _curve_svg(r.validation_curve()), "check_names": names, "check_steps": over})
        return page(request, "runs.html", views=views)

    @app.get("/questions", response_class=HTMLResponse)
    def questions_page(request: Request, col: str = "0", show: str = "all", b: str = "", q: str = "",
                       step: str = "", page_no: str = "1") -> HTMLResponse:
        # A form sends "" for "none chosen": parsed here, so an empty or odd value is a default, not an error page.
        return questions(request, _int(col) or 0, show, _int(b), q, _int(step), _int(page_no) or 1)

    def questions(request: Request, col: int, show: str, b: int | None, q: str, step: int | None,
                  page_no: int) -> HTMLResponse:
        if not qcols:
            return page(request, "questions.html", cols=[], shown=[], rows=[], total=0, ctx={}, pages=1)
        a = col_or_404(col) if col < len(runs.columns) else qcols[0]
        other = col_or_404(b) if b is not None else None
        shown = [c for c in qcols if c.kind != "validation" or step is None or c.step == step]
        if show not in SHOWS:
            show = "all"
        needle = q.strip().lower()
        picked = []
        for qid, text in rows:
            ia = a.by_qid.get(qid)
            ra = a.refs[ia] if ia is not None else None
            if show in OUTCOMES and (ra is None or ra.outcome != show):
                continue
            if show == "had_format_error" and (ra is None or not ra.format_errors):
                continue
            if show == "flagged" and (ra is None or not a.flags_of(ra)):
                continue
            if show == "changed":
                ib = other.by_qid.get(qid) if other is not None else None
                if ra is None or ib is None or other is None or other.refs[ib].outcome == ra.outcome:
                    continue
            if needle and needle not in qid.lower() and needle not in text.lower() and not any(
                    needle in c.refs[c.by_qid[qid]].answer.lower() for c in shown if qid in c.by_qid):
                continue
            picked.append((qid, text))
        pages = max(1, math.ceil(len(picked) / PAGE_SIZE))
        page_no = min(max(1, page_no), pages)
        out = []
        for qid, text in picked[(page_no - 1) * PAGE_SIZE: page_no * PAGE_SIZE]:
            cells = []
            for c in shown:
                i = c.by_qid.get(qid)
                cells.append(None if i is None else {"col": c, "i": i, "ref": c.refs[i], "flags": c.flags_of(c.refs[i])})
            out.append({"qid": qid, "question": text, "cells": cells})
        ctx = {"col": a.id, "show": show, "b": other.id if other else None, "q": q, "step": step}

        def link(**kw: Any) -> str:
            d = {**ctx, **kw}
            return "/questions?" + urlencode({k: v for k, v in d.items() if v not in (None, "")})

        steps = sorted({c.step for c in qcols if c.kind == "validation" and c.step is not None})
        return page(request, "questions.html", cols=qcols, shown=shown, rows=out, total=len(picked), ctx=ctx,
                    page_no=page_no, pages=pages, link=link, shows=SHOWS, steps=steps)

    @app.get("/episode/{cid}/{i}", response_class=HTMLResponse)
    def episode_page(request: Request, cid: int, i: int) -> HTMLResponse:
        c = col_or_404(cid)
        ref = ref_or_404(c, i)
        t = c.index.load(ref)
        terms = None
        if t.rubric is not None:
            terms = _reward_terms(t.rubric, reward_cfg)
        group = []
        if c.kind == "rollouts":  # a GRPO group: the rollouts of the same question in the same step
            for j, r in enumerate(c.refs):
                if r.question_id == ref.question_id:
                    tj = t if j == i else c.index.load(r)
                    group.append({"i": j, "t": tj, "steps": episode_view.steps(tj), "outcome": r.outcome})
        elsewhere = [{"col": o, "i": o.by_qid[ref.question_id], "ref": o.refs[o.by_qid[ref.question_id]]}
                     for o in qcols if o.id != c.id and ref.question_id in o.by_qid]
        return page(request, "episode.html", c=c, i=i, ref=ref, t=t, steps=episode_view.steps(t), terms=terms,
                    group=group, elsewhere=elsewhere, flags=c.flags_of(ref), has_db=db is not None)

    @app.get("/email/{cid}/{i}", response_class=HTMLResponse)
    def email_page(request: Request, cid: int, i: int, id: str = "") -> HTMLResponse:
        c = col_or_404(cid)
        ref = ref_or_404(c, i)
        t = c.index.load(ref)
        email, error = None, None
        if db is None:
            error = "start the viewer with --db STORE to open emails"
        else:
            email, error = _read_email(db, t.inbox_address, t.query_date, id)
        return page(request, "email.html", c=c, i=i, t=t, message_id=id, email=email, error=error)

    @app.get("/rollouts/{cid}", response_class=HTMLResponse)
    def rollouts_page(request: Request, cid: int) -> HTMLResponse:
        c = col_or_404(cid)
        groups: dict[str, list[tuple[int, EpisodeRef]]] = {}
        for j, r in enumerate(c.refs):
            groups.setdefault(r.question_id, []).append((j, r))
        return page(request, "rollouts.html", c=c, groups=groups)

    @app.get("/label", response_class=HTMLResponse)
    def label_page(request: Request) -> HTMLResponse:
        if labels is None:
            return page(request, "label.html", item=None, t=None, done=0, total=0, disabled=True, pos=-1)
        sheet = blind.Sheet(labels)
        done = sheet.labelled()
        todo = [(n, it) for n, it in enumerate(blind_pool) if it.key not in done]
        if not todo:
            return page(request, "label.html", item=None, t=None, done=len(blind_pool), total=len(blind_pool),
                        disabled=False, pos=-1)
        n, it = todo[0]
        c = runs.columns[it.column]
        t = c.index.load(c.refs[it.position])
        return page(request, "label.html", item=it, t=t, done=len(blind_pool) - len(todo), total=len(blind_pool),
                    disabled=False, pos=n)

    @app.post("/label")
    def label_post(pos: int = Form(...), label: str = Form(...)) -> Response:
        if labels is None:
            return PlainTextResponse("400: start the viewer with --labels FILE", status_code=400)
        if label not in blind.LABELS or not 0 <= pos < len(blind_pool):
            return PlainTextResponse("400: unknown label or item", status_code=400)
        it = blind_pool[pos]
        c = runs.columns[it.column]
        t = c.index.load(c.refs[it.position])
        blind.Sheet(labels).put(t.question_id, t.question, t.golden_answer or "", t.final_answer or "", label)
        return RedirectResponse("/label", status_code=303)

    return app


def _not_found(detail: str) -> HTTPException:
    return HTTPException(status_code=404, detail=detail)


def _int(v: str) -> int | None:
    try:
        return int(v)
    except ValueError:
        return None


def _reward_terms(r: Any, cfg: RewardConfig) -> dict[str, Any]:
    """The reward's tier and each term that moved it inside the band (docs/reward.md), from the rubric."""
    t = tier(r)
    base = {"format_error": cfg.format_error_base, "wrong": cfg.wrong_base, "no_answer": cfg.no_answer_base,
            "correct": cfg.correct_base}[t]
    terms: list[tuple[str, float]] = [("neutral point in the band", cfg.neutral)]
    if t == "correct":
        terms.append(("sources bonus", cfg.sources_bonus * (1.0 if r.sources_correct else 0.0)))
        mt = max(r.max_turns, 1)
        terms.append(("turns bonus", cfg.turns_bonus * min(1.0, max(0.0, 1.0 - (r.num_turns - 1) / mt))))
    else:
        terms.append(("found a source", cfg.found_source_credit * r.found_source_in_search))
        terms.append(("read a source", cfg.read_source_credit * r.read_source))
    terms.append(("format errors", -cfg.format_error_penalty * r.total_format_errors))
    terms.append(("invalid reads", -cfg.invalid_read_penalty * r.invalid_read_attempts))
    terms.append(("refused answers", -cfg.refused_answer_penalty * r.refused_answers))
    terms.append(("out of turns", -cfg.out_of_turns_penalty * r.ran_out_of_turns))
    return {"tier": t, "base": base, "terms": terms, "band": cfg.band, "total": reward(r, cfg)}


def _read_email(db: str | Path, inbox: str, day: str, message_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The whole email, through the agent's own scope check (this inbox, before the question's day)."""
    from inboxrl.tools.base import Scope, ToolNotFound
    from inboxrl.tools.inbox import InboxTools, StoreOpenError, ToolsConfig

    try:
        tools = InboxTools(db, Scope(inbox=inbox, before=day), ToolsConfig(body_char_limit=10**9))
    except (StoreOpenError, ValueError) as e:
        return None, str(e)
    try:
        return tools.read_email(message_id), None
    except ToolNotFound:
        return None, f"no email {message_id!r} in {inbox} before {day}"
    finally:
        tools.close()
