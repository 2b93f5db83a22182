"""Sweep envs x methods x seeds: run_all's stage jobs for every env, on this machine or a Ray cluster.

Each env gets run_all's folders (outputs/<env>/<run-name>/01_demos ... 06_compare) and rules:
finished jobs are skipped, unfinished ones resume, stale ones start over. Then one study
report over all envs: outputs/study/<run-name>/ (results.md, index.html, results.json,
performance_profile.png): normalised scores (0 = random, 1 = expert), IQM with 95 % CIs over
env x seed, performance profiles and P(improvement) per method pair (rliable), with links to
each env's report.html.

Backends: ``local`` (default) runs --jobs subprocesses at a time, like run_all. ``ray`` sends
each job to a Ray cluster as a task (pip install 'optiq[ray]'; --cpus-per-job, --gpus-per-job):
without --address a one-machine cluster is started, --address auto joins the one `ray start`
made, ray://HOST:10001 a remote one. Every node must see --outputs and this checkout at the same
paths (shared filesystem or the same image + mounted volume). A job whose worker dies is retried
and resumes from its last checkpoint.

Demos are shared per env (01_collect_demos.py --seed 0; an env without a shipped expert trains one).

Examples:
  python scripts/sweep.py --envs Hopper-v5 Ant-v5:scripted --seeds 0 1 2
  python scripts/sweep.py --spec study.yml --backend ray --address auto
  python scripts/sweep.py --envs Hopper-v5 Walker2d-v5 --methods bc_only,bc_rl,scratch --preset full --backend ray
"""

from __future__ import annotations

from pathlib import Path

from optiq.cli import ArgumentParser, HelpFormatter, device_arg, int_arg, run_main, seed_arg
from optiq.compare.methods import DEFAULT_METHODS, METHODS, parse_methods
from optiq.config import DEFAULT_HPARAMS, PRESETS
from optiq.errors import OptiqError
from optiq.paths import DEFAULT_OUTPUTS
from optiq.sweep.backends import BACKENDS
from optiq.sweep.run import run_sweep
from optiq.sweep.spec import SweepSpec, check_spec, load_spec, parse_env


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    study = parser.add_argument_group("the study (flags override --spec)")
    study.add_argument("--spec", type=Path, default=None, help="study YAML (see optiq/sweep/spec.py)")
    study.add_argument("--envs", nargs="+", default=None, help="envs, ENV or ENV:SOURCE (expert, scripted, minari)")
    study.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated, from {','.join(METHODS)} (default {','.join(DEFAULT_METHODS)})",
    )
    study.add_argument("--seeds", type=seed_arg, nargs="+", default=None, help="seeds (default 0 1 2)")
    study.add_argument("--preset", choices=PRESETS, default=None, help="budget preset (default quick)")
    study.add_argument(
        "--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: each env's run.algo)"
    )
    study.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="hparams override, every env"
    )
    study.add_argument("--run-name", default=None, help="run folder name in every env and of the study (default study)")
    study.add_argument("--hparams", type=Path, default=None, help=f"hyperparameters file (default {DEFAULT_HPARAMS})")
    study.add_argument("--device", type=device_arg, default=None, help="torch device of each job (default auto)")
    study.add_argument("--video", action="store_true", help="record evaluation videos (off by default in sweeps)")
    where = parser.add_argument_group("where it runs")
    where.add_argument(
        "--outputs", type=Path, default=DEFAULT_OUTPUTS, help="root of all outputs (shared by all nodes)"
    )
    where.add_argument("--backend", choices=BACKENDS, default="local", help="local process pool or Ray cluster")
    where.add_argument("--address", default=None, help="--backend ray: auto, ray://HOST:PORT (default: start one)")
    where.add_argument("--jobs", type=int_arg(1), default=None, help="jobs at once (default: cores / cluster slots)")
    where.add_argument("--cpus-per-job", type=float, default=1.0, help="--backend ray: CPUs requested per job")
    where.add_argument(
        "--gpus-per-job", type=float, default=None, help="--backend ray: GPUs per job (default 1 on cuda)"
    )
    where.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)

    if args.spec is None and args.envs is None:
        parser.error("give the envs: --envs ENV [ENV ...] or --spec study.yml")
    spec = load_spec(args.spec) if args.spec is not None else SweepSpec(envs=[])
    if args.envs is not None:
        spec.envs = [parse_env(text) for text in args.envs]
    if args.methods is not None:
        spec.methods = parse_methods(args.methods)
    if args.seeds is not None:
        if len(set(args.seeds)) < len(args.seeds):
            raise OptiqError(f"--seeds lists a seed twice ({' '.join(map(str, args.seeds))}); give each seed once")
        spec.seeds = args.seeds
    for key in ("preset", "algo", "run_name", "hparams", "device"):
        if getattr(args, key) is not None:
            setattr(spec, key, getattr(args, key))
    spec.overrides = [*spec.overrides, *args.overrides]
    spec.video = spec.video or args.video
    check_spec(spec)
    if args.backend != "ray" and (args.address is not None or args.gpus_per_job is not None):
        raise OptiqError("--address and --gpus-per-job need --backend ray")
    run_sweep(
        spec,
        args.outputs,
        backend=args.backend,
        address=args.address,
        jobs=args.jobs,
        cpus_per_job=args.cpus_per_job,
        gpus_per_job=args.gpus_per_job,
        progress_bar=not args.no_progress,
    )


if __name__ == "__main__":
    run_main(main)
