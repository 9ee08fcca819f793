"""Metrics series as sparklines: a training run's losses, a backtest's equity, one line each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TICKS = "▁▂▃▄▅▆▇█"
WIDTH = 40
"""Points drawn at most; longer series are averaged into this many buckets."""
CURVES = (("epochs", "train_loss"), ("epochs", "val_loss"), ("equity", "portfolio_value"))


def sparkline(values: Sequence[float], width: int = WIDTH) -> str:
    """One tick per value (or per bucket of values, averaged), lowest ▁ to highest █."""
    if not values:
        return ""
    if len(values) > width:
        edges = [round(i * len(values) / width) for i in range(width + 1)]
        values = [
            sum(values[a:b]) / (b - a) for a, b in zip(edges, edges[1:], strict=False) if b > a
        ]
    low, high = min(values), max(values)
    span = high - low
    top = len(TICKS) - 1
    return "".join(TICKS[round((v - low) / span * top) if span else 0] for v in values)


def _number(value: float, name: str) -> str:
    return f"{value:,.2f}" if name == "portfolio_value" else f"{value:.4g}"


def curve_line(name: str, values: Sequence[float], unit: str) -> str:
    """ "val_loss    ▇▅▄▃▂▁  0.912 → 0.104 (min 0.101, 60 epochs)"."""
    first, last, low = values[0], values[-1], min(values)
    lowest = f"min {_number(low, name)}, " if name.endswith("loss") else ""
    summary = f"{_number(first, name)} → {_number(last, name)} ({lowest}{len(values)} {unit})"
    return f"{name:<17}{sparkline(values)}  {summary}"


def metric_lines(series: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The curves a person looks at, or one line saying there are none yet."""
    units = {"epochs": "epochs", "equity": "samples"}
    lines = []
    for series_name, field in CURVES:
        values = [p[field] for p in series.get(series_name, []) if p.get(field) is not None]
        if values:
            lines.append(curve_line(field, values, units[series_name]))
    return ["", "metrics:", *lines] if lines else ["", "metrics:  none recorded yet"]
