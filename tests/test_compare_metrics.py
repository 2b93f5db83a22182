import pytest

from optiq.compare.metrics import return_at, steps_to_threshold


def curve(points):
    return [{"timesteps": float(t), "return_mean": float(r)} for t, r in points]


def test_return_at_interpolates_and_stops_at_the_end():
    c = curve([(0, 0), (100, 100), (200, 300)])
    assert return_at(c, 50) == pytest.approx(50)
    assert return_at(c, 150) == pytest.approx(200)
    assert return_at(c, 200) == pytest.approx(300)
    assert return_at(c, 201) is None
    assert return_at([], 10) is None


def test_steps_to_threshold_is_the_first_of_two_consecutive_evaluations_at_or_above():
    c = curve([(0, 10), (100, 80), (200, 95), (300, 70), (400, 99)])
    assert steps_to_threshold(c, 90) == 400  # 95 at t=200 is followed by 70: not sustained; t=400 is the last
    assert steps_to_threshold(c, 10) == 0
    assert steps_to_threshold(c, 100) is None


def test_a_single_noisy_evaluation_above_the_threshold_is_not_a_crossing():
    # 95 at t=100 is a lucky evaluation (70 next); the return stays above 90 from t=300 on.
    c = curve([(0, 10), (100, 95), (200, 70), (300, 92), (400, 93)])
    assert steps_to_threshold(c, 90) == 300


def test_the_last_evaluation_counts_on_its_own():
    assert steps_to_threshold(curve([(0, 0), (100, 50), (200, 95)]), 90) == 200
    assert steps_to_threshold(curve([(0, 95)]), 90) == 0
    assert steps_to_threshold([], 90) is None


def test_the_common_budget_is_the_shortest_method_s_longest_run():
    """Runs overshoot the budget by different amounts (rollout grids); DAgger stops early by design."""
    from optiq.compare.results import common_budget

    def curve(*steps):
        return [{"timesteps": float(s), "return_mean": 1.0} for s in steps]

    curves = {
        "bc_rl": [curve(0, 512, 1178), curve(0, 512, 1100)],  # the noise check shifted its grid
        "scratch": [curve(0, 512, 1024)],
        "dagger": [curve(0, 300)],
    }
    assert common_budget(curves, ("dagger",)) == 1024.0
    assert common_budget({"dagger": [curve(0, 300)]}, ("dagger",)) == 300.0
    assert common_budget({}, ("dagger",)) == 0.0
