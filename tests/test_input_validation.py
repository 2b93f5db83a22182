"""Bad settings and flags fail up front: one line, exit code 2, nothing on disk touched.

One test per class of bad value (wrong type, out of range, unknown key, bad flag, absent GPU),
plus the BC resume with a relative --outputs and the CSV formats. Scripts run in-process
(runpy) where they fail before any work, so the checks cost no interpreter start-up.
"""

from __future__ import annotations

import hashlib
import runpy
import sys
from pathlib import Path

import pytest
import yaml

from optiq.config import DEFAULT_HPARAMS, load_env_config
from optiq.errors import OptiqError
from tests.helpers import REPO, assert_one_line_error, run_script, synthetic_trajectories

SMALL_NET = ["--set", 'finetune.ppo.policy_kwargs.net_arch={"pi": [16], "vf": [16]}']


def run_inprocess(monkeypatch, capsys, script: str, *args: str) -> tuple[int, str]:
    """Run ``script`` as ``__main__`` with ``args``; return its exit code and stderr (it must exit)."""
    monkeypatch.setattr(sys, "argv", [str(REPO / script), *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO / script), run_name="__main__")
    return exit_info.value.code, capsys.readouterr().err


def assert_error(code: int, stderr: str, *fragments: str) -> str:
    """Exit code 2 and exactly one 'error: ...' line holding ``fragments``; returns the line."""
    assert code == 2, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash (an empty dict if it does not exist)."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _hopper_file(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(DEFAULT_HPARAMS.read_text())
    edit(data["Hopper-v5"])
    path = tmp_path / "hparams.yml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- wrong type ------------------------------------------------------------------------------


def test_wrong_type_is_one_line_naming_key_value_and_expected(monkeypatch, capsys, tmp_path):
    out = tmp_path / "out"
    code, err = run_inprocess(
        monkeypatch,
        capsys,
        "scripts/04_finetune_rl.py",
        "--outputs",
        str(out),
        "--set",
        "finetune.ppo.hyperparams.learning_rate=[1]",
    )
    line = assert_error(
        code, err, "'finetune.ppo.hyperparams.learning_rate' must be a number > 0, got [1] (fix the --set value)"
    )
    assert "hparams.yml" not in line  # the value came from --set, not the file
    assert not out.exists()
    # the same value in the file names the file and the env's key
    path = _hopper_file(tmp_path, lambda env: env["finetune"]["ppo"]["hyperparams"].update(learning_rate=[1]))
    with pytest.raises(OptiqError) as error:
        load_env_config("Hopper-v5", path=path)
    assert str(error.value).startswith(f"{path}: 'Hopper-v5.finetune.ppo.hyperparams.learning_rate' must be")
    for key, value in [("bc.batch_size", "many"), ("finetune.ppo.normalize", "yes"), ("run.seeds", 3)]:
        with pytest.raises(OptiqError, match=f"^'{key}' must be .*, got .* \\(fix the --set value\\)$"):
            load_env_config("Hopper-v5", overrides={key: value})


# --- out of range ----------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("bc.batch_size", 0, "an integer >= 1"),
    ("bc.val_fraction", 1.5, "a number in [0, 1)"),
    ("bc.learning_rate", float("nan"), "a number > 0"),
    ("bc.checkpoint_every", 0, "an integer >= 1"),
    ("finetune.total_timesteps", -5, "an integer >= 1"),
    ("finetune.total_timesteps", 0, "an integer >= 1"),
    ("finetune.checkpoint_freq", -1, "an integer >= 0"),
    ("demos.n_episodes", 0, "an integer >= 1"),
    ("eval.n_eval_episodes", 0, "an integer >= 1"),
    ("run.seeds", [-1], "distinct integers"),
    ("run.seeds", [0, 0], "distinct integers"),
    ("finetune.ppo.hyperparams.gamma", 0, "a number in (0, 1]"),
    ("finetune.ppo.hyperparams.batch_size", 1, "an integer >= 2"),
    ("finetune.ppo.hyperparams.target_kl", 0, "a number > 0 or null"),
    ("finetune.sac.hyperparams.tau", 1.5, "a number in (0, 1]"),
    ("finetune.sac.hyperparams.ent_coef", "auto_-1", "'auto'"),
    ("finetune.sac.hyperparams.gradient_steps", 0, "an integer >= 1 or -1"),
    ("finetune.ppo.bc_rl.mix_ratio", 1.0, "a number in [0, 1)"),
    ("finetune.ppo.bc_rl.bc_decay", 0, "a number in (0, 1]"),
    ("finetune.ppo.bc_rl.bc_loss", "l1", "one of: nll, mse"),
    ("finetune.ppo.bc_rl.bc_filter", "no", "true or false"),
    ("finetune.sac.bc_rl.demo_fraction", 1.5, "a number in [0, 1]"),
    ("finetune.sac.bc_rl.ent_coef", "automatic", "'auto'"),
]


