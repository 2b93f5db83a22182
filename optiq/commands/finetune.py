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

import argparse
from pathlib import Path

from optiq.cli import SettingFlag, add_setting_flags, int_arg, make_parser, resolve, run_main, seed_arg
from optiq.rl.inits import INITS
from optiq.rl.pipeline import bootstrap_options, finetune_stage, resolve_init
from optiq.stage_options import FinetuneJobOptions

# Each dedicated flag is the --set of one setting, declared once here ({algo}: the run's --algo); its
# help is the setting's doc in optiq/settings.py.
RUN_LENGTH_FLAGS = (SettingFlag("--total-steps", "finetune.total_timesteps"),)
EXTENSION_FLAGS = (
    SettingFlag(
        "--critic-warmup-steps", "finetune.{algo}.bc_rl.critic_warmup_steps", deprecated=("--warm-start-steps",)
    ),
    SettingFlag("--actor-lr-warmup-steps", "finetune.{algo}.bc_rl.actor_lr_warmup_steps"),
    SettingFlag("--actor-lr-scale", "finetune.{algo}.bc_rl.actor_lr_scale"),
    SettingFlag("--bc-coeff", "finetune.{algo}.bc_rl.bc_coeff"),
    SettingFlag("--bc-decay", "finetune.{algo}.bc_rl.bc_decay"),
    SettingFlag("--mix-ratio", "finetune.{algo}.bc_rl.mix_ratio"),
    SettingFlag("--rho-bar", "finetune.{algo}.bc_rl.rho_bar"),
    SettingFlag("--c-bar", "finetune.{algo}.bc_rl.c_bar"),
    SettingFlag("--log-std-subtract", "finetune.{algo}.bc_rl.log_std_subtract"),
    SettingFlag("--demo-fraction", "finetune.{algo}.bc_rl.demo_fraction"),
)
IPMD_FLAGS = (SettingFlag("--expert-batch-size", "imitation.ipmd.expert_batch_size"),)
RUN_FLAGS = (
    SettingFlag("--num-envs", "finetune.{algo}.n_envs"),
    SettingFlag("--eval-freq", "eval.eval_freq"),
    SettingFlag("--eval-episodes", "eval.n_eval_episodes"),
)
SETTING_FLAGS = RUN_LENGTH_FLAGS + EXTENSION_FLAGS + IPMD_FLAGS + RUN_FLAGS


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(__doc__)
    parser.add_argument("--algo", choices=["ppo", "sac"], default=None, help="RL algorithm (default: run.algo)")
    parser.add_argument(
        "--init",
        choices=list(INITS),
        default=None,
        help="bc (default): BC weights + the BC-preserving extensions of finetune.<algo>.bc_rl; "
        "bc_naive: BC weights + stock PPO/SAC; scratch: random weights; pretrained: from --pretrained; "
        "airl/gail: imitation's adversarial IRL from the demos (PPO generator, raw observations); "
        "dagger: imitation's DAgger querying the stage-01 expert (imitation.dagger.budget_fraction of the budget); "
        "ipmd: inverse RL (IPMD) on SAC from the demos, settings imitation.ipmd (needs --algo sac)",
    )
    parser.add_argument("--seed", type=seed_arg, default=0, help="random seed")
    add_setting_flags(parser, RUN_LENGTH_FLAGS)
    parser.add_argument("--resume", type=Path, default=None, help="resume from this checkpoints/ folder or model zip")
    parser.add_argument("--restart", action="store_true", help="delete this run's checkpoints and start over")
    ext = parser.add_argument_group("BC-preserving extensions (override finetune.<algo>.bc_rl; --init bc only)")
    add_setting_flags(ext, EXTENSION_FLAGS)
    add_setting_flags(parser.add_argument_group("inverse RL (--init ipmd)"), IPMD_FLAGS)
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
    add_setting_flags(run, RUN_FLAGS)
    run.add_argument("--record-video", action="store_true", help="record videos of the policy during training")
    run.add_argument("--video-every", type=int_arg(1), default=50_000, help="env steps between training videos")
    run.add_argument(
        "--video-length",
        type=int_arg(1),
        default=500,
        help="frames per training video (raised to at least 10 s of real time)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    config, paths = resolve(args, SETTING_FLAGS)
    job = FinetuneJobOptions.from_args(args)
    algo = job.algo or config["run"]["algo"]
    init = resolve_init(job.init, args.pretrained)
    finetune_stage(
        config,
        paths,
        algo=algo,
        init=init,
        seed=job.seed,
        resume_from=args.resume,
        restart=job.restart,
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
