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


def test_steps_to_threshold_is_the_first_evaluation_at_or_above():
    c = curve([(0, 10), (100, 80), (200, 95), (300, 70), (400, 99)])
    assert steps_to_threshold(c, 90) == 200
    assert steps_to_threshold(c, 10) == 0
    assert steps_to_threshold(c, 100) is None