@pytest.mark.parametrize(("key", "value", "expect"), OUT_OF_RANGE)
def test_out_of_range_setting_is_rejected(key, value, expect):
    with pytest.raises(OptiqError) as error:
        load_env_config("Hopper-v5", overrides={key: value})
    message = str(error.value)
    assert message.startswith(f"'{key}' must be ") and expect in message, message
    assert message.endswith("(fix the --set value)") and "\n" not in message


def test_valid_values_at_the_edges_are_accepted():
    config = load_env_config(
        "Hopper-v5",
        overrides={
            "bc.val_fraction": 0.0,
            "finetune.checkpoint_freq": 0,
            "eval.eval_freq": 0,
            "finetune.ppo.hyperparams.gamma": 1,
            "finetune.ppo.hyperparams.learning_rate": "1e-4",  # YAML reads 1e-4 as a string
            "finetune.ppo.hyperparams.target_kl": None,
            "finetune.sac.hyperparams.ent_coef": "auto_0.1",
            "finetune.sac.hyperparams.train_freq": [1, "episode"],
            "finetune.sac.hyperparams.gradient_steps": -1,
            "finetune.ppo.bc_rl.log_std_floor": None,
            "finetune.ppo.bc_rl.bc_loss": "mse",
        },
    )
    assert config["finetune"]["ppo"]["hyperparams"]["learning_rate"] == pytest.approx(1e-4)


def test_out_of_range_in_a_preset_names_the_preset(tmp_path):
    path = _hopper_file(tmp_path, lambda env: env["presets"]["quick"].update({"bc.val_fraction": 1.5}))
    with pytest.raises(OptiqError) as error:
        load_env_config("Hopper-v5", "quick", path=path)
    message = str(error.value)
    assert message.startswith(f"{path}: 'Hopper-v5.bc.val_fraction' must be a number in [0, 1), got 1.5")
    assert message.endswith(
        "(set in Hopper-v5.presets.quick; fix it there or override it with --set bc.val_fraction=VALUE)"
    )
    load_env_config("Hopper-v5", "full", path=path)  # the full preset does not set it


def test_out_of_range_from_the_command_line_touches_nothing(monkeypatch, capsys, tmp_path):
    """`finetune.total_timesteps=0` used to leave a run folder with a header-only eval.csv."""
    run_dir = tmp_path / "Hopper-v5" / "quick" / "04_finetune" / "ppo_scratch_seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "eval.csv").write_text("timesteps,return_mean\n0,1.0\n")
    before = snapshot(tmp_path)
    for value in ("0", "-5"):
        code, err = run_inprocess(
            monkeypatch,
            capsys,
            "scripts/04_finetune_rl.py",
            "--outputs",
            str(tmp_path),
            "--init",
            "scratch",
            "--set",
            f"finetune.total_timesteps={value}",
        )
        assert_error(code, err, f"'finetune.total_timesteps' must be an integer >= 1, got {value} (fix the --set")
    code, err = run_inprocess(
        monkeypatch, capsys, "scripts/02_train_bc.py", "--outputs", str(tmp_path), "--set", "bc.val_fraction=1.5"
    )
    assert_error(code, err, "bc.val_fraction", "[0, 1)")
    assert snapshot(tmp_path) == before


# --- unknown key -----------------------------------------------------------------------------


def test_unknown_set_key_suggests_the_close_one_and_does_not_blame_the_file(monkeypatch, capsys, tmp_path):
    code, err = run_inprocess(
        monkeypatch, capsys, "scripts/06_compare.py", "--outputs", str(tmp_path / "o"), "--set", "bc.epochz=3"
    )
    line = assert_error(code, err, "unknown key 'bc.epochz' in --set", "did you mean 'bc.n_epochs'?")
    assert "hparams.yml" not in line and "overrides overrides" not in line
    assert not (tmp_path / "o").exists()
    for key, close in [
        ("finetune.ppo.hyperparams.learnig_rate", "finetune.ppo.hyperparams.learning_rate"),  # SB3's arguments
        ("finetune.ppo.bc_rl.bc_los", "finetune.ppo.bc_rl.bc_loss"),
        ("finetune.sac.bc_rl.mix_ratio", None),  # a PPO-only extension
        ("expert.n_timestep", "expert.n_timesteps"),
    ]:
        with pytest.raises(OptiqError) as error:
            load_env_config("Hopper-v5", overrides={key: 1})
        assert f"unknown key '{key}' in --set" in str(error.value)
        if close:
            assert f"did you mean '{close}'?" in str(error.value)
    with pytest.raises(OptiqError, match=r"unknown key 'zzz\.a' in --set; the sections are: expert, demos, bc"):
        load_env_config("Hopper-v5", overrides={"zzz.a": 1})


