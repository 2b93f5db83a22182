"""Bad input: one clear line on stderr, exit code 2, nothing on disk changed."""

import os

from optiq.demos.storage import save_demos
from tests.helpers import REPO, assert_one_line_error, run_script, synthetic_trajectories


def test_unknown_env(tmp_path):
    result = run_script("scripts/02_train_bc.py", "--env", "Hopperr-v5", "--outputs", str(tmp_path))
    assert_one_line_error(result, "unknown env 'Hopperr-v5'", "Hopper-v5")


def test_missing_demos_says_which_stage_to_run(tmp_path):
    result = run_script("scripts/02_train_bc.py", "--outputs", str(tmp_path))
    assert_one_line_error(result, "no demos", "01_collect_demos.py")


def test_demos_from_another_env(tmp_path):
    demos = tmp_path / "Walker2d-v5" / "quick" / "01_demos"
    save_demos(demos / "demos.npz", synthetic_trajectories(obs_dim=11, act_dim=3))
    before = (demos / "demos.npz").read_bytes()
    result = run_script("scripts/02_train_bc.py", "--env", "Walker2d-v5", "--outputs", str(tmp_path))
    assert_one_line_error(result, "observations of shape (11,)", "(17,)")
    assert (demos / "demos.npz").read_bytes() == before


def test_bad_override_key(tmp_path):
    result = run_script("scripts/06_compare.py", "--outputs", str(tmp_path), "--set", "bc.epochz=3")
    assert_one_line_error(result, "unknown key 'bc.epochz'")


def test_resume_path_that_does_not_exist(tmp_path):
    select = tmp_path / "Hopper-v5" / "quick" / "03_select"
    select.mkdir(parents=True)
    result = run_script(
        "scripts/04_finetune_rl.py", "--outputs", str(tmp_path), "--init", "scratch", "--resume", str(tmp_path / "nope")
    )
    assert_one_line_error(result, "--resume path does not exist")


def test_corrupt_bc_checkpoint(tmp_path):
    from optiq.atomic_io import write_json

    select = tmp_path / "Hopper-v5" / "quick" / "03_select"
    bad = tmp_path / "epoch_0005.zip"
    bad.write_bytes(b"PK\x03\x04 this is not a real zip")
    write_json(select / "best.json", {"model": str(bad), "vecnormalize": None, "algo": "ppo", "epoch": 5})
    result = run_script(
        "scripts/04_finetune_rl.py", "--outputs", str(tmp_path), "--set", "finetune.ppo.normalize=false"
    )
    assert_one_line_error(result, "corrupt or truncated model file")
    assert bad.read_bytes() == b"PK\x03\x04 this is not a real zip"


def test_unwritable_outputs_file_in_the_way(tmp_path):
    blocker = tmp_path / "outputs"
    blocker.write_text("a file where a folder should be")
    result = run_script("scripts/03_select_best.py", "--outputs", str(blocker))
    assert_one_line_error(result, "not writable")
    assert blocker.read_text() == "a file where a folder should be"


def test_help_explains_every_script():
    for script in ["run_all.py"] + [
        f"scripts/{name}" for name in sorted(os.listdir(REPO / "scripts")) if name[:2].isdigit()
    ]:
        result = run_script(script, "--help")
        assert result.returncode == 0, script
        assert "--env" in result.stdout and "--preset" in result.stdout, script


def test_malformed_and_incomplete_hparams(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("Hopper-v5:\n  bc: {n_epochs: 3\n")
    assert_one_line_error(run_script("scripts/06_compare.py", "--hparams", str(bad)), "malformed YAML", "bad.yml")
    import yaml

    data = yaml.safe_load((REPO / "hparams.yml").read_text())
    del data["Hopper-v5"]["eval"]["eval_freq"]
    incomplete = tmp_path / "incomplete.yml"
    incomplete.write_text(yaml.safe_dump(data))
    result = run_script("scripts/06_compare.py", "--hparams", str(incomplete))
    assert_one_line_error(result, "missing key 'Hopper-v5.eval.eval_freq'", "incomplete.yml")


def test_empty_and_nan_demos(tmp_path):
    import numpy as np

    demos = tmp_path / "Hopper-v5" / "quick" / "01_demos"
    demos.mkdir(parents=True)
    np.savez(
        demos / "demos.npz",
        obs=np.zeros((0, 11)),
        acts=np.zeros((0, 3)),
        rews=np.zeros(0),
        lengths=np.zeros(0, dtype=int),
        terminal=np.zeros(0, bool),
    )
    assert_one_line_error(run_script("scripts/02_train_bc.py", "--outputs", str(tmp_path)), "holds no transitions")
    episodes = synthetic_trajectories()
    episodes[0].obs[2, 4] = np.inf
    save_demos(demos / "demos.npz", episodes)
    assert_one_line_error(run_script("scripts/02_train_bc.py", "--outputs", str(tmp_path)), "NaN/inf values in 'obs'")


def test_bc_checkpoint_from_another_architecture(tmp_path):
    from optiq.atomic_io import write_json
    from optiq.bc.train import list_bc_checkpoints, train_bc
    from optiq.config import load_env_config

    demos = tmp_path / "demos"
    save_demos(demos / "demos.npz", synthetic_trajectories())
    small = load_env_config(
        "Hopper-v5", overrides={"bc.n_epochs": 1, "bc.batch_size": 32, "finetune.ppo.policy_kwargs.net_arch": [16]}
    )
    train_bc(small, demos, tmp_path / "bc", seed=0, algo="ppo", device="cpu", progress_bar=False)
    best = list_bc_checkpoints(tmp_path / "bc")[-1]
    write_json(tmp_path / "Hopper-v5" / "quick" / "03_select" / "best.json", best)
    result = run_script("scripts/04_finetune_rl.py", "--outputs", str(tmp_path))
    assert_one_line_error(result, "BC checkpoint does not fit the RL policy", "retrain BC")
    assert not (tmp_path / "Hopper-v5" / "quick" / "04_finetune" / "ppo_bc_seed0" / "summary.json").exists()


def test_writability_checks_side_by_side_do_not_trip_over_each_other(tmp_path):
    """Evaluations run two at a time check the same 05_eval folder at once (a shared probe file made one
    of them fail with 'not writable' in CI)."""
    from concurrent.futures import ThreadPoolExecutor

    from optiq.cli import check_writable

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: check_writable(tmp_path), range(2000)))
    assert list(tmp_path.iterdir()) == []  # no probe left behind
