"""The verdict: one paragraph answering the product's question, worded by the numbers."""

from __future__ import annotations

from typing import Any

from optiq.compare.formatting import (
    count_text,
    count_unit,
    interval_text,
    quote_aggregate,
    row_estimate,
)
from optiq.compare.methods import (
    EXTRA_METHODS,
    METHOD_TITLES,
)
from optiq.compare.results import (
    THRESHOLD_FRACTION,
)
from optiq.compare.statistics import (
    ALPHA,
    IQM_MIN_N,
    Estimate,
    SpeedupEstimate,
    separation_chance,
)


def demonstrator(demos_meta: dict[str, Any]) -> str:
    """What the "expert" reference is: the demos' source (a policy, a scripted controller, a dataset)."""
    source = demos_meta.get("source", "expert")
    if source == "scripted":
        return f"scripted controller {demos_meta.get('controller', '')}".strip()
    if source == "minari":
        return "Minari demos " + ", ".join(d["dataset_id"] for d in demos_meta.get("datasets", []))
    return "expert"


def make_verdict(
    config: dict[str, Any],
    algo: str,
    rows: list[dict[str, Any]],
    speedup: SpeedupEstimate,
    improvement: Estimate | None,
    expert_return: float,
    budget: float,
    reference: str = "expert",
) -> str:
    """The answer, worded by the numbers; then a sentence about the other methods, if any were compared.

    * The regime (when BC only was evaluated): BC's reported return is at or above
      ``THRESHOLD_FRACTION`` of the demonstrator's ("BC alone already matches the <reference>
      (X % of its return)") or below it ("BC is below the <reference> (X % ...)").
    * BC -> RL against scratch, and against BC alone, quoting the aggregate and interval the
      table shows (IQM, or the mean for n <= 3). The rule: one is "better"/"worse" only when
      the two intervals do not overlap; otherwise the difference is "not resolved ... within
      noise at <n> seeds". Intervals are 95 % CIs, or [min, max] of 2-3 seeds: disjoint ranges
      mean every run of one beat every run of the other, which with no real difference
      happens by chance 1 / C(n_a + n_b, n_a) of the time (1 in 6 for 2 vs 2 seeds), so with
      a range it also takes that chance <= ``ALPHA`` (5 %, e.g. 3 vs 3 seeds). One value has no
      interval, so it is never resolved.
    * The speedup to RL from scratch's final return (the scratch row's aggregate: a target that
      depends on scratch only, so BC's noise cannot decide whether there is a ratio at all) with
      its bound ("<=", ">=", "at start", "not bounded"), and P(BC->RL > scratch).
    """
    by_method = {row["method"]: row for row in rows}
    bc_rl, scratch, bc = by_method.get("bc_rl"), by_method.get("scratch"), by_method.get("bc_only")
    others = _others_sentence(rows, budget)
    regime = _regime(bc, expert_return, reference) + ". " if bc else ""
    if not bc_rl or not scratch:
        return regime + "Not enough runs for a verdict: both BC->RL and RL from scratch are needed." + others
    seeds = (
        count_text(bc_rl) + " each"
        if bc_rl["n"] == scratch["n"]
        else f"{count_text(bc_rl)} BC -> RL, {count_text(scratch)} scratch"
    )
    text = (
        f"On {config['env_id']} with {algo.upper()} and {int(budget):,} env steps ({seeds}): {regime}"
        f"BC -> RL vs RL from scratch, final return {quote_aggregate(bc_rl)} vs {quote_aggregate(scratch)}: "
        f"{_difference(bc_rl, scratch, 'RL from scratch')}"
    )
    if bc:
        text += f"; vs BC alone ({quote_aggregate(bc)} over {count_text(bc)}): {_difference(bc_rl, bc, 'BC alone')}"
    text += f"; speedup to RL from scratch's final return ({scratch['final_return']:,.0f}) {speedup.text()}"
    if improvement is not None:
        text += f"; P(BC->RL > scratch) = {improvement.text(2)}"
    fewest = min(bc_rl["n"], scratch["n"])
    if fewest == 1:
        text += "; with 1 seed there is no interval"
    elif fewest < IQM_MIN_N:
        text += f"; with {fewest} seeds the intervals are the [min, max] of the seeds, not 95 % CIs"
    return text + "." + others


def _regime(bc: dict[str, Any], expert_return: float, reference: str) -> str:
    """'BC alone already matches the <reference> (X % of its return R)' or 'BC is below the <reference> (...)'."""
    if expert_return > 0:
        matches = bc["final_return"] >= THRESHOLD_FRACTION * expert_return
        share = f"{100 * bc['final_return'] / expert_return:.0f} % of its return {expert_return:,.0f}"
    else:  # a share of a negative return means nothing: the normalised score (0 random, 1 demonstrator)
        matches = bc["normalized"] >= THRESHOLD_FRACTION
        share = f"normalised score {bc['normalized']:.2f}"
    if matches:
        return f"BC alone already matches the {reference} ({share})"
    return f"BC is below the {reference} ({share})"


def _difference(a: dict[str, Any], b: dict[str, Any], b_title: str) -> str:
    """How ``a`` (BC -> RL) compares with ``b`` by the non-overlap rule of :func:`make_verdict`."""
    ea, eb = row_estimate(a, "final_return"), row_estimate(b, "final_return")
    if ea is None or eb is None:
        return "not resolved (no number)"
    single = [row for row, est in ((a, ea), (b, eb)) if est.interval == "none"]
    if single:
        return f"not resolved with {count_text(single[0])} (no interval)"
    same_size = (a["n"], count_unit(a)) == (b["n"], count_unit(b))
    sizes = count_text(a) if same_size else f"{count_text(a)} and {count_text(b)}"
    if ea.low <= eb.high and ea.high >= eb.low:
        return f"not resolved, the intervals overlap (within noise at {sizes})"
    above = ea.low > eb.high
    chance = separation_chance(a["n"], b["n"])
    if "range" in (ea.interval, eb.interval) and chance > ALPHA:
        return (
            f"not resolved at {sizes}: every BC -> RL run is {'above' if above else 'below'} every {b_title} one, "
            f"but with this few that happens by chance 1 time in {round(1 / chance)}"
        )
    return f"BC -> RL is {'better' if above else 'worse'} than {b_title} (the intervals do not overlap)"


def _others_sentence(rows: list[dict[str, Any]], budget: float) -> str:
    """' Other methods, final return: AIRL IQM 1,234 [..] (P(> scratch) = 0.50 [..]), ...' or ''."""
    others = [row for row in rows if row["method"] in EXTRA_METHODS]
    if not others:
        return ""
    parts = []
    for row in others:
        part = f"{METHOD_TITLES[row['method']]} {quote_aggregate(row)}"
        if row.get("env_steps") is not None and row["env_steps"] < 0.9 * budget:
            part += f" after {row['env_steps']:,.0f} env steps"
        if row.get("prob_improvement_vs_scratch") is not None:
            part += f" (P(> scratch) = {interval_text(row, 'prob_improvement_vs_scratch', 2)})"
        parts.append(part)
    best = max(others, key=lambda row: row["final_return"])
    text = f" Other methods, final return: {', '.join(parts)}"
    return text + (f"; highest point estimate: {METHOD_TITLES[best['method']]}." if len(others) > 1 else ".")
