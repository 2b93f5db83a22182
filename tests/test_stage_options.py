"""Stage options round-trip through the real command parsers, and run_all launches jobs with them."""

from pathlib import Path

import pytest

from optiq.commands import eval_video, finetune, select_best, train_bc
from optiq.stage_options import EvalOptions, FinetuneJobOptions, RunSelection, SelectOptions, TrainBCOptions

SELECTION = RunSelection(
    "Walker2d-v5",
    "full",
    "study-a",
    Path("/tmp/out"),
    Path("/tmp/h.yml"),
    "cpu",
    "pixels",
    ("finetune.total_timesteps=5000", "bc.n_epochs=3"),
    True,
)

CASES = [
    (train_bc, TrainBCOptions, TrainBCOptions("sac", 3, None, 7, True)),
    (train_bc, TrainBCOptions, TrainBCOptions(None, None, (0, 4, 2), None, False)),
    (train_bc, TrainBCOptions, TrainBCOptions()),
    (select_best, SelectOptions, SelectOptions("eval_return", 4, 2, None)),
    (select_best, SelectOptions, SelectOptions(None, None, None, (1, 2))),
    (finetune, FinetuneJobOptions, FinetuneJobOptions("sac", "bc_naive", 5, True)),
    (finetune, FinetuneJobOptions, FinetuneJobOptions(None, None)),
    (eval_video, EvalOptions, EvalOptions(("bc_only_seed0", "ppo_bc_seed1"), 3, 77, False)),
    (eval_video, EvalOptions, EvalOptions()),
]


@pytest.mark.parametrize(("command", "options_class", "options"), CASES)
def test_to_argv_parses_back_to_the_same_options(command, options_class, options):
    args = command.build_parser().parse_args(SELECTION.to_argv() + options.to_argv())
    assert options_class.from_args(args) == options
    assert RunSelection.from_args(args) == SELECTION


def test_the_default_selection_round_trips():
    args = train_bc.build_parser().parse_args([])
    selection = RunSelection.from_args(args)
    assert RunSelection.from_args(train_bc.build_parser().parse_args(selection.to_argv())) == selection


def test_run_all_launches_each_stage_job_with_its_options(tmp_path):
    from optiq import pipeline
    from optiq.paths import RunPaths

    paths = RunPaths(tmp_path, "Hopper-v5", "quick")
    opts = pipeline.PipelineOptions(
        algo="ppo",
        seeds=[0],
        force=set(),
        jobs=1,
        expert=None,
        video=False,
        device="cpu",
        progress_bar=False,
        hparams=Path("hparams.yml"),
        overrides=["finetune.total_timesteps=1000"],
        preset="quick",
    )
    unit = pipeline.Unit("ppo_bc_seed2", ("bc", 2), tmp_path, "stale")
    command = pipeline._script_command("finetune", paths, opts) + FinetuneJobOptions("ppo", "bc", 2, True).to_argv()
    args = finetune.build_parser().parse_args(command[command.index("finetune") + 1 :])
    assert FinetuneJobOptions.from_args(args) == FinetuneJobOptions("ppo", "bc", 2, restart=unit.restart)
    assert RunSelection.from_args(args).overrides == ("finetune.total_timesteps=1000",)
    job = pipeline._eval_job(paths, opts, pipeline.Unit("bc_only_seed0", "bc_only_seed0", tmp_path, "new"))
    eval_args = eval_video.build_parser().parse_args(job.command[job.command.index("eval-video") + 1 :])
    assert EvalOptions.from_args(eval_args) == EvalOptions(("bc_only_seed0",), seed=pipeline.EVAL_SEED, video=False)
