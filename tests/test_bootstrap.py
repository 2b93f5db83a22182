"""Pretrained-encoder bootstrap: loading, adapter modes, MLP weight copy, bundles, errors."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch as th

from optiq.errors import OptiqError
from optiq.rl.pretrained.architectures import build_encoder, save_encoder_checkpoint
from optiq.rl.pretrained.encoder_start import (
    AdaptedEncoder,
    AdapterObsWrapper,
    load_bundle,
    load_pretrained,
    save_bundle,
)
from optiq.rl.pretrained.policy_factory import bootstrap_model

OBS_DIM = 11  # Hopper-v5


def _checkpoint(tmp_path, arch, input_dim, output_dim, cfg, name="enc.pth"):
    th.manual_seed(0)
    module = build_encoder(arch, input_dim, output_dim, cfg)
    path = tmp_path / name
    save_encoder_checkpoint(module, str(path), arch, input_dim, output_dim, cfg)
    return module, path


def test_obs_mode_changes_observation_space_and_ppo_trains(tiny_config, tmp_path):
    _, path = _checkpoint(tmp_path, "mlp", OBS_DIM, 24, {"hidden_dims": [32]})
    boot = bootstrap_model(tiny_config, "ppo", 0, path, "obs", device="cpu")
    env = boot.model.get_env()
    assert env.observation_space.shape == (OBS_DIM,)  # adapted back to the env's obs dim (F_src 24 != 11)
    assert boot.report.f_src == 24 and boot.report.mode == "obs" and boot.adapter is not None
    boot.model.learn(256)
    assert boot.model.num_timesteps >= 256


def test_obs_mode_without_post_adapter_exposes_encoder_features(tiny_config, tmp_path):
    _, path = _checkpoint(tmp_path, "mlp", OBS_DIM, 11, {"hidden_dims": [16]})
    boot = bootstrap_model(tiny_config, "ppo", 0, path, "obs", device="cpu")
    assert boot.adapter is None and boot.model.get_env().observation_space.shape == (11,)


@pytest.mark.parametrize(
    "arch,cfg", [("transformer", {"d_model": 16, "n_heads": 2, "n_layers": 1}), ("cnn1d", {"channels": [8]})]
)
def test_feature_mode_with_other_dims_builds_adapter_and_forwards(tiny_config, tmp_path, arch, cfg):
    _, path = _checkpoint(tmp_path, arch, 7, 20, cfg)  # encoder input 7 != obs 11, F_src 20 != F_tgt 11
    boot = bootstrap_model(tiny_config, "ppo", 0, path, "feature", adapter_hidden=[32], device="cpu")
    extractor = boot.model.policy.features_extractor
    assert boot.report.f_src == 20 and boot.report.f_tgt == OBS_DIM and boot.report.adapter_hidden == [32]
    assert extractor.adapted.pre_adapter.in_dim == OBS_DIM and extractor.adapted.pre_adapter.out_dim == 7
    assert extractor.adapted.adapter.in_dim == 20 and extractor.adapted.adapter.out_dim == OBS_DIM
    out = extractor(th.zeros(4, OBS_DIM))
    assert out.shape == (4, OBS_DIM)
    boot.model.learn(256)


def test_mlp_weight_copy_gives_equal_first_layer_weights(tiny_config, tmp_path):
    # tiny_config's PPO torso is 32-32; a pretrained 11 -> 32 -> 32 -> 5 MLP matches its first two layers
    module, path = _checkpoint(tmp_path, "mlp", OBS_DIM, 5, {"hidden_dims": [32, 32]})
    boot = bootstrap_model(tiny_config, "ppo", 0, path, "none", device="cpu")
    torso = boot.model.policy.mlp_extractor.policy_net
    assert th.equal(torso[0].weight, module.net[0].weight) and th.equal(torso[0].bias, module.net[0].bias)
    assert th.equal(torso[2].weight, module.net[2].weight)
    assert boot.report.copied_layers == [("mlp_extractor.policy_net.0", True), ("mlp_extractor.policy_net.2", True)]


def test_copy_stops_at_first_mismatch(tiny_config, tmp_path):
    _, path = _checkpoint(tmp_path, "mlp", OBS_DIM, 5, {"hidden_dims": [32, 16]})
    boot = bootstrap_model(tiny_config, "ppo", 0, path, "none", device="cpu")
    assert boot.report.copied_layers == [("mlp_extractor.policy_net.0", True), ("mlp_extractor.policy_net.2", False)]
    assert boot.report.random_init_layers == ["mlp_extractor.policy_net.2"]


def test_torchscript_and_state_dict_give_the_same_outputs(tmp_path):
    module, path = _checkpoint(tmp_path, "cnn1d", OBS_DIM, 8, {"channels": [16, 16]})
    module.eval()
    ts_path = tmp_path / "enc.ts"
    th.jit.save(th.jit.script(module), str(ts_path))
    from_ts = load_pretrained(ts_path, "cpu", "feature", OBS_DIM, feature_pool="mean")
    from_sd = load_pretrained(path, "cpu", "feature", OBS_DIM, feature_pool="mean")
    assert from_ts.source == "torchscript" and from_sd.source == "state_dict" and from_ts.f_src == from_sd.f_src == 8
    x = th.randn(5, 4, OBS_DIM)
    with th.no_grad():
        th.testing.assert_close(from_ts.encoder(x), from_sd.encoder(x))
        last = load_pretrained(path, "cpu", "feature", OBS_DIM, feature_pool="last").encoder(x)
    assert not th.allclose(last, from_sd.encoder(x))  # pooling choice matters for sequences


def test_bundle_round_trip_gives_equal_actions(tiny_config, tmp_path):
    _, path = _checkpoint(tmp_path, "mlp", OBS_DIM, 24, {"hidden_dims": [32]})
    boot = bootstrap_model(tiny_config, "ppo", 0, path, "obs", device="cpu")
    bundle_path = save_bundle(
        boot.model, boot.adapter, boot.pre_adapter, tmp_path / "bundle.pt", {"mode": "obs", "pretrained": str(path)}
    )
    bundle = load_bundle(bundle_path)
    rebuilt = bootstrap_model(tiny_config, "ppo", 1, path, "obs", device="cpu")  # different seed: different random init
    rebuilt.model.policy.load_state_dict(bundle["policy_state_dict"])
    rebuilt.adapter.load_state_dict(bundle["adapter_state_dict"])
    obs = np.random.default_rng(0).normal(size=(6, OBS_DIM)).astype(np.float32)
    a = boot.model.predict(obs, deterministic=True)[0]
    b = rebuilt.model.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(a, b, atol=1e-6)
    adapted_a = AdaptedEncoder(boot.model.get_env().envs[0].adapted.encoder, None, boot.adapter)
    adapted_b = AdaptedEncoder(rebuilt.model.get_env().envs[0].adapted.encoder, None, rebuilt.adapter)
    with th.no_grad():
        th.testing.assert_close(adapted_a(th.as_tensor(obs)), adapted_b(th.as_tensor(obs)))


def test_error_paths(tiny_config, tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model")
    with pytest.raises(OptiqError, match=r"as TorchScript \(.*\); as a state dict \(.*\)"):
        load_pretrained(junk, "cpu", "feature", OBS_DIM)
    with pytest.raises(OptiqError, match="pretrained model not found"):
        load_pretrained(tmp_path / "missing.ts", "cpu", "feature", OBS_DIM)
    with pytest.raises(OptiqError, match="unknown --adapter-mode"):
        load_pretrained(junk, "cpu", "both", OBS_DIM)
    module = build_encoder("mlp", 7, 4, {"hidden_dims": [8]})
    ts_path = tmp_path / "seven.ts"
    th.jit.save(th.jit.script(module), str(ts_path))
    with pytest.raises(OptiqError, match="does not accept inputs of dim 11.*--torchscript-in-dim"):
        load_pretrained(ts_path, "cpu", "feature", OBS_DIM)
    assert load_pretrained(ts_path, "cpu", "feature", OBS_DIM, torchscript_in_dim=7).in_dim == 7
    with pytest.raises(OptiqError, match="needs --pretrained"):
        bootstrap_model(tiny_config, "ppo", 0, None, "obs", device="cpu")
    dict_env = gym.wrappers.TransformObservation(
        gym.make("Hopper-v5"),
        lambda o: {"state": o},
        gym.spaces.Dict({"state": gym.make("Hopper-v5").observation_space}),
    )
    adapted = AdaptedEncoder(load_pretrained(ts_path, "cpu", "obs", OBS_DIM, 7).encoder, None, None)
    with pytest.raises(OptiqError, match="dict observations.*--obs-key"):
        AdapterObsWrapper(dict_env, adapted, 4)


def test_optiq_train_rl_cli_feature_mode_with_bundle_and_video(tmp_path):
    from tests.helpers import run_python

    _, path = _checkpoint(tmp_path, "transformer", OBS_DIM, 16, {"d_model": 16, "n_heads": 2, "n_layers": 1})
    out = tmp_path / "outputs"
    bundle = tmp_path / "policy_bundle.pt"
    net = 'finetune.ppo.policy_kwargs.net_arch={"pi": [32], "vf": [32]}'
    command = [
        "-m",
        "optiq",
        "train",
        "rl",
        "--env",
        "Hopper-v5",
        "--algo",
        "ppo",
        "--total-steps",
        "512",
        "--num-envs",
        "2",
        "--pretrained",
        str(path),
        "--adapter-mode",
        "feature",
        "--adapter-hidden",
        "32",
        "--feature-pool",
        "last",
        "--eval-freq",
        "256",
        "--eval-episodes",
        "1",
        "--record-video",
        "--video-every",
        "256",
        "--video-length",
        "10",
        "--state-dict-out",
        str(bundle),
        "--outputs",
        str(out),
        "--no-progress",
        "--set",
        "finetune.ppo.hyperparams.n_steps=128",
        "--set",
        "finetune.ppo.hyperparams.batch_size=64",
        "--set",
        net,
    ]
    result = run_python(*command, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    run_dir = out / "Hopper-v5" / "quick" / "04_finetune" / "ppo_pretrained_seed0"
    report = json.loads((run_dir / "bootstrap_report.json").read_text())
    assert report["F_src"] == 16 and report["F_tgt"] == OBS_DIM and report["mode"] == "feature"
    assert "pretrained_arch=transformer" in result.stdout
    assert (run_dir / "summary.json").is_file() and list((run_dir / "videos").glob("step_*.mp4"))
    assert load_bundle(bundle)["metadata"]["adapter_mode"] == "feature"
    # The SB3 zip (primary artifact) reloads with the encoder inside its features extractor.
    from optiq.policies import PolicyFiles, load_model

    summary = json.loads((run_dir / "summary.json").read_text())
    model = load_model(PolicyFiles.from_json(summary["policy"]), "cpu")
    assert type(model.policy.features_extractor).__name__ == "PretrainedFeaturesExtractor"

    # dims that don't fit: one clear line, exit code 2
    seven = tmp_path / "seven.ts"
    th.jit.save(th.jit.script(build_encoder("mlp", 7, 4, {"hidden_dims": [8]})), str(seven))
    bad = run_python(
        *[
            "-m",
            "optiq",
            "train",
            "rl",
            "--pretrained",
            str(seven),
            "--outputs",
            str(out),
            "--run-name",
            "bad",
        ],
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "does not accept inputs of dim 11" in bad.stderr


def test_models_pickled_under_the_old_module_paths_still_load():
    # SB3 pickles a pretrained run's features-extractor class by module path: runs saved before the
    # move to optiq.rl.pretrained name optiq.rl.bootstrap (and .sb3 / .encoders).
    import pickle

    from optiq.rl.pretrained import architectures, encoder_start

    old = pickle.loads(b"coptiq.rl.bootstrap\nPretrainedFeaturesExtractor\n.")
    assert old is encoder_start.PretrainedFeaturesExtractor
    assert pickle.loads(b"coptiq.rl.encoders\nMLPEncoder\n.") is architectures.MLPEncoder
