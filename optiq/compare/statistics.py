"""Multi-seed statistics for the verdict (rliable where it applies, plain bootstrap elsewhere).

* IQM and mean of per-seed scores with stratified-bootstrap 95 % CIs (rliable).
* Probability of improvement P(BC->RL > scratch) with its CI (rliable).
* Env steps to a threshold and the speedup ratio with percentile-bootstrap CIs: seeds are
  resampled independently per method; a seed that never reached the threshold counts as
  the full budget, which makes the estimate a lower bound (flagged).
* Normalised scores: 0 = random policy, 1 = expert.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiq.compare.metrics import Curve, return_at, steps_to_threshold
from optiq.extras import require

DEFAULT_REPS = 2000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a 95 % confidence interval."""

    value: float
    low: float
    high: float

    def text(self, digits: int = 1) -> str:
        return f"{self.value:,.{digits}f} [{self.low:,.{digits}f}, {self.high:,.{digits}f}]"

    def to_json(self) -> dict[str, float]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high}


def normalized(returns: np.ndarray | float, random_return: float, expert_return: float) -> np.ndarray:
    """Map returns to 0 (random policy) .. 1 (expert)."""
    span = expert_return - random_return
    if span == 0:
        raise ValueError("expert and random returns are equal; normalised scores are undefined")
    return (np.asarray(returns, dtype=float) - random_return) / span


def _rliable() -> tuple[Any, Any]:
    rly = require("rliable.library", "confidence intervals (06_compare)")
    return rly, require("rliable.metrics", "confidence intervals (06_compare)")


@contextmanager
def _rliable_seed(seed: int) -> Iterator[np.random.RandomState]:
    """A ``random_state`` for rliable, with NumPy's global RNG seeded for the call and restored after.

    rliable's stratified bootstraps draw their resampling indices from the global RNG
    (``np.random.choice``); their ``random_state`` only seeds arch's generator, which they do
    not use. Without this, the same scores gave different CIs from run to run.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield np.random.RandomState(seed)
    finally:
        np.random.set_state(state)


def iqm_and_mean(scores: Sequence[float], reps: int = DEFAULT_REPS, seed: int = 0) -> dict[str, Estimate]:
    """IQM and mean of per-seed scores with stratified-bootstrap 95 % CIs (one task)."""
    rly, metrics = _rliable()
    matrix = np.asarray(scores, dtype=float).reshape(-1, 1)

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    with warnings.catch_warnings(), _rliable_seed(seed) as random_state:
        warnings.filterwarnings("ignore", category=FutureWarning)
        points, intervals = rly.get_interval_estimates({"m": matrix}, aggregate, reps=reps, random_state=random_state)
    point, ci = points["m"], intervals["m"]
    return {
        "iqm": Estimate(float(point[0]), float(ci[0, 0]), float(ci[1, 0])),
        "mean": Estimate(float(point[1]), float(ci[0, 1]), float(ci[1, 1])),
    }


def probability_of_improvement(
    x: Sequence[float], y: Sequence[float], reps: int = DEFAULT_REPS, seed: int = 0
) -> Estimate:
    """P(a random run of X scores higher than a random run of Y), ties count half (rliable)."""
    rly, metrics = _rliable()
    pair = [np.asarray(x, dtype=float).reshape(-1, 1), np.asarray(y, dtype=float).reshape(-1, 1)]
    with warnings.catch_warnings(), _rliable_seed(seed) as random_state:
        warnings.filterwarnings("ignore", category=FutureWarning)
        points, intervals = rly.get_interval_estimates(
            {"xy": pair},
            lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
            reps=reps,
            random_state=random_state,
        )
    return Estimate(float(points["xy"][0]), float(intervals["xy"][0, 0]), float(intervals["xy"][1, 0]))


def _steps_or_budget(curves: Sequence[Curve], threshold: float, budget: float) -> tuple[np.ndarray, int]:
    """Steps to ``threshold`` per curve (the whole budget where never reached) and how many reached it."""
    steps = [steps_to_threshold(c, threshold) for c in curves]
    return np.array([s if s is not None else budget for s in steps], dtype=float), sum(s is not None for s in steps)


def _percentile_estimate(value: float, samples: np.ndarray) -> Estimate:
    return Estimate(value, float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5)))


def _bootstrap(values: np.ndarray, stat, reps: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(values), size=(reps, len(values)))
    return np.array([stat(values[i]) for i in idx])


@dataclass(frozen=True)
class StepsEstimate:
    """Mean env steps to the threshold over seeds, with CI; ``lower_bound`` if some seed never got there."""

    estimate: Estimate
    reached: int
    n: int

    @property
    def lower_bound(self) -> bool:
        return self.reached < self.n


def steps_to_threshold_ci(
    curves: Sequence[Curve], threshold: float, budget: float, reps: int = DEFAULT_REPS, seed: int = 0
) -> StepsEstimate:
    values, reached = _steps_or_budget(curves, threshold, budget)
    boot = _bootstrap(values, np.mean, reps, np.random.default_rng(seed))
    return StepsEstimate(_percentile_estimate(float(values.mean()), boot), reached, len(values))


@dataclass(frozen=True)
class SpeedupEstimate:
    estimate: Estimate | None  # None: BC->RL never reached the threshold on any seed
    lower_bound: bool
    infinite: bool = False

    def text(self) -> str:
        if self.infinite:
            return "inf (BC alone is already at the threshold)"
        if self.estimate is None:
            return "n/a (BC->RL did not reach the threshold)"
        prefix = ">= " if self.lower_bound else ""
        e = self.estimate
        return f"{prefix}{e.value:.2f}x [{e.low:.2f}, {e.high:.2f}]"


def speedup_ci(
    bc_rl_curves: Sequence[Curve],
    scratch_curves: Sequence[Curve],
    threshold: float,
    budget: float,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> SpeedupEstimate:
    """Ratio of mean steps-to-threshold (scratch / BC->RL), seeds resampled per method."""
    bc, bc_reached = _steps_or_budget(bc_rl_curves, threshold, budget)
    sc, sc_reached = _steps_or_budget(scratch_curves, threshold, budget)
    if bc_reached == 0:
        return SpeedupEstimate(None, False)
    lower_bound = sc_reached < len(sc)
    if bc.mean() == 0:
        return SpeedupEstimate(None, lower_bound, infinite=True)
    rng = np.random.default_rng(seed)
    bc_boot = np.maximum(_bootstrap(bc, np.mean, reps, rng), 1e-9)
    sc_boot = _bootstrap(sc, np.mean, reps, rng)
    ratios = sc_boot / bc_boot
    ratios = ratios[np.isfinite(ratios)]
    return SpeedupEstimate(
        _percentile_estimate(float(sc.mean() / bc.mean()), ratios), lower_bound or bc_reached < len(bc)
    )


def efficiency_curve(
    curves: Sequence[Curve], grid: Sequence[float], reps: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IQM return vs env steps with 95 % CI bands; points past a curve's end use the curves that reach them."""
    grid_arr = np.asarray(grid, dtype=float)
    mid, low, high = [], [], []
    for i, t in enumerate(grid_arr):
        values = [v for v in (return_at(c, t) for c in curves) if v is not None]
        if not values:
            mid.append(np.nan), low.append(np.nan), high.append(np.nan)
            continue
        if len(values) == 1:
            mid.append(values[0]), low.append(values[0]), high.append(values[0])
            continue
        est = iqm_and_mean(values, reps=reps, seed=seed + i)["iqm"]
        mid.append(est.value), low.append(est.low), high.append(est.high)
    return grid_arr, np.array(mid), np.array(low), np.array(high)
