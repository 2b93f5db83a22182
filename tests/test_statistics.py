import numpy as np
import pytest

from optiq.compare.statistics import (
    efficiency_curve,
    iqm_and_mean,
    normalized,
    probability_of_improvement,
    speedup_ci,
    steps_to_threshold_ci,
)


def linear_curve(slope: float, budget: int = 1000, step: int = 100):
    return [{"timesteps": float(t), "return_mean": float(slope * t)} for t in range(0, budget + 1, step)]


def test_bootstrap_ci_contains_the_true_mean_of_a_synthetic_set():
    rng = np.random.default_rng(0)
    true_mean = 1500.0
    scores = rng.normal(true_mean, 200.0, size=30)
    est = iqm_and_mean(scores, reps=2000)
    assert est["mean"].low < true_mean < est["mean"].high
    assert est["mean"].value == pytest.approx(scores.mean())
    assert est["iqm"].low <= est["iqm"].value <= est["iqm"].high


def test_iqm_ignores_outer_quartiles():
    scores = [0.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 1000.0]
    assert iqm_and_mean(scores, reps=200)["iqm"].value == pytest.approx(10.0)


def test_probability_of_improvement_known_values():
    assert probability_of_improvement([5, 6, 7], [1, 2, 3], reps=200).value == pytest.approx(1.0)
    assert probability_of_improvement([1, 2, 3], [5, 6, 7], reps=200).value == pytest.approx(0.0)
    assert probability_of_improvement([1, 2], [1, 2], reps=200).value == pytest.approx(0.5)


def test_speedup_on_curves_with_known_crossing_points():
    # BC->RL reaches 500 at t=200 (slope 2.5); scratch reaches it at t=500 (slope 1).
    bc = [linear_curve(2.5) for _ in range(3)]
    scratch = [linear_curve(1.0) for _ in range(3)]
    steps = steps_to_threshold_ci(bc, threshold=500, budget=1000)
    assert steps.estimate.value == 200 and steps.reached == 3 and not steps.lower_bound
    result = speedup_ci(bc, scratch, threshold=500, budget=1000)
    assert result.estimate.value == pytest.approx(2.5)
    assert result.estimate.low == pytest.approx(2.5) and result.estimate.high == pytest.approx(2.5)
    assert not result.lower_bound


def test_speedup_is_a_lower_bound_when_scratch_never_reaches():
    bc = [linear_curve(2.5), linear_curve(5.0)]  # 200 and 100 steps
    scratch = [linear_curve(0.1), linear_curve(0.2)]  # never reaches 500 within 1000
    result = speedup_ci(bc, scratch, threshold=500, budget=1000)
    assert result.lower_bound
    assert result.estimate.value == pytest.approx(1000 / 150)
    assert result.text().startswith(">= ")


def test_normalized_scores():
    np.testing.assert_allclose(normalized([10, 60, 110], random_return=10, expert_return=110), [0, 0.5, 1])


def test_efficiency_curve_handles_unequal_lengths():
    curves = [linear_curve(1.0, budget=1000), linear_curve(2.0, budget=500)]
    x, mid, low, high = efficiency_curve(curves, [0, 500, 1000], reps=100)
    assert mid[-1] == pytest.approx(1000)  # only the long curve reaches 1000 steps
    assert np.all(low <= mid + 1e-9) and np.all(mid <= high + 1e-9)


def test_a_seed_fixes_the_rliable_intervals_whatever_the_global_rng_state():
    scores, other = [1000.0, 1200.0, 1500.0, 1700.0, 900.0], [800.0, 1300.0, 700.0]
    np.random.seed(1)
    first = iqm_and_mean(scores), probability_of_improvement(scores, other)
    np.random.seed(2)
    np.random.random(17)
    second = iqm_and_mean(scores), probability_of_improvement(scores, other)
    assert first == second
    state = np.random.get_state()
    iqm_and_mean(scores)
    assert np.array_equal(np.random.get_state()[1], state[1])  # the caller's global RNG is left as it was
