"""The typed schema (optiq/settings.py): one home per setting, defaults that cannot disagree."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import yaml

from optiq import settings
from optiq.commands.finetune import SETTING_FLAGS
from optiq.commands.settings import setting_rows
from optiq.config import DEFAULT_HPARAMS, SETTING_RULES, available_envs, load_env_config
from optiq.errors import OptiqError
from optiq.rl.demo_sac import DemoSAC
from optiq.rl.finetune import extension_kwargs
from optiq.rl.hybrid_ppo import HybridPPO
from optiq.rl.imitation_methods import adversarial_settings, dagger_settings


def test_every_setting_has_a_rule_and_a_doc():
    for dotted, item in settings.FIELDS.items():
        assert settings.rule_of(item) is not None, dotted
        assert settings.doc_of(item).strip(), dotted
        assert SETTING_RULES[dotted] is settings.rule_of(item)


def test_the_classes_that_consume_a_section_have_its_defaults():
    """What the yml leaves out gets the typed default, whichever way the consumer is reached."""
    sac_defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(DemoSAC.__init__).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }
    for item in dataclasses.fields(settings.DemoSACSettings):
        if item.name in settings.DemoSACSettings.APART:
            assert item.name not in sac_defaults  # SAC's own argument, shared with finetune.sac.hyperparams
            continue
        assert sac_defaults[item.name] == settings.default_of(item), item.name
    assert set(sac_defaults) == {item.name for item in dataclasses.fields(settings.DemoSACSettings)} - set(
        settings.DemoSACSettings.APART
    )
    hybrid = inspect.signature(HybridPPO.__init__).parameters["hybrid"]
    assert hybrid.default is None  # None: HybridSettings(), the typed defaults (stock PPO)
    ppo_fields = [item.name for item in dataclasses.fields(settings.PPOFromBC)]
    assert ppo_fields == [item.name for item in dataclasses.fields(settings.HybridSettings)] + list(
        settings.PPOFromBC.APART
    )


@pytest.mark.parametrize("env_id", available_envs())
def test_yml_values_and_typed_defaults_are_what_stage_04_builds(env_id):
    """Each key the yml gives reaches the method as written; each key it leaves out, as typed."""
    config = load_env_config(env_id)
    raw = yaml.safe_load(DEFAULT_HPARAMS.read_text())[env_id]
    for algo, cls in settings.BC_RL_SECTIONS.items():
        given = raw["finetune"][algo].get("bc_rl") or {}
        kwargs = extension_kwargs(config, algo, "bc")
        built = {**dataclasses.asdict(kwargs.pop("hybrid")), **kwargs} if algo == "ppo" else kwargs
        for item in dataclasses.fields(cls):
            if item.name in cls.APART:
                assert (item.name in built) == (item.name in given)
                if item.name not in given:
                    continue
            expected = given[item.name] if item.name in given else settings.default_of(item)
            assert built[item.name] == expected, (algo, item.name)
    for name, read, cls in (
        ("adversarial", adversarial_settings, settings.AdversarialSettings),
        ("dagger", dagger_settings, settings.DaggerSettings),
    ):
        given = (raw.get("imitation") or {}).get(name) or {}
        typed = read(config)
        for item in dataclasses.fields(cls):
            expected = given.get(item.name, settings.default_of(item))
            assert getattr(typed, item.name) == (tuple(expected) if isinstance(expected, list) else expected)


def test_a_misspelt_key_in_a_typed_section_of_the_file_is_an_error(tmp_path):
    data = yaml.safe_load(DEFAULT_HPARAMS.read_text())
    data["Hopper-v5"]["bc"]["n_epoch"] = 5  # silently ignored before the schema was typed
    path = tmp_path / "hparams.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(OptiqError, match=r"'Hopper-v5' has unknown key 'bc.n_epoch'; did you mean 'bc.n_epochs'\?"):
        load_env_config("Hopper-v5", path=path)
    data["Hopper-v5"]["bc"].pop("n_epoch")
    data["Hopper-v5"]["evaluation"] = {}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(OptiqError, match="unknown key 'evaluation'"):
        load_env_config("Hopper-v5", path=path)


def test_a_cross_field_rule_of_a_partial_section_is_one_line():
    config = load_env_config("Hopper-v5", overrides={"finetune.ppo.bc_rl.critic_warmup_steps": 0})
    with pytest.raises(OptiqError, match="^finetune.ppo.bc_rl: bc_reference_episodes needs critic_warmup_steps > 0"):
        extension_kwargs(config, "ppo", "bc")
    assert extension_kwargs(config, "ppo", "scratch") == {}


def test_sac_probes_need_a_reference():
    overrides = {"finetune.sac.bc_rl.bc_probe_every": 3, "finetune.sac.bc_rl.bc_reference_episodes": 0}
    config = load_env_config("Hopper-v5", overrides=overrides)
    with pytest.raises(OptiqError, match="^finetune.sac.bc_rl: bc_probe_every needs bc_reference_episodes > 0"):
        extension_kwargs(config, "sac", "bc")


def test_dedicated_flags_take_their_help_from_the_setting():
    for flag in SETTING_FLAGS:
        text = flag.description()
        for algo in flag.algos:
            assert settings.setting_doc(flag.key.format(algo=algo)) in text, flag.flag


def test_settings_command_lists_every_typed_setting_with_its_value():
    config = load_env_config("Hopper-v5", overrides={"finetune.ppo.bc_rl.release_check_steps": 10000})
    rows = {row[0]: row for row in setting_rows(config)}
    key, value, default, expect, doc = rows["finetune.ppo.bc_rl.release_check_steps"]
    assert (value, default, expect) == ("10000", "0", "an integer >= 0") and "guarded-release" in doc
    assert rows["bc.n_epochs"][1:3] == ("100", "required")  # the quick preset's value
    assert rows["finetune.sac.bc_rl.bc_proposals"][1:3] == ("false", "false")  # left out of the yml: the default
    assert rows["finetune.ppo.hyperparams.gamma"][1] == "0.999"
    assert {key for key in settings.FIELDS if not key.startswith(("presets.", "scripted."))} <= set(rows)
