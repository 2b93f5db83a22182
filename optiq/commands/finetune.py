"""Stage 04: RL fine-tuning from the best BC checkpoint (--init bc), from scratch, or from a
pretrained encoder (--pretrained PATH; also available as `optiq train rl`).

Both use the env's tuned PPO/SAC settings from hparams.yml. From BC, seed N starts from
BC seed N (03_select/seed<N>/best.json; where there are no per-seed BCs, the single BC of
03_select/best.json): its policy weights are copied into the SB3 policy and the copy report
(which layers copied, which random) is printed and saved to copy_report.json and TensorBoard.
Writes 04_finetune/<algo>_<init>_seed<N>/: eval.csv (timesteps, return mean/std: the
learning curve), checkpoints/, tb/, final_model.zip, summary.json (with the unlearning
report), run.json, fingerprint.json. Rerunning the same command resumes from the last
checkpoint; a run started with other settings or from another BC is refused with a one-line
error (--restart starts it over).
--init airl|gail|dagger train imitation-library baselines into the same layout
(optiq/rl/imitation_methods.py; settings: the optional imitation: section of hparams.yml);
they do not resume: an unfinished one starts over.
"""

from __future__ import annotations

from pathlib import Path

from optiq.cli import int_arg, make_parser, resolve, run_main, seed_arg, setting_arg
from optiq.rl.pipeline import (
    EXTENSION_FLAGS,
    apply_extension_flags,
    apply_run_flags,
    bootstrap_options,
    finetune_stage,
    resolve_init,
)


