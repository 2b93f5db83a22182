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


def steps_to_threshold(curve: Curve, threshold: float) -> float | None:
    """Env steps of the first evaluation whose mean return reaches ``threshold``; None if never."""
    for row in curve:
        if row["return_mean"] >= threshold:
            return float(row["timesteps"])
    return None
