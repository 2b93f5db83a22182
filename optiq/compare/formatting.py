"""How numbers of a results row are written in the table, the verdict and the report."""

from __future__ import annotations

from typing import Any

import numpy as np

from optiq.compare.statistics import (
    Estimate,
)


def format_number(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def count_unit(row: dict[str, Any]) -> str:
    """What the row's n counts: seeds (BC seeds for BC only); "episode" only in results written before BC seeds."""
    return row.get("unit", "seed")


def count_text(row: dict[str, Any]) -> str:
    unit = count_unit(row)
    return f"{row['n']} {unit}{'s' if row['n'] != 1 else ''}"


AGGREGATE_TITLES = {"iqm": "IQM", "mean": "mean"}


def row_estimate(row: dict[str, Any], key: str, interval_key: str | None = None) -> Estimate | None:
    """The row's ``key`` with its interval (``<key>_ci_low``/``_ci_high``, kind in ``<key>_interval``)."""
    value = row.get(key)
    if value is None:
        return None
    low, high = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    interval = row.get(interval_key or f"{key}_interval") or "ci95"
    if low is None or high is None:
        low, high, interval = value, value, "none"
    return Estimate(value, low, high, interval, row.get("n"))


def interval_text(row: dict[str, Any], key: str, digits: int = 1) -> str:
    est = row_estimate(row, key, "prob_improvement_interval" if key == "prob_improvement_vs_scratch" else None)
    return "n/a" if est is None else est.text(digits)


def quote_aggregate(row: dict[str, Any], digits: int = 0, key: str = "final_return") -> str:
    """The reported aggregate as the table shows it: "IQM 1,234 [1,100, 1,300]", "mean 1,234 [min .., max ..]",
    or the one value."""
    est = row_estimate(row, key)
    if est is None:
        return "n/a"
    if est.interval == "none":
        return est.text(digits)
    return f"{AGGREGATE_TITLES[row.get('aggregate', 'iqm')]} {est.text(digits)}"
