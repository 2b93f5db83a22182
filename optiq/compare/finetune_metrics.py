"""Per-seed metrics of a BC -> RL run over its whole learning curve (bench/sample_efficiency.py).

Each metric compares one run's curve (rows of ``timesteps``/``return_mean``, the first at
step 0 = the BC policy) with a reference:

* ``floor``: the lowest evaluation after step 0 over the return at step 0: did fine-tuning
  ever fall below where BC started?
* ``beyond``: the final return over the demonstrator's return: did RL leave the demos behind?
* ``vs_scratch``: the final return over the best from-scratch agent's final return at the
  same budget.
* ``speedup``: env steps the best scratch agent needs to reach its own final return over env
  steps this run needs to reach it. "Reach" means the return is at or above the target at an
  evaluation *and* the next one (a single lucky evaluation does not count). A run at the
  target from step 0 has an unbounded speedup (``at_start``); a run that never gets there has
  at most ``scratch steps / budget`` (``upper_bound``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optiq.compare.metrics import Curve, steps_to_threshold


def first_sustained_step(curve: Curve, target: float, sustain: int = 2) -> float | None:
    """Env steps of the first evaluation at/above ``target`` with the next one also at/above; None if never."""
    return steps_to_threshold(curve, target, sustain)


def final_return(curve: Curve) -> float:
    return float(curve[-1]["return_mean"])


def floor_ratio(curve: Curve) -> float:
    """Lowest evaluation after step 0 over the return at step 0."""
    start = curve[0]
    if start["timesteps"] != 0:
        raise ValueError("the curve has no evaluation at step 0 (the BC policy)")
    later = [row["return_mean"] for row in curve[1:]]
    if not later or start["return_mean"] <= 0:
        return math.nan
    return float(min(later) / start["return_mean"])


def mean_curve(curves: Sequence[Curve]) -> list[dict[str, float]]:
    """Mean return over seeds at the evaluation steps all curves share."""
    common = set.intersection(*({row["timesteps"] for row in c} for c in curves))
    steps = sorted(common)
    by_step = [{row["timesteps"]: row["return_mean"] for row in c} for c in curves]
    return [{"timesteps": t, "return_mean": float(np.mean([b[t] for b in by_step]))} for t in steps]


@dataclass(frozen=True)
class Speedup:
    """Scratch steps over this run's steps to scratch's final return."""

    value: float  # inf when at_start; the bound when upper_bound
    at_start: bool = False
    upper_bound: bool = False

    def text(self) -> str:
        if self.at_start:
            return "at start"
        return f"{'<' if self.upper_bound else ''}{self.value:.2f}"


def speedup(curve: Curve, scratch_steps: float, target: float, budget: float) -> Speedup:
    """Speedup of ``curve`` over a scratch agent that needed ``scratch_steps`` to reach ``target``."""
    steps = first_sustained_step(curve, target)
    if steps is None:
        return Speedup(scratch_steps / budget, upper_bound=True)
    if steps == 0:
        return Speedup(math.inf, at_start=True)
    return Speedup(scratch_steps / steps)


def median_speedup(values: Sequence[Speedup]) -> Speedup:
    """The median seed's speedup (the lower of the two middle ones for an even count: conservative)."""
    ordered = sorted(values, key=lambda s: s.value)
    return ordered[(len(ordered) - 1) // 2]
