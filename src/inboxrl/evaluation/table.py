"""The metrics table, one row per model: the same columns in `inboxrl eval`, benchmarks and docs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

COLUMNS: list[tuple[str, str, str]] = [
    # (metrics key, header, format)
    ("n_scored", "n", "int"),
    ("accuracy", "accuracy [95% CI]", "pct_ci"),
    ("hallucination_rate", "wrong [95% CI]", "pct_ci"),
    ("dont_know_rate", "I don't know", "pct"),
    ("out_of_turns_rate", "out of turns", "pct"),
    ("format_error_rate", "format err.", "pct"),
    ("sources_correct_rate", "sources ok", "pct"),
    ("found_source_rate", "found src", "pct"),
    ("avg_turns", "avg turns", "f1"),
    ("latency_p50_s", "p50 s", "f1"),
    ("latency_p95_s", "p95 s", "f1"),
    ("avg_tokens", "tokens", "int"),
    ("cost_per_1000_usd", "$/1k q", "usd"),
]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


_FORMATS: dict[str, Callable[[Any], str]] = {
    "pct": lambda v: f"{100 * v:.0f}%",
    "pct1": lambda v: f"{100 * v:.1f}%",
    "f1": lambda v: f"{v:.1f}",
    "f3": lambda v: f"{v:.3f}",
    "int": lambda v: f"{round(v):,}",
    "usd": lambda v: f"{v:.2f}",
    "g": lambda v: f"{v:g}",
}


def fmt(value: Any, kind: str) -> str:
    if _missing(value):
        return "unknown" if kind == "usd" else "-"
    return _FORMATS.get(kind, str)(value)


def fmt_ci(m: dict[str, Any], key: str) -> str:
    """`20.8% [10.0–32.5]`: the rate and its 95% interval (`<key>_ci95_lo/hi`); the rate alone when a metrics file
    predates the intervals."""
    value: Any = m.get(key)
    lo: Any = m.get(f"{key}_ci95_lo")
    hi: Any = m.get(f"{key}_ci95_hi")
    if _missing(value):
        return "-"
    if _missing(lo) or _missing(hi):
        return f"{100 * value:.1f}%"
    return f"{100 * value:.1f}% [{100 * lo:.1f}–{100 * hi:.1f}]"


def rows(models: dict[str, dict[str, Any]]) -> list[list[str]]:
    return [[name] + [fmt_ci(m, k) if f == "pct_ci" else fmt(m.get(k), f) for k, _, f in COLUMNS]
            for name, m in models.items()]


def rich_table(models: dict[str, dict[str, Any]], title: str | None = None) -> Any:
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    table.add_column("model", style="cyan", no_wrap=True)
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right")
    for r in rows(models):
        table.add_row(*r)
    return table


def markdown_table(models: dict[str, dict[str, Any]]) -> str:
    header = ["model"] + [h for _, h, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(models)]
    return "\n".join(lines)
