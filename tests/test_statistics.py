import numpy as np
import pytest

from optiq.compare.statistics import (
    Estimate,
    aggregate_name,
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


def flat_curve(value: float, budget: int = 1000, step: int = 100):
    return [{"timesteps": float(t), "return_mean": float(value)} for t in range(0, budget + 1, step)]


def test_speedup_is_an_upper_bound_when_bc_rl_never_reaches_on_some_seed():
    # BC->RL: one seed at t=200, one never (counted as the budget, so its steps are underestimated).
    bc = [linear_curve(2.5), linear_curve(0.1)]
    scratch = [linear_curve(1.0), linear_curve(1.0)]  # t=500 on both seeds
    result = speedup_ci(bc, scratch, threshold=500, budget=1000)
    assert result.bound == "upper" and not result.lower_bound
    assert result.estimate.value == pytest.approx(500 / 600)
    assert result.text().startswith("<= ")


def test_speedup_is_an_upper_bound_even_when_bc_rl_never_reaches_at_all():
    bc = [linear_curve(0.1), linear_curve(0.2)]
    scratch = [linear_curve(1.0), linear_curve(2.5)]  # 500 and 200 steps
    result = speedup_ci(bc, scratch, threshold=500, budget=1000)
    assert result.bound == "upper"
    assert result.estimate.value == pytest.approx(350 / 1000)
    assert result.text().startswith("<= 0.35x")


def test_speedup_is_not_bounded_when_neither_method_reaches_on_every_seed():
    bc = [linear_curve(2.5), linear_curve(0.1)]
    scratch = [linear_curve(1.0), linear_curve(0.1)]
    result = speedup_ci(bc, scratch, threshold=500, budget=1000)
    assert result.bound == "unknown" and result.estimate is None and not result.lower_bound
    assert result.text().startswith("not bounded")
    assert ">=" not in result.text() and "<=" not in result.text()


def test_a_bc_rl_seed_at_the_threshold_from_step_0_gives_at_start_not_a_huge_ratio():
    bc = [flat_curve(600.0), linear_curve(2.5)]  # seed 0 is already at the threshold at step 0
    scratch = [linear_curve(1.0), linear_curve(1.0)]
    result = speedup_ci(bc, scratch, threshold=500, budget=1000)
    assert result.bound == "at_start" and result.at_start == 1 and result.n == 2
    assert result.estimate is None  # no CI built on a division by ~0
    assert result.text().startswith("at start") and "1/2 seeds" in result.text()


def test_every_bc_rl_seed_at_start_is_reported_as_at_start():
    result = speedup_ci([flat_curve(600.0)] * 3, [linear_curve(1.0)] * 3, threshold=500, budget=1000)
    assert result.infinite and result.at_start == 3 and "3/3 seeds" in result.text()


def test_iqm_of_three_or_fewer_values_is_the_mean_and_is_named_so():
    assert aggregate_name(3) == "mean" and aggregate_name(2) == "mean" and aggregate_name(1) == "mean"
    assert aggregate_name(4) == "iqm"
    est = iqm_and_mean([1.0, 2.0, 100.0])
    assert est["iqm"].value == pytest.approx(est["mean"].value) == pytest.approx(103 / 3)


def test_two_seeds_give_a_min_max_interval_labelled_as_such():
    est = iqm_and_mean([1000.0, 1500.0])["mean"]
    assert (est.low, est.high) == (1000.0, 1500.0)
    assert est.interval == "range"
    assert est.interval_label() == "[min, max] of 2 seeds"
    assert est.text(0) == "1,250 [min 1,000, max 1,500]"
    assert est.to_json()["interval"] == "range"
    steps = steps_to_threshold_ci([linear_curve(2.5), linear_curve(1.0)], threshold=500, budget=1000)
    assert steps.estimate.interval == "range" and (steps.estimate.low, steps.estimate.high) == (200, 500)


def test_one_seed_gives_no_interval():
    est = iqm_and_mean([1234.0])["mean"]
    assert est.interval == "none" and est.text(0) == "1,234"
    assert est.interval_label() == "no interval (1 seed)"


def test_many_seeds_give_a_95_percent_ci():
    est = iqm_and_mean(np.arange(10.0), reps=200)["iqm"]
    assert est.interval == "ci95" and est.interval_label() == "95 % CI"
    assert est.text(1).startswith(f"{est.value:,.1f} [")


def test_probability_of_improvement_with_two_seeds_is_the_range_of_its_resamples():
    est = probability_of_improvement([5.0, 6.0], [1.0, 5.5], reps=200)
    assert est.value == pytest.approx(0.75)
    assert est.interval == "range" and (est.low, est.high) == (0.0, 1.0)
    separated = probability_of_improvement([5.0, 6.0], [1.0, 2.0], reps=200)
    assert (separated.low, separated.value, separated.high) == (1.0, 1.0, 1.0)


def test_speedup_with_two_seeds_each_is_the_range_over_seed_pairs():
    bc = [linear_curve(2.5), linear_curve(5.0)]  # 200 and 100 steps
    scratch = [linear_curve(1.0), linear_curve(1.25)]  # 500 and 400 steps
    result = speedup_ci(bc, scratch, threshold=500, budget=1000)
    assert result.bound == "exact"
    assert result.estimate.interval == "range"
    assert (result.estimate.low, result.estimate.high) == pytest.approx((400 / 200, 500 / 100))
    assert result.text() == "3.00x [min 2.00, max 5.00]"


def test_estimate_defaults_keep_the_old_constructor():
    assert Estimate(1.0, 0.0, 2.0).interval == "ci95"
