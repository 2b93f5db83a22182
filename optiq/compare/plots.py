"""Stage 06's figures: learning curves, normalised sample-efficiency curves, BC training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from optiq.atomic_io import atomic_path
from optiq.compare.methods import (
    COLOURS,
    METHOD_TITLES,
)
from optiq.compare.metrics import return_at
from optiq.compare.results import (
    MethodRuns,
)
from optiq.compare.statistics import (
    efficiency_curve,
    normalized,
)


def _save_figure(fig: Any, out_path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return out_path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _with_runs(methods: dict[str, MethodRuns]) -> list[tuple[str, MethodRuns]]:
    return [(name, runs) for name, runs in methods.items() if runs.curves]


def plot_learning_curves(
    methods: dict[str, MethodRuns],
    bc_only: dict[str, Any] | None,
    expert_return: float,
    threshold: float,
    out_path: Path,
    config: dict[str, Any],
) -> Path:
    """Mean return vs env steps per method (band: min..max over seeds), with reference lines."""
    fig, ax = _pyplot().subplots(figsize=(8, 5), dpi=110)
    for name, runs in _with_runs(methods):
        grid = sorted({row["timesteps"] for curve in runs.curves.values() for row in curve})
        values = np.array(
            [[v if (v := return_at(c, t)) is not None else np.nan for t in grid] for c in runs.curves.values()]
        )
        n = len(runs.curves)
        ax.plot(
            grid,
            np.nanmean(values, axis=0),
            color=COLOURS[name],
            linewidth=2,
            label=f"{METHOD_TITLES[name]} ({n} seed{'s' if n > 1 else ''})",
        )
        if n > 1:
            ax.fill_between(grid, np.nanmin(values, axis=0), np.nanmax(values, axis=0), color=COLOURS[name], alpha=0.2)
    ax.axhline(expert_return, color="black", linewidth=1, label=f"expert ({expert_return:,.0f})")
    ax.axhline(threshold, color="black", linestyle=":", linewidth=1, label="90 % of expert")
    if bc_only is not None:
        ax.axhline(
            bc_only["return_mean"],
            color="tab:green",
            linestyle="--",
            linewidth=1.5,
            label=f"BC only ({bc_only['return_mean']:,.0f}"
            + (f", mean of {bc_only['n']} seeds)" if bc_only.get("n", 1) > 1 else ")"),
        )
    ax.set(
        xlabel="environment steps", ylabel="deterministic episode return", title=f"{config['env_id']}: learning curves"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save_figure(fig, out_path)


def plot_normalized_curves(
    methods: dict[str, MethodRuns],
    bc_only: dict[str, Any] | None,
    random_return: float,
    expert_return: float,
    out_path: Path,
    config: dict[str, Any],
) -> Path:
    """Sample-efficiency curves: normalised IQM over seeds with 95 % bootstrap CI bands."""
    fig, ax = _pyplot().subplots(figsize=(8, 5), dpi=110)
    for name, runs in _with_runs(methods):
        curves = [
            [
                {
                    "timesteps": r["timesteps"],
                    "return_mean": float(normalized(r["return_mean"], random_return, expert_return)),
                }
                for r in c
            ]
            for c in runs.curves.values()
        ]
        grid = sorted({row["timesteps"] for curve in curves for row in curve})
        x, mid, low, high = efficiency_curve(curves, grid)
        ax.plot(x, mid, color=COLOURS[name], linewidth=2, label=METHOD_TITLES[name])
        ax.fill_between(x, low, high, color=COLOURS[name], alpha=0.2)
    ax.axhline(1.0, color="black", linewidth=1, label="expert")
    if bc_only is not None:
        ax.axhline(
            float(normalized(bc_only["return_mean"], random_return, expert_return)),
            color="tab:green",
            linestyle="--",
            label="BC only",
        )
    ax.set(
        xlabel="environment steps",
        ylabel="normalised return (IQM; mean for n <= 3)",
        title=f"{config['env_id']}: sample efficiency",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save_figure(fig, out_path)


def plot_bc_training(metrics: dict[int | None, Path] | Path, out_path: Path) -> Path | None:
    """BC train and validation loss per epoch (and validation action MSE), one line per BC seed.

    ``metrics``: each BC seed's ``metrics.csv`` (None: the single BC), or one path.
    """
    from optiq.bc.train import read_metrics

    if isinstance(metrics, Path):
        metrics = {None: metrics}
    curves = {seed: read_metrics(path) for seed, path in metrics.items() if path.is_file()}
    curves = {seed: rows for seed, rows in curves.items() if rows}
    if not curves:
        return None
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (seed, rows) in enumerate(curves.items()):
        colour = colours[i % len(colours)]
        tag = "" if seed is None else f" (seed {seed})"
        epochs = [r["epoch"] for r in rows]
        left.plot(epochs, [r["train_loss"] for r in rows], color=colour, linestyle=":", label=f"train loss{tag}")
        left.plot(epochs, [r["val_loss"] for r in rows], color=colour, label=f"val loss (NLL){tag}")
        right.plot(epochs, [r["val_mse"] for r in rows], color=colour, label=f"val action MSE{tag}")
    left.set(xlabel="epoch", ylabel="BC loss", title="BC loss")
    left.legend(fontsize=7)
    right.set(xlabel="epoch", ylabel="MSE", title="held-out action MSE", yscale="log")
    right.legend(fontsize=7)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return _save_figure(fig, out_path)


def plot_learned_reward(traces: dict[str, dict[str, np.ndarray]], out_path: Path, run_name: str) -> Path:
    """IPMD's learned reward against the env's along one expert and one random episode (two y axes)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(traces), figsize=(11, 4), dpi=110, squeeze=False)
    for ax, (name, trace) in zip(axes[0], traces.items()):
        steps = np.arange(len(trace["true"]))
        ax.plot(steps, trace["true"], color="tab:gray", label=f"true (mean {trace['true'].mean():.2f})")
        ax.set_xlabel("step of the episode")
        ax.set_ylabel("true reward")
        twin = ax.twinx()
        twin.plot(steps, trace["learned"], color=COLOURS["ipmd"], label=f"learned (mean {trace['learned'].mean():.2f})")
        twin.set_ylabel("learned reward r_psi")
        lines = ax.get_lines() + twin.get_lines()
        ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
        ax.set_title(f"{name} episode ({len(steps)} steps)")
    fig.suptitle(f"Learned vs true reward ({run_name})")
    return _save_figure(fig, out_path)
