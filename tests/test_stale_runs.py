"""No stale reuse: a stage's outputs are resumed or reused only while their fingerprint is current."""

import copy

import pytest

from optiq.errors import OptiqError
from optiq.paths import RunPaths
from optiq.records import STAGE_CODE_VERSIONS, fingerprint_changes, read_fingerprint, stale_reason
from tests.helpers import synthetic_trajectories


def _changed(config, dotted, value):
    changed = copy.deepcopy(config)
    node = changed
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return changed


def test_a_changed_setting_is_named_with_both_values(tiny_config):
    from optiq.rl.pipeline import finetune_fingerprint

    before = finetune_fingerprint(tiny_config, "ppo", "bc", 0)
    after = finetune_fingerprint(_changed(tiny_config, "finetune.ppo.bc_rl.bc_coeff", 0.5), "ppo", "bc", 0)
    assert stale_reason(before, after) == "finetune.ppo.bc_rl.bc_coeff changed 1.0 -> 0.5"
    assert stale_reason(after, after) is None
    assert stale_reason(None, after).startswith("no fingerprint.json")
    # scratch never reads bc_rl: its runs stay current
    scratch = finetune_fingerprint(tiny_config, "ppo", "scratch", 0)
    changed = _changed(tiny_config, "finetune.ppo.bc_rl.bc_coeff", 0.5)
    assert finetune_fingerprint(changed, "ppo", "scratch", 0) == scratch
    # the budget, the evaluation schedule and the seed are part of a run
    assert "finetune.total_timesteps changed 1024 -> 2048" in fingerprint_changes(
        scratch, finetune_fingerprint(tiny_config, "ppo", "scratch", 0, total_timesteps=2048)
    )
    assert stale_reason(
        scratch, finetune_fingerprint(_changed(tiny_config, "eval.eval_freq", 256), "ppo", "scratch", 0)
    )
    assert "seed changed 0 -> 1" in fingerprint_changes(scratch, finetune_fingerprint(tiny_config, "ppo", "scratch", 1))
    assert tiny_config["finetune"]["ppo"]["bc_rl"]["bc_coeff"] == 1.0  # fingerprints never edit the config


def test_finetune_refuses_stale_runs_resumes_current_ones_and_restarts_on_request(
    tiny_config, tmp_path, monkeypatch, capsys
):
    from optiq.pipeline import PipelineOptions, plan_stage
    from optiq.rl.pipeline import finetune_stage

    paths = RunPaths(tmp_path, "Hopper-v5", "quick")
    run_dir = paths.finetune("ppo", "scratch", 0)
    kwargs = dict(total_timesteps=256, device="cpu", progress_bar=False)
    first = finetune_stage(tiny_config, paths, "ppo", "scratch", 0, **kwargs)
    stored = read_fingerprint(run_dir)
    assert stored["settings"]["finetune"]["total_timesteps"] == 256

    # unchanged: the run is current and is resumed (nothing left to train)
    again = finetune_stage(tiny_config, paths, "ppo", "scratch", 0, **kwargs)
    assert again["total_timesteps"] == first["total_timesteps"] and read_fingerprint(run_dir) == stored

    # a changed --set: refused, with the setting and the way out named
    changed = _changed(tiny_config, "finetune.ppo.hyperparams.learning_rate", 1e-3)
    with pytest.raises(OptiqError) as error:
        finetune_stage(changed, paths, "ppo", "scratch", 0, **kwargs)
    message = str(error.value)
    assert "finetune.ppo.hyperparams.learning_rate changed" in message and "--restart" in message
    assert "\n" not in message
    assert read_fingerprint(run_dir) == stored  # nothing touched

    # run_all's plan for the same change: that run is stale (and would be restarted)
    opts = PipelineOptions(
        algo="ppo",
        seeds=[0],
        force=set(),
        jobs=1,
        expert=None,
        video=False,
        device="cpu",
        progress_bar=False,
        hparams=None,
        overrides=[],
        preset="quick",
        inits=("scratch",),
    )
    stale_config = _changed(changed, "finetune.total_timesteps", 256)
    [unit] = plan_stage("finetune", stale_config, paths, opts)
    assert unit.status == "stale" and unit.restart and "learning_rate changed" in unit.reason
    [unit] = plan_stage("finetune", _changed(tiny_config, "finetune.total_timesteps", 256), paths, opts)
    assert unit.status == "complete"

    # a new code version of the stage: stale too
    monkeypatch.setitem(STAGE_CODE_VERSIONS, "finetune", STAGE_CODE_VERSIONS["finetune"] + 1)
    [unit] = plan_stage("finetune", _changed(tiny_config, "finetune.total_timesteps", 256), paths, opts)
    assert unit.status == "stale" and "the finetune stage's code changed" in unit.reason
    with pytest.raises(OptiqError, match=r"code changed \(version \d+ -> \d+\).*--restart"):
        finetune_stage(tiny_config, paths, "ppo", "scratch", 0, **kwargs)

    # --restart: the run starts over with the new fingerprint
    finetune_stage(changed, paths, "ppo", "scratch", 0, restart=True, **kwargs)
    assert read_fingerprint(run_dir)["settings"]["finetune"]["ppo"]["hyperparams"]["learning_rate"] == 1e-3
    assert read_fingerprint(run_dir)["code_version"] == STAGE_CODE_VERSIONS["finetune"]

    # outputs of an optiq that wrote no fingerprints: run_all redoes them; the script resumes them, warning
    (run_dir / "fingerprint.json").unlink()
    [unit] = plan_stage("finetune", _changed(changed, "finetune.total_timesteps", 256), paths, opts)
    assert unit.status == "stale" and unit.reason.startswith("no fingerprint.json")
    capsys.readouterr()
    finetune_stage(changed, paths, "ppo", "scratch", 0, **kwargs)
    assert "no fingerprint.json (written by an older optiq)" in " ".join(capsys.readouterr().out.split())
    assert read_fingerprint(run_dir) is not None

    # --resume-from skips the fingerprint check; a smaller budget is still refused before anything is written
    stored = read_fingerprint(run_dir)
    with pytest.raises(OptiqError, match="would shrink it"):
        finetune_stage(
            changed, paths, "ppo", "scratch", 0, total_timesteps=128, resume_from=run_dir / "checkpoints", device="cpu"
        )
    assert read_fingerprint(run_dir) == stored


