"""The plots of a training run: validation metrics over steps, against the prompted baselines.

"The plot of the talk" is validation accuracy over training steps with one horizontal line per prompted baseline,
each taken from an `inboxrl eval` run's `metrics.json` (same harness, same judge, same questions when the eval ran on
the run's `data/val.jsonl`). Average turns and hallucination rate get the same treatment, and the training reward
is plotted per step. Pure matplotlib with the Agg backend: no display is needed, PNG files come out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (metric key in validation records and eval metrics, file name, y label, y limits or None)
PANELS: tuple[tuple[str, str, str, tuple[float, float] | None], ...] = (
    ("accuracy", "accuracy.png", "validation accuracy", (0.0, 1.0)),
    ("avg_turns", "turns.png", "average turns per episode", None),
    ("hallucination_rate", "hallucination.png", "hallucination rate (answered wrong)", (0.0, 1.0)),
)


@dataclass
class Baseline:
    label: str  # model spec (and the eval dir when several dirs share a model)
    metrics: dict[str, Any]
    source: str


class BaselineError(ValueError):
    """An eval directory without a readable metrics.json; the message names the path."""


def load_baselines(eval_dirs: Sequence[str | Path]) -> list[Baseline]:
    """One baseline per model in each eval dir's metrics.json (`{"models": {spec: metrics}}`)."""
    out: list[Baseline] = []
    for d in eval_dirs:
        p = Path(d)
        f = p / "metrics.json" if p.is_dir() else p
        if not f.is_file():
            raise BaselineError(f"no metrics.json in {p} (run `inboxrl eval --out {p}` first)")
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except ValueError as e:
            raise BaselineError(f"{f}: not valid JSON ({e})") from None
        models = data.get("models") if isinstance(data, dict) else None
        if not isinstance(models, dict) or not models:
            raise BaselineError(f"{f}: no 'models' section")
        for spec, m in models.items():
            out.append(Baseline(label=str(spec), metrics=dict(m or {}), source=str(f)))
    labels = [b.label for b in out]
    for b in out:  # the same model evaluated twice: tell the lines apart by directory
        if labels.count(b.label) > 1:
            b.label = f"{b.label} ({Path(b.source).parent.name})"
    return out


