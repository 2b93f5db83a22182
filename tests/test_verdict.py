"""The verdict sentence and the results table follow the numbers (stage 06, no training)."""

import pytest

from optiq.compare.render import render_report_html, render_table
from optiq.compare.results import method_row
from optiq.compare.statistics import SpeedupEstimate, iqm_and_mean, probability_of_improvement, speedup_ci
from optiq.compare.verdict import make_verdict

EXPERT = 1000.0
CONFIG = {"env_id": "Hopper-v5"}


def row(name, finals):
    return method_row(name, len(finals), list(finals), iqm_and_mean(finals, reps=300), 0.0, EXPERT)


def linear_curve(slope, budget=1000, step=100):
    return [{"timesteps": float(t), "return_mean": float(slope * t)} for t in range(0, budget + 1, step)]


def verdict(rows, speedup=None, improvement=None):
    return make_verdict(CONFIG, "ppo", rows, speedup or SpeedupEstimate(None), improvement, EXPERT, 1000.0)


OVERLAPPING_BC_RL = [900.0, 1100.0, 1000.0, 1200.0, 950.0]
OVERLAPPING_SCRATCH = [850.0, 1050.0, 1000.0, 1150.0, 880.0]


def test_no_better_when_the_intervals_overlap():
    rows = [row("bc_rl", OVERLAPPING_BC_RL), row("scratch", OVERLAPPING_SCRATCH)]
    assert rows[0]["final_return"] > rows[1]["final_return"]  # a higher point estimate...
    text = verdict(rows, improvement=probability_of_improvement(OVERLAPPING_BC_RL, OVERLAPPING_SCRATCH, reps=300))
    assert "better" not in text and "worse" not in text  # ...but not a resolved difference
    assert "within noise at 5 seeds" in text


def test_better_when_the_intervals_do_not_overlap():
    rows = [row("bc_rl", [3000.0, 3100.0, 3050.0, 3200.0, 2950.0]), row("scratch", [500.0, 600.0, 700.0, 550.0])]
    text = verdict(rows)
    assert "BC -> RL is better than RL from scratch" in text
    worse = verdict([row("bc_rl", [500.0, 600.0, 700.0, 550.0]), row("scratch", [3000.0, 3100.0, 3050.0, 3200.0])])
    assert "BC -> RL is worse than RL from scratch" in worse


def test_one_seed_each_is_never_resolved():
    text = verdict([row("bc_rl", [3000.0]), row("scratch", [500.0])])
    assert "better" not in text and "not resolved with 1 seed" in text


def test_the_regime_bc_already_at_the_demonstrator_is_named():
    rows = [row("bc_only", [950.0] * 10), row("bc_rl", OVERLAPPING_BC_RL), row("scratch", OVERLAPPING_SCRATCH)]
    text = verdict(rows)
    assert "BC alone already matches the expert (95 % of its return" in text


def test_the_regime_bc_below_the_demonstrator_is_named():
    rows = [row("bc_only", [500.0] * 10), row("bc_rl", OVERLAPPING_BC_RL), row("scratch", OVERLAPPING_SCRATCH)]
    text = verdict(rows)
    assert "BC is below the expert (50 % of its return" in text
    assert "BC -> RL is better than BC alone" in text  # BC->RL's interval lies above BC's


def test_the_verdict_quotes_the_aggregate_the_table_shows():
    episodes = [0.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0]  # IQM 1,000, mean 875
    rows = [row("bc_only", episodes), row("bc_rl", OVERLAPPING_BC_RL), row("scratch", OVERLAPPING_SCRATCH)]
    assert rows[0]["aggregate"] == "iqm" and rows[0]["final_return"] == pytest.approx(1000.0)
    text = verdict(rows)
    assert "BC alone (IQM 1,000" in text and "875" not in text
    assert "| IQM 1,000.0" in render_table(rows, SpeedupEstimate(None))


def test_three_seeds_are_reported_as_the_mean_with_a_min_max_interval():
    rows = [row("bc_rl", [1000.0, 1100.0, 4000.0]), row("scratch", [500.0, 600.0])]
    assert rows[0]["aggregate"] == "mean" and rows[0]["final_return_interval"] == "range"
    assert rows[1]["final_return_ci_low"] == 500.0 and rows[1]["final_return_ci_high"] == 600.0
    table = render_table(rows, SpeedupEstimate(None))
    assert "| mean 2,033.3 [min 1,000.0, max 4,000.0] |" in table
    assert "IQM 2,033.3" not in table
    text = verdict(rows)
    assert "mean 2,033 [min 1,000, max 4,000]" in text and "IQM" not in text.split("Other methods")[0]
    assert "[min, max] of the seeds, not 95 % CIs" in text


def test_the_speedup_bound_reaches_the_table_and_the_verdict():
    bc = [linear_curve(2.5), linear_curve(0.1)]  # one BC->RL seed never reaches 500
    scratch = [linear_curve(1.0), linear_curve(1.0)]
    speedup = speedup_ci(bc, scratch, threshold=500, budget=1000)
    rows = [row("bc_rl", OVERLAPPING_BC_RL), row("scratch", OVERLAPPING_SCRATCH)]
    assert "speedup to RL from scratch's final return (977) <= 0.83x" in verdict(rows, speedup)
    assert "| <= 0.83x" in render_table(rows, speedup)


def test_the_table_says_how_reached_is_defined():
    table = render_table([row("bc_rl", OVERLAPPING_BC_RL)], SpeedupEstimate(None))
    assert "two consecutive evaluations at or above" in table


def test_the_html_report_carries_the_honest_labels(tmp_path):
    rows = [row("bc_only", [950.0] * 10), row("bc_rl", [1000.0, 1100.0]), row("scratch", [500.0, 600.0])]
    at_start = [{"timesteps": float(t), "return_mean": 600.0} for t in range(0, 1001, 100)]
    speedup = speedup_ci([at_start] * 2, [linear_curve(1.0)] * 2, threshold=500, budget=1000)
    table = render_table(rows, speedup)
    summary = {
        "verdict": verdict(rows, speedup),
        "expert_return": EXPERT,
        "random_return": 0.0,
        "threshold": 900.0,
        "budget": 1000.0,
        "unlearning": {},
    }
    page = render_report_html(CONFIG, "ppo", summary, table, {}, [])
    assert "at start" in page and "[min 1,000.0, max 1,100.0]" in page and "BC alone already matches" in page


def test_two_seeds_that_separate_are_not_called_better():
    # [min, max] ranges of 2 vs 2 seeds are disjoint 1 time in 6 by chance alone: not a 95 % statement.
    text = verdict([row("bc_rl", [3000.0, 3100.0]), row("scratch", [500.0, 600.0])])
    assert "better" not in text and "not resolved at 2 seeds" in text and "1 time in 6" in text
    three = verdict([row("bc_rl", [3000.0, 3100.0, 3050.0]), row("scratch", [500.0, 600.0, 550.0])])
    assert "BC -> RL is better than RL from scratch" in three  # 1 in 20