def test_bc_refuses_checkpoints_trained_with_other_settings(tiny_config, tmp_path):
    from optiq.bc.pipeline import train_bc_stage
    from optiq.demos.storage import save_demos

    paths = RunPaths(tmp_path, "Hopper-v5", "quick")
    save_demos(paths.demos / "demos.npz", synthetic_trajectories(n=4, length=40))
    common = dict(device="cpu", progress_bar=False, per_seed=True)
    train_bc_stage(tiny_config, paths, 3, "ppo", n_epochs=1, **common)
    assert read_fingerprint(paths.bc_dir(3))["seed"] == 3
    # unchanged settings and more epochs: resumed
    rows = train_bc_stage(tiny_config, paths, 3, "ppo", n_epochs=2, **common)
    assert [row["epoch"] for row in rows] == [1, 2]
    with pytest.raises(OptiqError, match=r"bc.batch_size changed 64 -> 32; pass --restart"):
        train_bc_stage(_changed(tiny_config, "bc.batch_size", 32), paths, 3, "ppo", n_epochs=2, **common)
    with pytest.raises(OptiqError, match=r"already has 2 epochs, more than the 1 asked for"):
        train_bc_stage(tiny_config, paths, 3, "ppo", n_epochs=1, **common)
    # other demos: the BC is stale
    save_demos(paths.demos / "demos.npz", synthetic_trajectories(n=4, length=40, seed=1))
    with pytest.raises(OptiqError, match=r"the demos changed"):
        train_bc_stage(tiny_config, paths, 3, "ppo", n_epochs=2, **common)
    rows = train_bc_stage(
        _changed(tiny_config, "bc.batch_size", 32), paths, 3, "ppo", n_epochs=1, restart=True, **common
    )
    assert [row["epoch"] for row in rows] == [1]
    assert read_fingerprint(paths.bc_dir(3))["settings"]["bc"]["batch_size"] == 32


def test_demos_fingerprint_follows_the_source(tiny_config):
    from optiq.demos.pipeline import demos_fingerprint
    from optiq.paths import shipped_expert

    shipped = demos_fingerprint(tiny_config, 0)
    assert shipped["inputs"]["expert"] and shipped["settings"]["layout"] >= 2
    assert shipped == demos_fingerprint(tiny_config, 0, expert=shipped_expert("Hopper-v5"))
    assert "demos.n_episodes changed 2 -> 3" in fingerprint_changes(
        shipped, demos_fingerprint(tiny_config, 0, n_episodes=3)
    )
    assert "seed changed 0 -> 1" in fingerprint_changes(shipped, demos_fingerprint(tiny_config, 1))
    trained = demos_fingerprint(tiny_config, 0, train=True)
    assert "trained_expert" in trained["settings"] and not trained["inputs"]