def test_unknown_key_in_the_file_names_file_and_preset(tmp_path):
    path = _hopper_file(tmp_path, lambda env: env["presets"]["quick"].update({"bc.epochz": 3}))
    with pytest.raises(OptiqError) as error:
        load_env_config("Hopper-v5", "quick", path=path)
    assert str(error.value).startswith(f"{path}: Hopper-v5.presets.quick sets unknown key 'bc.epochz'")
    path = _hopper_file(tmp_path, lambda env: env["finetune"]["sac"]["hyperparams"].update(learning_start=5))
    with pytest.raises(OptiqError, match="'Hopper-v5' has unknown key 'finetune.sac.hyperparams.learning_start'"):
        load_env_config("Hopper-v5", path=path)


# --- bad flags -------------------------------------------------------------------------------

BAD_FLAGS = [
    ("scripts/02_train_bc.py", ["--seed", "-1"], "argument --seed: must be an integer in [0, "),
    ("scripts/02_train_bc.py", ["--epochs", "0"], "argument --epochs: must be an integer >= 1"),
    ("scripts/01_collect_demos.py", ["--n-episodes", "0"], "argument --n-episodes: must be an integer >= 1"),
    ("scripts/03_select_best.py", ["--episodes", "-2"], "argument --episodes: must be an integer >= 1"),
    ("scripts/04_finetune_rl.py", ["--total-steps", "0"], "argument --total-steps: must be an integer >= 1"),
    ("scripts/04_finetune_rl.py", ["--total-steps", "-5"], "argument --total-steps: must be an integer >= 1"),
    ("scripts/04_finetune_rl.py", ["--mix-ratio", "1"], "argument --mix-ratio: must be a number in [0, 1)"),
    ("scripts/04_finetune_rl.py", ["--bc-decay", "0"], "argument --bc-decay: must be a number in (0, 1]"),
    ("scripts/04_finetune_rl.py", ["--num-envs", "0"], "argument --num-envs: must be an integer >= 1"),
    ("scripts/04_finetune_rl.py", ["--bc-steps", "-1"], "argument --bc-steps: must be an integer >= 0"),
    ("scripts/05_eval_video.py", ["--episodes", "0"], "argument --episodes: must be an integer >= 1"),
    ("run_all.py", ["--seeds", "-1"], "argument --seeds: must be an integer in [0, "),
    ("run_all.py", ["--seeds", "0", "0"], "argument --seeds: lists a seed twice"),
    ("run_all.py", ["--jobs", "0"], "argument --jobs: must be an integer >= 1"),
    ("run_all.py", ["--force", "bcc"], "unknown stage 'bcc' for --force"),
    ("scripts/02_train_bc.py", ["--device", "gpu0"], "unknown device 'gpu0'; choose one of: auto, cpu, cuda"),
    ("scripts/02_train_bc.py", ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
]


@pytest.mark.parametrize(("script", "flags", "fragment"), BAD_FLAGS)
def test_bad_flag_is_one_line_before_any_work(monkeypatch, capsys, tmp_path, script, flags, fragment):
    out = tmp_path / "out"
    code, err = run_inprocess(monkeypatch, capsys, script, "--outputs", str(out), *flags)
    assert_error(code, err, fragment)
    assert not out.exists()


def test_seed_flags_fail_in_a_real_process_too(tmp_path):
    """The issue's `--seeds -1` / `--seed -1` (a numpy traceback in stage 02 before)."""
    assert_one_line_error(run_script("run_all.py", "--outputs", str(tmp_path / "o"), "--seeds", "-1"), "--seeds")
    assert_one_line_error(run_script("scripts/02_train_bc.py", "--outputs", str(tmp_path / "o"), "--seed", "-1"))
    assert not (tmp_path / "o").exists()


def test_bad_device_never_blames_an_existing_checkpoint(monkeypatch, capsys, tmp_path):
    """`--device gpu0` with a checkpoint on disk used to say the checkpoint was bad and to delete it."""
    ckpt = tmp_path / "Hopper-v5" / "quick" / "04_finetune" / "ppo_scratch_seed0" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "model_000002048.zip").write_bytes(b"a good checkpoint")
    (ckpt / "latest.json").write_text('{"timesteps": 2048, "model": "model_000002048.zip"}')
    before = snapshot(tmp_path)
    code, err = run_inprocess(
        monkeypatch,
        capsys,
        "scripts/04_finetune_rl.py",
        "--outputs",
        str(tmp_path),
        "--init",
        "scratch",
        "--device",
        "gpu0",
    )
    line = assert_error(code, err, "--device", "gpu0", "auto, cpu, cuda, cuda:N")
    assert "checkpoint" not in line and "delete" not in line
    assert snapshot(tmp_path) == before


