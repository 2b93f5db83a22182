"""Learning-curve arithmetic for the comparison: pure functions on (timesteps, return) rows."""

from __future__ import annotations

from collections.abc import Sequence

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


SUSTAIN = 2  # evaluations in a row at/above the threshold that count as "reached"


def steps_to_threshold(curve: Curve, threshold: float, sustain: int = SUSTAIN) -> float | None:
    """Env steps of the first evaluation that reaches ``threshold`` and stays there; None if never.

    "Reached" means the mean return is at or above ``threshold`` at this evaluation *and* the
    next ``sustain - 1`` ones (default: two consecutive evaluations), so one lucky evaluation
    of a few noisy episodes does not count. The last evaluations of a curve count if they are
    at or above up to its end (the last one on its own).
    """
    returns = [row["return_mean"] for row in curve]
    for i, row in enumerate(curve):
        if all(r >= threshold for r in returns[i : i + sustain]):
            return float(row["timesteps"])
    return None
