"""Learning-curve arithmetic for the comparison: pure functions on (timesteps, return) rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Curve = Sequence[dict[str, float]]  # rows with "timesteps" and "return_mean", sorted by timesteps


def return_at(curve: Curve, timesteps: float) -> float | None:
    """Return at ``timesteps``, linearly interpolated between evaluations; None past the curve's end."""
    if not curve:
        return None
    xs = np.array([row["timesteps"] for row in curve], dtype=float)
    ys = np.array([row["return_mean"] for row in curve], dtype=float)
    if timesteps > xs[-1] + 1e-9 or timesteps < xs[0] - 1e-9:
        return None
    return float(np.interp(timesteps, xs, ys))


def steps_to_threshold(curve: Curve, threshold: float) -> float | None:
    """Env steps of the first evaluation whose mean return reaches ``threshold``; None if never."""
    for row in curve:
        if row["return_mean"] >= threshold:
            return float(row["timesteps"])
    return None


@dataclass(frozen=True)
class Speedup:
    """How many times fewer env steps BC->RL needed than scratch to reach the threshold."""

    value: float | None  # None: BC->RL never reached the threshold
    lower_bound: bool  # True: scratch never reached it, so value = budget / BC->RL steps

    def text(self) -> str:
        if self.value is None:
            return "n/a (BC->RL did not reach the threshold)"
        if math.isinf(self.value):
            return "inf (BC alone is already at the threshold)"
        return f"{'>= ' if self.lower_bound else ''}{self.value:.2f}x"


def speedup(scratch_steps: float | None, bc_rl_steps: float | None, budget: float) -> Speedup:
    """Speedup of BC->RL over scratch in env steps to threshold.

    If scratch never reached the threshold within ``budget``, the true speedup is at least
    ``budget / bc_rl_steps``, reported as a lower bound.
    """
    if bc_rl_steps is None:
        return Speedup(None, False)
    if bc_rl_steps == 0:
        return Speedup(math.inf, scratch_steps is None)
    if scratch_steps is None:
        return Speedup(budget / bc_rl_steps, True)
    return Speedup(scratch_steps / bc_rl_steps, False)


def mean_curve(
    curves: Sequence[Curve], grid: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std across seeds on a common grid (each curve interpolated; curves may differ in length).

    Grid points past the end of a curve use only the curves that reach them.
    """
    if grid is None:
        grid = sorted({row["timesteps"] for curve in curves for row in curve})
    grid_arr = np.asarray(grid, dtype=float)
    means, stds = [], []
    for t in grid_arr:
        values = [v for v in (return_at(c, t) for c in curves) if v is not None]
        means.append(np.mean(values) if values else np.nan)
        stds.append(np.std(values) if values else np.nan)
    return grid_arr, np.asarray(means), np.asarray(stds)


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    return float(np.mean(present)), float(np.std(present))