def _num(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return float(v)
    return None


def _series(records: Iterable[dict[str, Any]], kind: str, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric over the run-log records of one kind ("validation" or "train"), the last
    record per step winning; records without a number for `key` (missing or NaN) are left out. One reader for
    both kinds, so the validation panels and the reward panel treat the log alike."""
    by_step: dict[int, float] = {}
    for r in records:
        if r.get("kind") != kind:
            continue
        v = _num(r.get(key))
        if v is not None:
            by_step[int(r.get("step", 0))] = v
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def validation_series(records: Iterable[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric over the validation records, the last record per step winning."""
    return _series(records, "validation", key)


def train_series(records: Iterable[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric over the training-step records, the last record per step winning."""
    return _series(records, "train", key)


def plot_run(records: Sequence[dict[str, Any]], out_dir: str | Path, baselines: Sequence[Baseline] = (),
             title: str = "") -> list[Path]:
    """Writes the PNGs into out_dir and returns their paths. Panels with no data still get a file saying so,
    so a report always has the same set of files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # Every panel spans the run from step 0 to its last step, so a run validated only at its end still shows
    # where that point sits against the baselines, which are the level of step 0.
    last = max([*validation_series(records, "accuracy")[0], *train_series(records, "reward")[0],
                *train_series(records, "episode/reward_mean")[0], 0])
    for key, fname, ylabel, ylim in PANELS:
        steps, values = validation_series(records, key)
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        if steps:
            ax.plot(steps, values, marker="o", color="black", linewidth=2, label="trained policy (validation)")
        else:
            ax.text(0.5, 0.5, "no validation yet", ha="center", va="center", transform=ax.transAxes)
        for i, b in enumerate(baselines):
            v = _num(b.metrics.get(key))
            if v is None:
                continue
            ax.axhline(v, linestyle="--", color=colors[i % len(colors)], label=f"{b.label} (prompted)")
        ax.set_xlabel("training step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if last > 0:
            ax.set_xlim(-0.02 * last, last * 1.04)
        ax.set_ylabel(ylabel)
        if ylim:
            ax.set_ylim(*ylim)
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3)
        if steps or baselines:
            ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        p = out / fname
        fig.savefig(p)
        plt.close(fig)
        paths.append(p)

    # The training reward (mean over each step's rollouts), with its spread.
    steps, mean = train_series(records, "episode/reward_mean")
    if not steps:
        steps, mean = train_series(records, "reward")
    _, std = train_series(records, "episode/reward_std")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if steps:
        ax.plot(steps, mean, color="tab:blue", label="mean reward of the step's rollouts")
        if len(std) == len(mean):
            ax.fill_between(steps, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color="tab:blue", alpha=0.15, label="± std")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no training steps yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("training step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("reward")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p = out / "reward.png"
    fig.savefig(p)
    plt.close(fig)
    paths.append(p)
    return paths


def summary_table(records: Sequence[dict[str, Any]], baselines: Sequence[Baseline] = ()) -> list[dict[str, Any]]:
    """Rows for a before/after table: each baseline, the first and the last validation of the run."""
    keys = ("accuracy", "hallucination_rate", "dont_know_rate", "out_of_turns_rate", "format_error_rate",
            "avg_turns", "mean_reward", "n_scored")
    rows: list[dict[str, Any]] = []
    for b in baselines:
        rows.append({"name": f"{b.label} (prompted)", "step": None, **{k: b.metrics.get(k) for k in keys}})
    vals = [r for r in records if r.get("kind") == "validation"]
    if vals:
        by_step = {int(r.get("step", 0)): r for r in vals}
        first, last = by_step[min(by_step)], by_step[max(by_step)]
        rows.append({"name": "policy, first validation", "step": first.get("step"),
                     **{k: first.get(k) for k in keys}})
        if last is not first:
            rows.append({"name": "policy, last validation", "step": last.get("step"),
                         **{k: last.get(k) for k in keys}})
    return rows


# (metric key, bar panel title, format) of the per-model bars: the report's "what does each model cost" view.
MODEL_BARS: tuple[tuple[str, str, str], ...] = (
    ("accuracy", "accuracy", "pct"),
    ("cost_per_1000_usd", "cost per 1,000 questions (USD)", "usd"),
    ("latency_p50_s", "latency p50 (s)", "f1"),
)


def model_rows(records: Sequence[dict[str, Any]], baselines: Sequence[Baseline] = ()) -> list[tuple[str, dict[str, Any]]]:
    """(label, metrics) per bar: each baseline model, then the policy at its last validation."""
    rows = [(f"{b.label} (prompted)", b.metrics) for b in baselines]
    vals = {int(r.get("step", 0)): r for r in records if r.get("kind") == "validation"}
    if vals:
        last = max(vals)
        rows.append((f"policy, step {last}", vals[last]))
    return rows


def check_series(records: Iterable[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """Detector counts over steps: every `checks/<name>` key of the run log, per name (validation records win
    over train records of the same step, as they are written later)."""
    recs = list(records)
    names = sorted({k[len("checks/"):] for r in recs for k in r if k.startswith("checks/")})
    out: dict[str, tuple[list[int], list[float]]] = {}
    for n in names:
        by_step: dict[int, float] = {}
        for r in recs:
            v = _num(r.get(f"checks/{n}"))
            if v is not None:
                by_step[int(r.get("step", 0))] = v
        steps = sorted(by_step)
        out[n] = (steps, [by_step[s] for s in steps])
    return out


def plot_models_and_checks(records: Sequence[dict[str, Any]], out_dir: str | Path,
                           baselines: Sequence[Baseline] = ()) -> list[Path]:
    """models.png (accuracy / cost / latency bars per model) and checks.png (detector counts over steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = model_rows(records, baselines)
    fig, axes = plt.subplots(1, len(MODEL_BARS), figsize=(4.2 * len(MODEL_BARS), 4.2), dpi=110)
    for ax, (key, title, _) in zip(axes, MODEL_BARS):
        labels = [label for label, _ in rows]
        bars = [_num(m.get(key)) for _, m in rows]
        ax.bar(range(len(rows)), [v if v is not None else 0.0 for v in bars], color="tab:blue")
        for i, v in enumerate(bars):
            ax.text(i, v or 0.0, "n/a" if v is None else f"{v:.2f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=7)
        ax.set_title(title, fontsize=10)
        if key == "accuracy":
            ax.set_ylim(0, 1)
        if not rows:
            ax.text(0.5, 0.5, "no models", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    p_models = out / "models.png"
    fig.savefig(p_models)
    plt.close(fig)

    series = check_series(records)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for name, (steps, values) in series.items():
        ax.plot(steps, values, marker="o", label=name)
    if series:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no detector counts in this run", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("training step")
    ax.set_ylabel("episodes flagged")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p_checks = out / "checks.png"
    fig.savefig(p_checks)
    plt.close(fig)
    return [p_models, p_checks]


def _cell(v: Any, kind: str = "") -> str:
    """An HTML cell's text in the eval table's formats (`evaluation.table.fmt`), with one decimal for rates."""
    from html import escape

    from inboxrl.evaluation.table import fmt

    n = _num(v)
    if n is None:
        return "–" if v is None else escape(str(v))
    return escape(fmt(n, {"pct": "pct1", "": "g"}.get(kind, kind)))


def write_report_html(records: Sequence[dict[str, Any]], out_dir: str | Path, plots: Sequence[Path],
                      baselines: Sequence[Baseline] = (), title: str = "") -> Path:
    """report.html beside the PNGs: every plot, and the tables of the same numbers (all from the run files).
    Every string from the files is escaped; the page has no script."""
    from html import escape

    out = Path(out_dir)
    rows = summary_table(records, baselines)
    cols = [("accuracy", "pct"), ("hallucination_rate", "pct"), ("dont_know_rate", "pct"),
            ("out_of_turns_rate", "pct"), ("format_error_rate", "pct"), ("avg_turns", "f1"), ("mean_reward", "f3"),
            ("n_scored", "")]
    h: list[str] = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
                    f"<title>{escape(title or 'inboxrl report')}</title>",
                    ("<style>body{font:14px system-ui,sans-serif;margin:16px}table{border-collapse:collapse}"
                     "td,th{border:1px solid #ccc;padding:3px 7px}td{text-align:right}img{max-width:100%}</style>"),
                    f"</head><body><h1>{escape(title or 'inboxrl report')}</h1>"]
    h.append("<h2>before and after</h2><table><tr><th></th><th>step</th>"
             + "".join(f"<th>{escape(k)}</th>" for k, _ in cols) + "</tr>")
    for r in rows:
        h.append(f"<tr><th>{escape(str(r['name']))}</th><td>{_cell(r['step'])}</td>"
                 + "".join(f"<td>{_cell(r.get(k), f)}</td>" for k, f in cols) + "</tr>")
    h.append("</table><h2>per model</h2><table><tr><th></th>"
             + "".join(f"<th>{escape(t)}</th>" for _, t, _ in MODEL_BARS) + "</tr>")
    for label, m in model_rows(records, baselines):
        h.append(f"<tr><th>{escape(label)}</th>" + "".join(f"<td>{_cell(m.get(k), f)}</td>" for k, _, f in MODEL_BARS)
                 + "</tr>")
    h.append("</table>")
    series = check_series(records)
    if series:
        steps = sorted({s for ss, _ in series.values() for s in ss})
        h.append("<h2>detector counts over steps</h2><table><tr><th>step</th>"
                 + "".join(f"<th>{escape(n)}</th>" for n in series) + "</tr>")
        for s in steps:
            cells = []
            for ss, vs in series.values():
                cells.append(f"<td>{_cell(vs[ss.index(s)])}</td>" if s in ss else "<td>–</td>")
            h.append(f"<tr><td>{s}</td>{''.join(cells)}</tr>")
        h.append("</table>")
    h.append("<h2>plots</h2>")
    for p in plots:
        h.append(f"<p><img src='{escape(p.name)}' alt='{escape(p.stem)}'></p>")
    sources = "".join(f"<li>{escape(b.source)}</li>" for b in baselines)
    h.append(f"<p>Baselines from:</p><ul>{sources or '<li>none</li>'}</ul></body></html>")
    path = out / "report.html"
    path.write_text("\n".join(h), encoding="utf-8")
    return path
