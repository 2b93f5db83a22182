import math

import numpy as np
import pytest

from optiq.compare.metrics import mean_curve, mean_std, return_at, speedup, steps_to_threshold


def curve(points):
    return [{"timesteps": float(t), "return_mean": float(r)} for t, r in points]


def test_return_at_interpolates_and_stops_at_the_end():
    c = curve([(0, 0), (100, 100), (200, 300)])
    assert return_at(c, 50) == pytest.approx(50)
    assert return_at(c, 150) == pytest.approx(200)
    assert return_at(c, 200) == pytest.approx(300)
    assert return_at(c, 201) is None
    assert return_at([], 10) is None


def test_steps_to_threshold_is_the_first_evaluation_at_or_above():
    c = curve([(0, 10), (100, 80), (200, 95), (300, 70), (400, 99)])
    assert steps_to_threshold(c, 90) == 200
    assert steps_to_threshold(c, 10) == 0
    assert steps_to_threshold(c, 100) is None


def test_speedup_cases():
    exact = speedup(scratch_steps=800, bc_rl_steps=200, budget=1000)
    assert exact.value == pytest.approx(4.0) and not exact.lower_bound and exact.text() == "4.00x"
    bound = speedup(scratch_steps=None, bc_rl_steps=250, budget=1000)
    assert bound.value == pytest.approx(4.0) and bound.lower_bound and bound.text().startswith(">= ")
    assert speedup(800, None, 1000).value is None
    assert math.isinf(speedup(800, 0, 1000).value)


def test_mean_curve_handles_unequal_lengths():
    short = curve([(0, 0), (100, 100)])
    long = curve([(0, 100), (100, 300), (200, 500)])
    x, mean, std = mean_curve([short, long])
    np.testing.assert_allclose(x, [0, 100, 200])
    np.testing.assert_allclose(mean, [50, 200, 500])  # at 200 only the long curve counts
    np.testing.assert_allclose(std, [50, 100, 0])


def test_mean_std_ignores_missing():
    assert mean_std([1.0, None, 3.0]) == (2.0, 1.0)
    assert mean_std([None]) == (None, None)
