"""Multi-seed statistics for the verdict (rliable where it applies, plain bootstrap elsewhere).

* IQM and mean of per-seed scores with stratified-bootstrap 95 % CIs (rliable). The IQM
  trims 25 % on each side, which removes nothing from 3 values or fewer: there it *is* the
  mean, and :func:`aggregate_name` says "mean" so reports call it that.
* Probability of improvement P(BC->RL > scratch) with its CI (rliable).
* Env steps to a threshold (:func:`~optiq.compare.metrics.steps_to_threshold`: two
  consecutive evaluations at or above) and the speedup ratio with percentile-bootstrap CIs:
  seeds are resampled independently per method; a seed that never reached the threshold
  counts as the full budget, so its steps are underestimated. The speedup (scratch / BC->RL)
  is then a lower bound when scratch missed on some seed, an upper bound when BC->RL did,
  and not bounded either way when both did. A BC->RL seed at the threshold from step 0 makes
  the ratio unbounded: it is reported as "at start", with no number.
* Intervals say what they are (:attr:`Estimate.interval`): a percentile bootstrap over very
  few seeds can only return the most extreme resamples, e.g. [min, max] of 2 or 3 values;
  those are reported as such ("range"), and one value gets no interval ("none").
* Normalised scores: 0 = random policy, 1 = expert.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from optiq.compare.metrics import Curve, return_at, steps_to_threshold
from optiq.extras import require

DEFAULT_REPS = 2000
# rliable's IQM (scipy's trim_mean(0.25)) trims int(0.25 n) values per side: none below 4.
IQM_MIN_N = 4
CI_TAIL = 0.025  # each tail of a 95 % interval
ALPHA = 0.05  # one-sided level for calling a difference resolved from [min, max] ranges
INTERVALS = ("ci95", "range", "none")


def aggregate_name(n: int) -> str:
    """The aggregate to report for ``n`` values: "iqm", or "mean" where the IQM trims nothing (n <= 3)."""
    return "iqm" if n >= IQM_MIN_N else "mean"


def bootstrap_gives_range(*ns: int) -> bool:
    """Whether a 95 % percentile bootstrap over samples of these sizes returns its most extreme resamples.

    An extreme (every draw of every sample the same, most extreme value) has probability
    prod(n ** -n); above 2.5 % the percentile interval *is* that extreme: one sample of 2 or
    3 values gives [min, max], two samples give it for sizes (1, 1), (1, 2), (2, 2), (1, 3).
    """
    return math.prod(float(n) ** -n for n in ns) > CI_TAIL


def separation_chance(n_a: int, n_b: int) -> float:
    """Chance that every one of ``n_a`` runs beats every one of ``n_b`` runs when the method makes no difference.

    The exact one-sided permutation p-value of complete separation, 1 / C(n_a + n_b, n_a):
    1/6 for 2 vs 2 seeds, 1/20 for 3 vs 3. Non-overlapping [min, max] ranges are complete
    separation, so this is how much such ranges are worth.
    """
    return 1.0 / math.comb(n_a + n_b, n_a)


@dataclass(frozen=True)
class Estimate:
    """A point estimate with an interval; ``interval`` says which kind.

    * ``"ci95"``: a 95 % (percentile or stratified) bootstrap confidence interval;
    * ``"range"``: too few seeds for that: the interval is the [min, max] of what the
      resamples can give (of the seeds themselves for a mean of 2 or 3 values);
    * ``"none"``: one value, no interval (``low == high == value``).
    """

    value: float
    low: float
    high: float
    interval: str = "ci95"
    n: int | None = None  # values behind it (the smaller sample for a two-sample statistic)

    def text(self, digits: int = 1) -> str:
        """``v [lo, hi]`` (95 % CI), ``v [min lo, max hi]`` (range) or ``v`` (no interval)."""
        return f"{self.value:,.{digits}f}{self.interval_text(digits)}"

    def interval_text(self, digits: int = 1) -> str:
        """`` [lo, hi]``, `` [min lo, max hi]`` or "" (no interval)."""
        if self.interval == "none":
            return ""
        if self.interval == "range":
            return f" [min {self.low:,.{digits}f}, max {self.high:,.{digits}f}]"
        return f" [{self.low:,.{digits}f}, {self.high:,.{digits}f}]"

    def interval_label(self, unit: str = "seed") -> str:
        """What the interval is, in words: "95 % CI", "[min, max] of 2 seeds", "no interval (1 seed)"."""
        count = f"{self.n} {unit}{'s' if self.n != 1 else ''}" if self.n is not None else ""
        if self.interval == "none":
            return f"no interval ({count or f'1 {unit}'})"
        if self.interval == "range":
            return f"[min, max] of {count}" if count else "[min, max]"
        return "95 % CI"

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high, "interval": self.interval}


def _small_sample(values: np.ndarray) -> Estimate | None:
    """The mean of 1 to 3 values without resampling: no interval, or [min, max]; None for more values."""
    n = len(values)
    value = float(values.mean())
    if n == 1:
        return Estimate(value, value, value, "none", 1)
    if bootstrap_gives_range(n):
        return Estimate(value, float(values.min()), float(values.max()), "range", n)
    return None


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
    """IQM and mean of per-seed scores with stratified-bootstrap 95 % CIs (one task).

    With 3 values or fewer both are the mean (the IQM trims nothing) and the interval is the
    [min, max] of the values (what the bootstrap returns there), or none for one value;
    report them under :func:`aggregate_name`.
    """
    values = np.asarray(scores, dtype=float)
    small = _small_sample(values) if len(values) < IQM_MIN_N else None
    if small is not None:
        return {"iqm": small, "mean": small}
    rly, metrics = _rliable()
    matrix = values.reshape(-1, 1)

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    with warnings.catch_warnings(), _rliable_seed(seed) as random_state:
        warnings.filterwarnings("ignore", category=FutureWarning)
        points, intervals = rly.get_interval_estimates({"m": matrix}, aggregate, reps=reps, random_state=random_state)
    point, ci = points["m"], intervals["m"]
    n = len(values)
    return {
        "iqm": Estimate(float(point[0]), float(ci[0, 0]), float(ci[1, 0]), "ci95", n),
        "mean": Estimate(float(point[1]), float(ci[0, 1]), float(ci[1, 1]), "ci95", n),
    }


def probability_of_improvement(
    x: Sequence[float], y: Sequence[float], reps: int = DEFAULT_REPS, seed: int = 0
) -> Estimate:
    """P(a random run of X scores higher than a random run of Y), ties count half (rliable).

    Where a bootstrap can only return its extremes (:func:`bootstrap_gives_range`: 2 runs
    per side or fewer, or 1 and 3) the interval is the range of the resamples, from
    P(all X at min(X) > all Y at max(Y)) to P(all X at max(X) > all Y at min(Y)); it is
    computed so and labelled "range" (one run each: no interval).
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if bootstrap_gives_range(len(xs), len(ys)):
        value = float(np.mean([_beats(a, b) for a in xs for b in ys]))
        n = min(len(xs), len(ys))
        if len(xs) == len(ys) == 1:
            return Estimate(value, value, value, "none", n)
        return Estimate(value, _beats(xs.min(), ys.max()), _beats(xs.max(), ys.min()), "range", n)
    rly, metrics = _rliable()
    pair = [xs.reshape(-1, 1), ys.reshape(-1, 1)]
    with warnings.catch_warnings(), _rliable_seed(seed) as random_state:
        warnings.filterwarnings("ignore", category=FutureWarning)
        points, intervals = rly.get_interval_estimates(
            {"xy": pair},
            lambda a, b: np.array([metrics.probability_of_improvement(a, b)]),
            reps=reps,
            random_state=random_state,
        )
    low, high = float(intervals["xy"][0, 0]), float(intervals["xy"][1, 0])
    return Estimate(float(points["xy"][0]), low, high, "ci95", min(len(xs), len(ys)))


