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


def test_runs_are_compared_at_the_budget_they_were_asked_for():
    """Runs overshoot their budget by different amounts (up to a rollout); DAgger stops early by design."""
    from optiq.compare.results import align_to_budget, common_budget, return_at_budget

    def curve(*points):
        return [{"timesteps": float(s), "return_mean": float(r)} for s, r in points]

    late = curve((0, 1), (25_000, 2), (50_010, 3), (50_223, 4))
    assert align_to_budget(late, 50_000) == curve((0, 1), (25_000, 2), (50_000, 4))
    assert align_to_budget(late, None) == late  # a run without run.json keeps its curve
    short = curve((0, 1), (20_000, 2))
    assert align_to_budget(short, 50_000) == short  # stopped before its budget: nothing moves
    curves = {
        "bc_rl": [align_to_budget(late, 50_000), align_to_budget(curve((0, 1), (50_067, 5)), 50_000)],
        "scratch": [align_to_budget(curve((0, 1), (50_176, 6)), 50_000)],
        "dagger": [curve((0, 1), (15_000, 7))],
    }
    budget = common_budget(curves, ("dagger",))
    assert budget == 50_000.0
    # Every seed has its final return at 100 % (before, 50,223 as the budget left the 50,067 seed out).
    assert [return_at_budget(c, budget, False) for c in curves["bc_rl"]] == [4.0, 5.0]
    assert return_at_budget(curves["dagger"][0], budget, True) == 7.0
    # A method asked for fewer steps than the others has no return at the others' budget.
    assert common_budget({"ipmd": [short], "scratch": curves["scratch"]}, ("dagger",)) == 50_000.0
    assert return_at_budget(short, 50_000, False) is None
    assert common_budget({"dagger": [curve((0, 1), (300, 2))]}, ("dagger",)) == 300.0
    assert common_budget({}, ("dagger",)) == 0.0