# --- CUDA absent -----------------------------------------------------------------------------


def test_cuda_without_a_gpu_is_an_error_not_a_silent_cpu_run(monkeypatch, capsys, tmp_path):
    import torch

    from optiq.cli import check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:0", "CUDA"):
        code, err = run_inprocess(
            monkeypatch, capsys, "scripts/02_train_bc.py", "--outputs", str(tmp_path / "o"), "--device", device
        )
        assert_error(code, err, "no CUDA GPU is visible; use --device cpu or auto")
    assert not (tmp_path / "o").exists()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_device("cuda:0") == "cuda:0" and check_device("cuda") == "cuda"
    with pytest.raises(ValueError, match=r"cuda:3: only 1 CUDA GPU\(s\) visible"):
        check_device("cuda:3")
    assert check_device("auto") == "auto" and check_device("cpu") == "cpu"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_flag_on_this_gpu_less_machine(tmp_path):
    result = run_script("scripts/03_select_best.py", "--outputs", str(tmp_path / "o"), "--device", "cuda")
    assert_one_line_error(result, "--device", "no CUDA GPU is visible")
    assert not (tmp_path / "o").exists()


# --- item 4 and 7: BC resume with a relative --outputs, CSV formats --------------------------


def test_bc_resumes_with_a_relative_outputs_folder(monkeypatch, capsys, tmp_path):
    from optiq.atomic_io import read_json
    from optiq.bc.train import read_metrics
    from optiq.demos.storage import save_demos

    monkeypatch.chdir(tmp_path)
    save_demos(Path("rel_out/Hopper-v5/quick/01_demos/demos.npz"), synthetic_trajectories(n=4, length=40))
    common = ["--outputs", "rel_out", "--no-progress", "--set", "bc.checkpoint_every=1", "--set", "bc.batch_size=32"]
    bc_dir = tmp_path / "rel_out" / "Hopper-v5" / "quick" / "02_bc"
    for epochs in ("2", "3", "4"):  # the first rerun resumed from a doubled path before; every one after, too
        monkeypatch.setattr(sys, "argv", ["02_train_bc.py", *common, *SMALL_NET, "--epochs", epochs])
        runpy.run_path(str(REPO / "scripts" / "02_train_bc.py"), run_name="__main__")
    capsys.readouterr()
    assert [row["epoch"] for row in read_metrics(bc_dir / "metrics.csv")] == [1, 2, 3, 4]
    text = (bc_dir / "metrics.csv").read_bytes()
    assert b"\r\n" not in text
    assert [line.split(b",")[0] for line in text.splitlines()[1:]] == [b"1", b"2", b"3", b"4"]  # not 1.0, 2.0
    index = read_json(bc_dir / "checkpoints.json")["checkpoints"]
    assert [entry["model"] for entry in index] == [f"checkpoints/epoch_{n:04d}.zip" for n in (1, 2, 3, 4)]


def test_eval_csv_has_unix_line_endings_and_integer_steps(tmp_path):
    from optiq.rl.training import EvalLog, read_eval_csv

    log = EvalLog(tmp_path / "eval.csv")
    for step in (0.0, 2048.0):
        log.append({"timesteps": step, "return_mean": 1.5, "return_std": 0.5, "length_mean": 10.0, "wall_time_s": 1})
    text = (tmp_path / "eval.csv").read_bytes()
    assert b"\r" not in text
    assert text.splitlines()[2].startswith(b"2048,1.5,")
    assert [row["timesteps"] for row in read_eval_csv(tmp_path / "eval.csv")] == [0.0, 2048.0]
