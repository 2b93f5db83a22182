"""Per-seed metrics of the sample-efficiency benchmark (floor, speedup, medians)."""

import math
import sys

import pytest

from optiq.compare.finetune_metrics import (
    Speedup,
    first_sustained_step,
    floor_ratio,
    mean_curve,
    median_speedup,
    speedup,
)


def curve(*points):
    return [{"timesteps": float(t), "return_mean": float(r)} for t, r in points]


def test_floor_is_the_lowest_evaluation_after_step_0_over_the_start():
    assert floor_ratio(curve((0, 1000), (10, 950), (20, 1200), (30, 800), (40, 1500))) == pytest.approx(0.8)
    with pytest.raises(ValueError):
        floor_ratio(curve((10, 1000), (20, 900)))  # no step-0 evaluation: no BC reference


def test_reaching_needs_two_consecutive_evaluations_or_the_last_one():
    spiky = curve((0, 0), (10, 100), (20, 10), (30, 100), (40, 100))
    assert first_sustained_step(spiky, 100) == 30
    assert first_sustained_step(curve((0, 0), (10, 50), (20, 100)), 100) == 20  # the last one counts alone
    assert first_sustained_step(curve((0, 0), (10, 50)), 100) is None


def test_speedup_at_start_upper_bound_and_ratio():
    assert speedup(curve((0, 100), (10, 100)), scratch_steps=150, target=100, budget=200).at_start
    never = speedup(curve((0, 0), (10, 50)), scratch_steps=150, target=100, budget=200)
    assert never.upper_bound and never.value == pytest.approx(0.75) and never.text() == "<0.75"
    assert speedup(curve((0, 0), (50, 100), (60, 100)), 150, 100, 200).value == pytest.approx(3.0)


def test_median_speedup_is_conservative_and_keeps_its_kind():
    values = [Speedup(math.inf, at_start=True), Speedup(2.0), Speedup(0.5, upper_bound=True)]
    assert median_speedup(values).value == 2.0
    assert median_speedup([Speedup(math.inf, at_start=True)] * 2 + [Speedup(1.0)]).text() == "at start"
    assert median_speedup([Speedup(4.0), Speedup(2.0)]).value == 2.0  # lower middle of an even count


def test_mean_curve_uses_the_steps_every_seed_has():
    mean = mean_curve([curve((0, 0), (10, 10), (20, 20)), curve((0, 2), (10, 30))])
    assert mean == curve((0, 1), (10, 20))


def _bench():
    import importlib.util

    from tests.helpers import REPO

    spec = importlib.util.spec_from_file_location("sample_efficiency", REPO / "bench" / "sample_efficiency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_bench_picks_the_best_scratch_recipe_and_cuts_curves_at_the_budget():
    bench = _bench()
    overshoot = curve((0, 0), (100, 5), (200, 7), (203, 8), (300, 9))
    assert [r["timesteps"] for r in bench._cut(overshoot, 200)] == [0, 100, 200]
    assert [r["timesteps"] for r in bench._cut(curve((0, 0), (100, 5), (203, 8)), 200)] == [0, 100, 203]
    refs = {
        "ppo": [curve((0, 0), (100, 50), (200, 60))] * 2,
        "sac": [curve((0, 0), (100, 90), (200, 100)), curve((0, 0), (100, 100), (200, 120))],
    }
    best = bench.best_scratch(refs)
    assert best["recipe"] == "sac" and best["final"] == 110 and best["steps"] == 200


def test_bench_summary_line_uses_the_worse_regime():
    bench = _bench()
    median = {"floor_min": 0.95, "beyond": 1.2, "vs_scratch": 1.1, "speedup": math.inf, "final_vs_expert": 1.0}
    results = {
        "regimes": {
            "expert": {"methods": {"ppo": {"median": median}}},
            "medium": {"methods": {"ppo": {"median": {**median, "beyond": 2.1, "vs_scratch": 0.8, "speedup": 3.0}}}},
        }
    }
    assert bench.summary_line(results, "ppo") == "floor=0.95 beyond=2.10 vs_scratch=0.80 speedup=3.00"
    met = {name: ok for name, _, ok in bench.targets(results, "ppo", full=False)}
    assert met == {
        "floor (every seed, expert)": True,
        "beyond (medium)": True,
        "vs_scratch (worse regime)": False,
        "speedup (worse regime)": False,
    }


def test_bench_with_one_regime_reports_the_other_as_not_run():
    bench = _bench()
    median = {"floor_min": 0.5, "beyond": 2.6, "vs_scratch": 2.0, "speedup": 6.0, "final_vs_expert": 0.9}
    results = {"regimes": {"medium": {"methods": {"sac": {"median": median}}}}}
    assert bench.summary_line(results, "sac") == "floor=n/a beyond=2.60 vs_scratch=2.00 speedup=6.00"
    checks = {name: (value, ok) for name, value, ok in bench.targets(results, "sac", full=False)}
    assert checks["floor (every seed, expert)"] == ("not run", False)
    assert checks["vs_scratch (medium only)"] == ("2.00", True)
    assert bench._tag(["sac"], ["medium"], 100_000) == "sac_medium_100000"