def _beats(a: float, b: float) -> float:
    return 1.0 if a > b else 0.5 if a == b else 0.0


def _steps_or_budget(curves: Sequence[Curve], threshold: float, budget: float) -> tuple[np.ndarray, int]:
    """Steps to ``threshold`` per curve (the whole budget where never reached) and how many reached it."""
    steps = _reached(curves, threshold)
    return np.array([s if s is not None else budget for s in steps], dtype=float), sum(s is not None for s in steps)


def _reached(curves: Sequence[Curve], threshold: float) -> list[float | None]:
    """Steps to ``threshold`` per curve (two consecutive evaluations at/above), None where never."""
    return [steps_to_threshold(c, threshold) for c in curves]


def _percentile_estimate(value: float, samples: np.ndarray, n: int | None = None) -> Estimate:
    return Estimate(value, float(np.percentile(samples, 2.5)), float(np.percentile(samples, 97.5)), "ci95", n)


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
    """Mean env steps to ``threshold`` (two consecutive evaluations at/above) over seeds, with CI.

    A seed that never got there counts as ``budget`` (so the mean is a lower bound); 1 seed:
    no interval; 2 or 3 seeds: [min, max] of the seeds.
    """
    values, reached = _steps_or_budget(curves, threshold, budget)
    small = _small_sample(values)
    if small is not None:
        return StepsEstimate(small, reached, len(values))
    boot = _bootstrap(values, np.mean, reps, np.random.default_rng(seed))
    return StepsEstimate(_percentile_estimate(float(values.mean()), boot, len(values)), reached, len(values))


