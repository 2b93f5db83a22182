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
    from optiq.compare.results import MethodRuns, align_to_budget, common_budget, return_at_budget

    def curve(*points):
        return [{"timesteps": float(s), "return_mean": float(r)} for s, r in points]

    def runs(name, *curves, requested=50_000):
        return MethodRuns(name, curves=dict(enumerate(curves)), requested={s: requested for s in range(len(curves))})

    late = curve((0, 1), (25_000, 2), (50_000, 3), (50_223, 4))
    assert align_to_budget(late, 50_000) == curve((0, 1), (25_000, 2), (50_000, 4))
    assert align_to_budget(late, None) == late  # a run without run.json keeps its curve
    short = curve((0, 1), (20_000, 2))
    assert align_to_budget(short, 50_000) == short  # stopped before its budget: nothing moves
    # Trained well past its budget (a finished 100k run resumed with 50k): kept, and read at 50k.
    resumed = curve((0, 1), (50_000, 2), (75_000, 3), (100_000, 4))
    assert align_to_budget(resumed, 50_000) == resumed and return_at_budget(resumed, 50_000, False) == 2.0
    methods = {
        "bc_rl": runs("bc_rl", align_to_budget(late, 50_000), align_to_budget(curve((0, 1), (50_067, 5)), 50_000)),
        "scratch": runs("scratch", align_to_budget(curve((0, 1), (50_176, 6)), 50_000)),
        "dagger": runs("dagger", curve((0, 1), (15_000, 7)), requested=15_000),
    }
    budget = common_budget(methods, ("dagger",))
    assert budget == 50_000.0
    # Every seed has its final return at 100 % (before, 50,223 as the budget left the 50,067 seed out).
    assert [return_at_budget(c, budget, False) for c in methods["bc_rl"].curves.values()] == [4.0, 5.0]
    assert return_at_budget(methods["dagger"].curves[0], budget, True) == 7.0
    # A method asked for fewer steps than the others has no return at the others' budget.
    assert common_budget({"ipmd": runs("ipmd", short, requested=20_000), **methods}, ("dagger",)) == 50_000.0
    assert return_at_budget(short, 50_000, False) is None
    # A run without run.json does not push the budget past the recorded ones; alone, its end is the budget.
    unrecorded = MethodRuns("bc_naive", curves={0: curve((0, 1), (50_000, 2), (50_223, 3))})
    assert common_budget({**methods, "bc_naive": unrecorded}, ("dagger",)) == 50_000.0
    assert return_at_budget(unrecorded.curves[0], 50_000, False) == 2.0
    assert common_budget({"bc_naive": unrecorded}, ("dagger",)) == 50_223.0
    assert common_budget({"dagger": methods["dagger"]}, ("dagger",)) == 15_000.0
    assert common_budget({}, ("dagger",)) == 0.0
