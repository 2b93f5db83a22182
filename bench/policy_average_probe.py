#!/usr/bin/env python
"""Which averaging horizon? The raw policy and weight averages side by side, on one training run.

``policy_average_steps`` (optiq/rl/averaging.py) changes what is evaluated, not how the run
trains, so one run can answer for several horizons: this fine-tunes with averaging off and,
at every evaluation, also evaluates the exponential averages over each ``--horizons`` value,
each on its own evaluation env seeded exactly like the run's (so every column sees the same
start states). The averages use the shipped arithmetic, so a column equals the eval.csv a run
with that ``policy_average_steps`` writes (checked: Hopper-v5 expert seed 1, 5k, to 40k steps).

It reuses the demos and BC of a ``bench/sample_efficiency.py`` run folder (stages 01-03 are
copied) and writes ``<out>/<env>/<regime>_<algo>_seed<N>/04_finetune/.../average_eval.csv``; then
prints floor / beyond / vs_scratch / speedup per column with the bench's definitions.

  python bench/policy_average_probe.py --regime expert --seed 1       # after sample_efficiency.py --quick
  python bench/policy_average_probe.py --regime medium --seed 0 --horizons 5000 20000
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import sample_efficiency as bench  # noqa: E402
from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization  # noqa: E402

import optiq.rl.finetune as finetune_module  # noqa: E402
from optiq.atomic_io import read_json, write_text  # noqa: E402
from optiq.rl.averaging import average_decay, blend_into  # noqa: E402
from optiq.rl.training import PeriodicEvaluation, evaluate_returns  # noqa: E402

HORIZONS: list[int] = []
_made: dict[str, Any] = {}
_make_eval_venv = finetune_module.make_eval_venv


def _recording_make_eval_venv(*args: Any, **kwargs: Any) -> Any:
    _made["args"] = (args, kwargs)
    return _make_eval_venv(*args, **kwargs)


class AverageProbe(PeriodicEvaluation):
    """The run's own evaluation, plus one per averaging horizon, written to average_eval.csv."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        venv_args, venv_kwargs = _made["args"]
        self.venvs = {h: _make_eval_venv(*venv_args, **venv_kwargs) for h in HORIZONS}
        self.averages: dict[int, dict[str, Any]] | None = None
        self.averaged_at = 0
        self.table: list[dict[str, float]] = []

    def _on_rollout_start(self) -> None:  # after each train(): where the shipped average updates
        weights = self.model.policy.state_dict()
        if self.averages is None:
            self.averages = {h: {k: t.detach().clone() for k, t in weights.items()} for h in HORIZONS}
        else:
            steps = self.num_timesteps - self.averaged_at
            for horizon, average in self.averages.items():
                blend_into(average, weights, average_decay(steps, horizon))
        self.averaged_at = self.num_timesteps

    def _on_training_end(self) -> None:
        self._on_rollout_start()  # the last train() has no rollout after it; the shipped average includes it
        super()._on_training_end()

    def _evaluate(self) -> dict[str, float]:
        row = super()._evaluate()
        if self.averages is None:
            self._on_rollout_start()
        entry = {"timesteps": row["timesteps"], "raw": row["return_mean"]}
        raw = {k: t.clone() for k, t in self.model.policy.state_dict().items()}
        for horizon, venv in self.venvs.items():
            if isinstance(self.model.get_env(), VecNormalize):
                sync_envs_normalization(self.model.get_env(), venv)
            self.model.policy.load_state_dict(self.averages[horizon])  # type: ignore[index]
            entry[f"average_{horizon}"] = float(evaluate_returns(self.model, venv, self.n_episodes)[0].mean())
        self.model.policy.load_state_dict(raw)
        self.table.append(entry)
        lines = [",".join(entry)] + [",".join(f"{v:.10g}" for v in e.values()) for e in self.table]
        write_text(Path(self.log.path).parent / "average_eval.csv", "\n".join(lines) + "\n")
        return row


def report(path: Path, env_id: str, regime: str, budget: int) -> str:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    scratch = bench.best_scratch(bench.load_reference(env_id, budget))
    demo_return = read_json(bench.demonstrator(env_id, regime) / "expert.json")["return_mean"]
    lines = [f"best scratch final {scratch['final']:,.0f}; demonstrator {demo_return:,.0f}"]
    for column in [c for c in rows[0] if c != "timesteps"]:
        points = [{"timesteps": float(r["timesteps"]), "return_mean": float(r[column])} for r in rows]
        curve = bench._cut(points, budget)
        final = bench.final_return(curve)
        lowest = min(r["return_mean"] for r in curve[1:])
        speed = bench.speedup(curve, scratch["steps"], scratch["final"], budget)
        lines.append(
            f"{column:>14}: final {final:7,.0f}  lowest {lowest:7,.0f}  floor {bench.floor_ratio(curve):.2f}  "
            f"beyond {final / demo_return:.2f}  vs_scratch {final / scratch['final']:.2f}  speedup {speed.text()}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--regime", choices=bench.REGIMES, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--algo", choices=["ppo", "sac"], default="ppo", help="HybridPPO or DemoSAC")
    parser.add_argument("--budget", type=int, default=200_000, help="env steps of the run")
    parser.add_argument("--horizons", type=int, nargs="+", default=[5000, 10000, 20000], help="env steps")
    parser.add_argument("--bench-outputs", type=Path, default=REPO / "outputs" / "bench", help="where the BCs are")
    parser.add_argument("--outputs", type=Path, default=REPO / "outputs" / "average_probe")
    args = parser.parse_args()
    HORIZONS[:] = args.horizons

    name = f"{args.regime}_{args.algo}_seed{args.seed}"
    source, target = args.bench_outputs / args.env / name, args.outputs / args.env / name
    for stage in ("01_demos", "02_bc", "03_select"):
        if not (source / stage).is_dir():
            sys.exit(f"error: {source / stage} is missing (run bench/sample_efficiency.py --quick first)")
        if not (target / stage).exists():
            shutil.copytree(source / stage, target / stage)
    finetune_module.make_eval_venv = _recording_make_eval_venv
    finetune_module.PeriodicEvaluation = AverageProbe  # type: ignore[misc]
    from optiq.commands.finetune import main as finetune_main

    overrides = [*bench.EVAL, f"finetune.{args.algo}.bc_rl.policy_average_steps=0"]
    argv = ["--env", args.env, "--preset", "full", "--run-name", name, "--outputs", str(args.outputs)]
    argv += ["--algo", args.algo, "--init", "bc", "--seed", str(args.seed), "--total-steps", str(args.budget)]
    argv += ["--device", "cpu", "--no-progress", *[item for o in overrides for item in ("--set", o)]]
    finetune_main(argv)
    csv_path = target / "04_finetune" / f"{args.algo}_bc_seed{args.seed}" / "average_eval.csv"
    print(report(csv_path, args.env, args.regime, args.budget))


if __name__ == "__main__":
    main()