def main(argv: list[str] | None = None) -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: run.algo)")
    parser.add_argument(
        "--init",
        choices=["bc", "bc_naive", "scratch", "pretrained", "airl", "gail", "dagger"],
        default=None,
        help="bc (default): BC weights + the BC-preserving extensions of finetune.<algo>.bc_rl; "
        "bc_naive: BC weights + stock PPO/SAC; scratch: random weights; pretrained: from --pretrained; "
        "airl/gail: imitation's adversarial IRL from the demos (PPO generator, raw observations); "
        "dagger: imitation's DAgger querying the stage-01 expert (imitation.dagger.budget_fraction of the budget)",
    )
    parser.add_argument("--seed", type=seed_arg, default=0, help="random seed")
    parser.add_argument(
        "--total-steps",
        type=setting_arg("finetune.total_timesteps"),
        default=None,
        help="env steps (default: finetune.total_timesteps)",
    )
    parser.add_argument("--resume", type=Path, default=None, help="resume from this checkpoints/ folder or model zip")
    parser.add_argument("--restart", action="store_true", help="delete this run's checkpoints and start over")
    ext = parser.add_argument_group("BC-preserving extensions (override finetune.<algo>.bc_rl; --init bc only)")
    ext.add_argument(
        "--warm-start-steps",
        type=setting_arg("finetune.ppo.bc_rl.critic_warmup_steps"),
        help="env steps of critic-only training before the actor learns",
    )
    ext.add_argument(
        "--actor-lr-warmup-steps",
        type=setting_arg("finetune.ppo.bc_rl.actor_lr_warmup_steps"),
        help="PPO: env steps over which the actor LR ramps up",
    )
    ext.add_argument(
        "--actor-lr-scale",
        type=setting_arg("finetune.ppo.bc_rl.actor_lr_scale"),
        help="PPO: actor LR relative to PPO's after the warm-up",
    )
    ext.add_argument(
        "--bc-coeff",
        type=setting_arg("finetune.ppo.bc_rl.bc_coeff"),
        help="PPO: weight of the BC loss on demo batches (lambda0)",
    )
    ext.add_argument(
        "--bc-decay",
        type=setting_arg("finetune.ppo.bc_rl.bc_decay"),
        help="PPO: per-iteration decay of the BC weight (lambda1)",
    )
    ext.add_argument(
        "--mix-ratio",
        type=setting_arg("finetune.ppo.bc_rl.mix_ratio"),
        help="PPO: share of each minibatch taken from demos (V-trace corrected)",
    )
    ext.add_argument(
        "--rho-bar",
        type=setting_arg("finetune.ppo.bc_rl.rho_bar"),
        help="PPO: V-trace cap on importance ratios for TD errors/advantages",
    )
    ext.add_argument(
        "--c-bar",
        type=setting_arg("finetune.ppo.bc_rl.c_bar"),
        help="PPO: V-trace cap on importance ratios for the trace",
    )
    ext.add_argument(
        "--log-std-subtract",
        type=setting_arg("finetune.ppo.bc_rl.log_std_subtract"),
        help="PPO: subtract from the BC policy's log std (less noise)",
    )
    ext.add_argument(
        "--demo-fraction",
        type=setting_arg("finetune.sac.bc_rl.demo_fraction"),
        help="SAC: share of each replay batch drawn from demos",
    )
    pre = parser.add_argument_group("pretrained encoder start (optiq train rl)")
    pre.add_argument(
        "--pretrained", type=Path, help="TorchScript .ts or state-dict .pth encoder (implies --init pretrained)"
    )
    pre.add_argument(
        "--adapter-mode", choices=["obs", "feature", "none"], default="feature", help="how the encoder is used"
    )
    pre.add_argument(
        "--torchscript-in-dim", type=int_arg(1), help="input dim the encoder expects (pre-adapter from env obs)"
    )
    pre.add_argument("--adapter-hidden", default="", help="hidden sizes of the F_src -> F_tgt adapter, e.g. 256,128")
    pre.add_argument("--feature-pool", choices=["last", "mean"], default="last", help="pooling of (B, T, F) outputs")
    pre.add_argument("--obs-key", help="key of dict observations fed to the encoder")
    pre.add_argument(
        "--bc-steps", type=int_arg(0), default=0, help="BC warm-up batches on stage-01 demos before RL (PPO)"
    )
    pre.add_argument("--bc-batch-size", type=int_arg(1), default=256, help="batch size of the BC warm-up")
    pre.add_argument("--state-dict-out", type=Path, help="also write a self-contained state-dict bundle here")
    run = parser.add_argument_group("training run")
    run.add_argument(
        "--num-envs", type=setting_arg("finetune.ppo.n_envs"), help="parallel envs (overrides finetune.<algo>.n_envs)"
    )
    run.add_argument(
        "--eval-freq",
        type=setting_arg("eval.eval_freq"),
        help="env steps between evaluations (overrides eval.eval_freq)",
    )
    run.add_argument(
        "--eval-episodes",
        type=setting_arg("eval.n_eval_episodes"),
        help="episodes per evaluation (overrides eval.n_eval_episodes)",
    )
    run.add_argument("--record-video", action="store_true", help="record videos of the policy during training")
    run.add_argument("--video-every", type=int_arg(1), default=50_000, help="env steps between training videos")
    run.add_argument(
        "--video-length",
        type=int_arg(1),
        default=500,
        help="frames per training video (raised to at least 10 s of real time)",
    )
    args = parser.parse_args(argv)
    config, paths = resolve(args)
    algo = args.algo or config["run"]["algo"]
    apply_extension_flags(config, algo, {key: getattr(args, flag) for flag, key in EXTENSION_FLAGS.items()})
    apply_run_flags(config, algo, args.num_envs, args.eval_freq, args.eval_episodes)
    init = resolve_init(args.init, args.pretrained)
    finetune_stage(
        config,
        paths,
        algo=algo,
        init=init,
        seed=args.seed,
        total_timesteps=args.total_steps,
        resume_from=args.resume,
        restart=args.restart,
        device=args.device,
        progress_bar=not args.no_progress,
        tracker_args=args,
        bootstrap=bootstrap_options(
            args.pretrained,
            args.adapter_mode,
            args.torchscript_in_dim,
            args.adapter_hidden,
            args.feature_pool,
            args.obs_key,
        ),
        video_every=args.video_every if args.record_video else 0,
        video_length=args.video_length,
        state_dict_out=args.state_dict_out,
        bc_steps=args.bc_steps,
        bc_batch_size=args.bc_batch_size,
    )


if __name__ == "__main__":
    run_main(main)
