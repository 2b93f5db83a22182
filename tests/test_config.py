from pathlib import Path

import pytest
import yaml

from optiq.config import DEFAULT_HPARAMS, available_envs, load_env_config, parse_override
from optiq.errors import OptiqError

REQUIRED_ENVS = {"Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Humanoid-v5", "InvertedPendulum-v5"}


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "hparams.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _hopper() -> dict:
    return yaml.safe_load(DEFAULT_HPARAMS.read_text())["Hopper-v5"]


def test_shipped_file_has_required_envs_and_all_presets_validate():
    assert REQUIRED_ENVS <= set(available_envs())
    for env in available_envs():
        for preset in ("quick", "full"):
            config = load_env_config(env, preset)
            assert config["env_id"] == env
            assert isinstance(config["finetune"]["total_timesteps"], int)


def test_preset_overrides_base_values():
    full = load_env_config("Hopper-v5", "full")
    quick = load_env_config("Hopper-v5", "quick")
    assert full["finetune"]["total_timesteps"] == 1_000_000
    assert quick["finetune"]["total_timesteps"] < full["finetune"]["total_timesteps"]
    assert quick["finetune"]["ppo"]["hyperparams"]["gamma"] == 0.999  # untouched by the preset


def test_unknown_env_names_file_and_available_envs():
    with pytest.raises(OptiqError) as err:
        load_env_config("Hoper-v5")
    message = str(err.value)
    assert "unknown env 'Hoper-v5'" in message and "hparams.yml" in message and "Hopper-v5" in message
    assert "\n" not in message


def test_missing_key_names_the_dotted_key(tmp_path):
    section = _hopper()
    del section["bc"]["batch_size"]
    path = _write(tmp_path, {"Hopper-v5": section})
    with pytest.raises(OptiqError, match=r"missing key 'Hopper-v5\.bc\.batch_size'"):
        load_env_config("Hopper-v5", path=path)


def test_wrong_type_and_bad_choice(tmp_path):
    section = _hopper()
    section["finetune"]["total_timesteps"] = "lots"
    with pytest.raises(OptiqError, match="total_timesteps' must be an integer >= 1, got 'lots'"):
        load_env_config("Hopper-v5", path=_write(tmp_path, {"Hopper-v5": section}))
    section = _hopper()
    section["expert"]["algo"] = "dqn"
    with pytest.raises(OptiqError, match="choose one of: ppo, sac"):
        load_env_config("Hopper-v5", path=_write(tmp_path, {"Hopper-v5": section}))


def test_scientific_notation_is_accepted(tmp_path):
    section = _hopper()
    section["finetune"]["total_timesteps"] = "1e6"
    config = load_env_config("Hopper-v5", "full", path=_write(tmp_path, {"Hopper-v5": section}))
    assert config["finetune"]["total_timesteps"] == 1_000_000


def test_malformed_yaml_reports_line(tmp_path):
    path = tmp_path / "hparams.yml"
    path.write_text("Hopper-v5:\n  bc: [1, 2\n")
    with pytest.raises(OptiqError, match="malformed YAML at line"):
        load_env_config("Hopper-v5", path=path)


def test_override_of_unknown_key_is_rejected():
    with pytest.raises(OptiqError, match="unknown key 'bc.n_epoch'"):
        load_env_config("Hopper-v5", overrides={"bc.n_epoch": 3})
    config = load_env_config("Hopper-v5", overrides={"finetune.ppo.hyperparams.target_kl": 0.02})
    assert config["finetune"]["ppo"]["hyperparams"]["target_kl"] == 0.02


def test_parse_override():
    assert parse_override("finetune.total_timesteps=2000") == ("finetune.total_timesteps", 2000)
    assert parse_override("run.seeds=[0, 1]") == ("run.seeds", [0, 1])
    with pytest.raises(OptiqError):
        parse_override("no-equals-sign")