SPEEDUP_BOUNDS = ("exact", "lower", "upper", "unknown", "at_start", "n/a")


@dataclass(frozen=True)
class SpeedupEstimate:
    """Speedup of BC->RL over scratch (scratch's mean steps to the threshold / BC->RL's).

    ``bound`` says how to read it:

    * ``"exact"``: every seed of both methods reached the threshold;
    * ``"lower"``: some scratch seed never did (counted as the budget, so scratch's steps and
      the ratio are underestimated): the true speedup is at least this (``>=``);
    * ``"upper"``: some BC->RL seed never did: the true speedup is at most this (``<=``);
    * ``"unknown"``: both missed on some seed: the ratio is bounded neither way (no number);
    * ``"at_start"``: ``at_start`` of the ``n`` BC->RL seeds were at the threshold from step 0
      (BC alone already there): the ratio is unbounded (no number);
    * ``"n/a"``: nothing to compare.
    """

    estimate: Estimate | None = None
    bound: str = "n/a"
    at_start: int = 0  # BC->RL seeds at the threshold from step 0
    n: int = 0  # BC->RL seeds

    @property
    def lower_bound(self) -> bool:
        return self.bound == "lower"

    @property
    def upper_bound(self) -> bool:
        return self.bound == "upper"

    @property
    def infinite(self) -> bool:
        return self.bound == "at_start"

    def text(self) -> str:
        if self.bound == "at_start":
            seeds = f"{self.at_start}/{self.n} seed{'s' if self.n != 1 else ''}"
            return f"at start on {seeds} (BC alone is already there; no finite ratio)"
        if self.bound == "unknown":
            return "not bounded: neither method reached the threshold on every seed"
        if self.estimate is None:
            return "n/a"
        e = self.estimate
        number = f"{e.value:,.2f}x{e.interval_text(2)}"
        if self.bound == "lower":
            return f">= {number} (RL from scratch did not reach the threshold on every seed)"
        if self.bound == "upper":
            return f"<= {number} (BC -> RL did not reach the threshold on every seed)"
        return number

    def to_json(self) -> dict[str, Any]:
        empty = {"value": None, "ci_low": None, "ci_high": None, "interval": None}
        estimate = self.estimate.to_json() if self.estimate else empty
        return {
            "text": self.text(),
            "bound": self.bound,
            "lower_bound": self.lower_bound,
            "at_start_seeds": self.at_start,
            "n": self.n,
            **estimate,
        }


def speedup_ci(
    bc_rl_curves: Sequence[Curve],
    scratch_curves: Sequence[Curve],
    threshold: float,
    budget: float,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> SpeedupEstimate:
    """Ratio of mean steps-to-threshold (scratch / BC->RL), seeds resampled per method.

    See :class:`SpeedupEstimate` for the bounds. With at most 2 seeds per method (or 1 and 3)
    the interval is the range over seed pairs, [min(scratch) / max(BC->RL), max / min].
    """
    bc, bc_reached = _steps_or_budget(bc_rl_curves, threshold, budget)
    sc, sc_reached = _steps_or_budget(scratch_curves, threshold, budget)
    n = len(bc)
    if n == 0 or len(sc) == 0 or budget <= 0:
        return SpeedupEstimate(None, "n/a", 0, n)
    at_start = sum(steps == 0 for steps in _reached(bc_rl_curves, threshold))
    if at_start:
        return SpeedupEstimate(None, "at_start", at_start, n)
    bc_all, sc_all = bc_reached == n, sc_reached == len(sc)
    if not bc_all and not sc_all:
        return SpeedupEstimate(None, "unknown", 0, n)
    bound = "exact" if bc_all and sc_all else "lower" if bc_all else "upper"
    value = float(sc.mean() / bc.mean())
    if bootstrap_gives_range(n, len(sc)):
        if n == len(sc) == 1:
            estimate = Estimate(value, value, value, "none", 1)
        else:
            estimate = Estimate(value, float(sc.min() / bc.max()), float(sc.max() / bc.min()), "range", min(n, len(sc)))
        return SpeedupEstimate(estimate, bound, 0, n)
    rng = np.random.default_rng(seed)
    ratios = _bootstrap(sc, np.mean, reps, rng) / _bootstrap(bc, np.mean, reps, rng)  # bc > 0: none at start
    return SpeedupEstimate(_percentile_estimate(value, ratios, min(n, len(sc))), bound, 0, n)


def efficiency_curve(
    curves: Sequence[Curve], grid: Sequence[float], reps: int = 500, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IQM return vs env steps with 95 % CI bands; points past a curve's end use the curves that reach them.

    Where 3 curves or fewer reach a point, the IQM is their mean and the band their [min, max].
    """
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
