"""Dedicated flags are aliases of ``--set KEY=VALUE``: each maps to one setting and resolves like its --set."""

import importlib
import pkgutil

import pytest

import optiq.commands
from optiq import cli
from optiq.cli import resolve
from optiq.commands.finetune import SETTING_FLAGS, build_parser
from optiq.config import setting_rule
from optiq.errors import OptiqError


def _parsers(monkeypatch):
    """Every command's parser, captured from ``make_parser`` while its ``--help`` runs."""
    made = {}
    for info in pkgutil.iter_modules(optiq.commands.__path__):
        module = importlib.import_module(f"optiq.commands.{info.name}")
        if not hasattr(module, "main"):
            continue
        original = cli.make_parser

        def capture(*args, _name=info.name, _original=original, **kwargs):
            made[_name] = _original(*args, **kwargs)
            return made[_name]

        monkeypatch.setattr(module, "make_parser", capture, raising=False)
        with pytest.raises(SystemExit):
            module.main(["--help"])
    return made


def test_every_dedicated_flag_of_every_command_maps_to_one_setting(monkeypatch, capsys):
    parsers = _parsers(monkeypatch)
    assert {"finetune", "train_bc", "collect_demos", "select_best", "eval_video"} <= set(parsers)
    seen = 0
    for name, parser in parsers.items():
        settings = {}
        for action in parser._actions:
            setting = getattr(action.type, "setting", None)
            if setting is None or action.dest.startswith("deprecated__"):  # an old spelling of the same flag
                continue
            seen += 1
            assert setting_rule(setting) is not None, f"{name} {action.option_strings}: unknown setting {setting}"
            assert setting not in settings, f"{name}: {action.option_strings} and {settings.get(setting)} set {setting}"
            settings[setting] = action.option_strings
    assert seen >= len(SETTING_FLAGS) + 4  # stage 04's table and the other stages' flags


def test_the_finetune_table_is_every_setting_flag_of_stage_04(monkeypatch, capsys):
    parser = _parsers(monkeypatch)["finetune"]
    with_setting = {action.option_strings[0] for action in parser._actions if hasattr(action.type, "setting")}
    assert with_setting == {name for flag in SETTING_FLAGS for name in (flag.flag, *flag.deprecated)}
    for flag in SETTING_FLAGS:
        assert flag.algos, f"{flag.flag}: {flag.key} is a setting of no algorithm"


def _config(*argv):
    config, _ = resolve(build_parser().parse_args(list(argv)), SETTING_FLAGS)
    return config


def test_a_dedicated_flag_resolves_exactly_like_its_set():
    by_flag = _config("--bc-coeff", "0.5", "--num-envs", "3", "--eval-freq", "777", "--total-steps", "1234")
    by_set = _config(
        "--set",
        "finetune.ppo.bc_rl.bc_coeff=0.5",
        "--set",
        "finetune.ppo.n_envs=3",
        "--set",
        "eval.eval_freq=777",
        "--set",
        "finetune.total_timesteps=1234",
    )
    assert by_flag == by_set
    assert by_flag != _config()  # the flags changed something
    assert by_flag["finetune"]["ppo"]["bc_rl"]["bc_coeff"] == 0.5 and by_flag["finetune"]["total_timesteps"] == 1234


def test_the_flag_wins_over_set_and_follows_the_algorithm():
    config = _config("--set", "finetune.ppo.bc_rl.bc_coeff=0.25", "--bc-coeff", "0.75")
    assert config["finetune"]["ppo"]["bc_rl"]["bc_coeff"] == 0.75  # later layer: the dedicated flag
    sac = _config("--algo", "sac", "--bc-coeff", "0.3", "--demo-fraction", "0.4")
    assert (
        sac["finetune"]["sac"]["bc_rl"]["bc_coeff"] == 0.3 and sac["finetune"]["sac"]["bc_rl"]["demo_fraction"] == 0.4
    )
    assert sac["finetune"]["ppo"]["bc_rl"] == _config()["finetune"]["ppo"]["bc_rl"]  # PPO untouched
    # run.algo decides when --algo is absent
    assert _config("--set", "run.algo=sac", "--bc-coeff", "0.3")["finetune"]["sac"]["bc_rl"]["bc_coeff"] == 0.3


def test_a_flag_the_algorithm_does_not_have_is_one_line_naming_it():
    with pytest.raises(OptiqError, match=r"--mix-ratio sets finetune.ppo.bc_rl.mix_ratio, which SAC does not have"):
        _config("--algo", "sac", "--mix-ratio", "0.2")
    with pytest.raises(OptiqError, match=r"--demo-fraction sets finetune.sac.bc_rl.demo_fraction, which PPO does not"):
        _config("--algo", "ppo", "--demo-fraction", "0.2")


def test_an_out_of_range_flag_is_refused_by_argparse_with_the_settings_range(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--mix-ratio", "1.0"])
    assert exit_info.value.code == 2
    assert "argument --mix-ratio: must be" in capsys.readouterr().err


def test_a_deprecated_spelling_still_works_with_a_warning(capsys):
    old = _config("--warm-start-steps", "300")
    assert capsys.readouterr().err.startswith("warning: --warm-start-steps is deprecated")
    assert old == _config("--critic-warmup-steps", "300")
    assert old["finetune"]["ppo"]["bc_rl"]["critic_warmup_steps"] == 300
    with pytest.raises(OptiqError, match="--warm-start-steps and --critic-warmup-steps are the same setting"):
        _config("--warm-start-steps", "300", "--critic-warmup-steps", "200")
    assert "--warm-start-steps" not in build_parser().format_help()  # hidden: --help shows one name


def test_the_old_method_name_bc_means_bc_only_with_a_warning(capsys):
    from optiq.compare.methods import parse_methods

    assert parse_methods("bc,bc_rl,scratch") == ("bc_only", "bc_rl", "scratch")
    assert "method 'bc' in --methods is deprecated, use 'bc_only'" in capsys.readouterr().err
    assert parse_methods("bc_only,bc,bc_rl") == ("bc_only", "bc_rl")  # one row, however spelled
    assert parse_methods("bc_only,bc_rl") == ("bc_only", "bc_rl")
    assert capsys.readouterr().err.count("deprecated") == 1  # only where the old name was given
