"""Load and validate ``hparams.yml``: per-environment settings with presets.

The file is keyed by Gymnasium env id (as in rl-baselines3-zoo's hyperparams files). Its schema
is typed in optiq/settings.py (a dataclass per section, a field per setting with its range, doc
and default); :data:`SCHEMA` (required keys) and :data:`SETTING_RULES` (every range) are derived
from it, plus :data:`SB3_RULES` for SB3's own arguments. A preset (``quick``/``full``) is a
mapping of dotted keys that override the env's base values. The optional ``obs`` section picks
state or pixel observations (defaults: :data:`OBS_DEFAULTS`); in pixel mode
:data:`PIXEL_DEFAULTS` and then the env's optional ``pixels`` mapping of dotted keys apply
after the preset, so state-mode settings stay untouched. After presets and ``--set`` overrides
are merged, every setting is checked against its type and range once, typed sections hold their
fields only, and the free-form ``hyperparams`` sections SB3's arguments only. Any problem is an
:class:`~optiq.errors.OptiqError` with a one-line message naming the key, the bad value, what it
must be, and where it came from (the file, a preset, or ``--set``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
from pathlib import Path
from typing import Any

import yaml

from optiq import rules, settings
from optiq.errors import OptiqError
from optiq.rules import MAX_SEED, Invalid, Rule, as_number  # noqa: F401 (MAX_SEED: re-exported for optiq.cli)
from optiq.settings import ALGOS, OBS_MODES  # noqa: F401 (OBS_MODES: re-exported for optiq.cli)

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# A source checkout (run from it, or installed editable) has pyproject.toml beside the package; an
# installed wheel has not, and reads the copies of hparams.yml and experts/ it carries in the package.
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
DATA_ROOT = REPO_ROOT if IN_CHECKOUT else PACKAGE_DIR
DEFAULT_HPARAMS = DATA_ROOT / "hparams.yml"
DEFAULT_ENV = "Hopper-v5"
PRESETS = ("quick", "full")

# What ``obs`` holds when an env's section leaves it (or some of its keys) out.
OBS_DEFAULTS: dict[str, Any] = {item.name: item.default for item in dataclasses.fields(settings.ObsSection)}
# Pixel-mode settings every env gets before its own ``pixels`` overrides: no VecNormalize
# (CnnPolicy scales images by 1/255), a replay buffer of images that fits in memory, and
# separate actor/critic CNNs for PPO, so HybridPPO's critic warm-up leaves the BC actor intact.
PIXEL_DEFAULTS: dict[str, Any] = {
    "finetune.ppo.normalize": False,
    "finetune.sac.normalize": False,
    "finetune.ppo.policy_kwargs.share_features_extractor": False,
    "finetune.sac.hyperparams.buffer_size": 50_000,
}
MIN_IMAGE_SIDE = 36  # the smallest frame SB3's NatureCNN (CnnPolicy) accepts

_KINDS = {"int": int, "float": float, "bool": bool, "str": str, "dict": dict, "list": list}
_KIND_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "a string",
    dict: "a mapping",
    list: "a list",
}


def _required_schema(cls: type) -> dict[str, Any]:
    """The required keys of a typed section (optiq/settings.py) and their types; a nested dict is a section."""
    schema: dict[str, Any] = {}
    for item in dataclasses.fields(cls):
        nested = settings.section_of(item)
        if not settings.is_required(item):
            continue
        schema[item.name] = _required_schema(nested) if nested is not None else _KINDS[str(item.type)]
    return schema


# Required keys and their types, from optiq.settings.EnvSettings (``obs`` is filled in before the check).
SCHEMA: dict[str, Any] = {
    **_required_schema(settings.EnvSettings),
    "obs": {item.name: _KINDS[str(item.type)] for item in dataclasses.fields(settings.ObsSection)},
}
# Sections an env may leave out; when present they are validated like SCHEMA.
OPTIONAL_SCHEMA: dict[str, Any] = {"scripted": _required_schema(settings.ScriptedSection)}

# SB3's constructor arguments under finetune.<algo>.hyperparams (``*``: either algorithm): SB3's
# schema, not optiq's, so their ranges are listed here rather than in optiq/settings.py.
SB3_RULES: dict[str, Rule] = {
    "finetune.*.hyperparams.learning_rate": rules.POSITIVE,
    "finetune.*.hyperparams.gamma": rules.DISCOUNT,
    "finetune.*.hyperparams.use_sde": rules.boolean(),
    "finetune.*.hyperparams.sde_sample_freq": rules.number(-1, integer=True),
    "finetune.*.hyperparams.stats_window_size": rules.COUNT,
    # PPO
    "finetune.ppo.hyperparams.n_steps": rules.COUNT,
    "finetune.ppo.hyperparams.batch_size": rules.number(2, integer=True),  # SB3 asserts > 1 (advantage normalisation)
    "finetune.ppo.hyperparams.n_epochs": rules.COUNT,
    "finetune.ppo.hyperparams.gae_lambda": rules.FRACTION,
    "finetune.ppo.hyperparams.clip_range": rules.POSITIVE,
    "finetune.ppo.hyperparams.clip_range_vf": rules.number(0, low_open=True, null=True),
    "finetune.ppo.hyperparams.normalize_advantage": rules.boolean(),
    "finetune.ppo.hyperparams.ent_coef": rules.NON_NEGATIVE,
    "finetune.ppo.hyperparams.vf_coef": rules.NON_NEGATIVE,
    "finetune.ppo.hyperparams.max_grad_norm": rules.POSITIVE,
    "finetune.ppo.hyperparams.target_kl": rules.number(0, low_open=True, null=True),
    # SAC
    "finetune.sac.hyperparams.buffer_size": rules.COUNT,
    "finetune.sac.hyperparams.learning_starts": rules.STEPS,
    "finetune.sac.hyperparams.batch_size": rules.COUNT,
    "finetune.sac.hyperparams.tau": rules.DISCOUNT,
    "finetune.sac.hyperparams.train_freq": rules.train_freq(),
    "finetune.sac.hyperparams.gradient_steps": rules.number(1, integer=True, also=(-1,)),  # -1: one per env step
    "finetune.sac.hyperparams.optimize_memory_usage": rules.boolean(),
    "finetune.sac.hyperparams.n_steps": rules.COUNT,
    "finetune.sac.hyperparams.ent_coef": rules.ent_coef(),
    "finetune.sac.hyperparams.target_update_interval": rules.COUNT,
    "finetune.sac.hyperparams.target_entropy": rules.target_entropy(),
    "finetune.sac.hyperparams.use_sde_at_warmup": rules.boolean(),
}

# The type and range of every setting by dotted key: optiq's own from the typed sections
# (optiq/settings.py), SB3's hyperparameters from SB3_RULES.
SETTING_RULES: dict[str, Rule] = {
    **{key: rule for key, item in settings.FIELDS.items() if (rule := settings.rule_of(item)) is not None},
    **SB3_RULES,
}

# SB3 constructor arguments that optiq passes itself (optiq/algos.py:build_model), never from hyperparams.
_RESERVED_SB3_ARGS = {"self", "policy", "env", "seed", "verbose", "device", "tensorboard_log", "policy_kwargs"}


def setting_rule(dotted: str) -> Rule | None:
    """The :data:`SETTING_RULES` entry of ``dotted`` (exact, else with ``*`` for the algorithm)."""
    if dotted in SETTING_RULES:
        return SETTING_RULES[dotted]
    parts = dotted.split(".")
    if len(parts) > 2 and parts[0] == "finetune":
        return SETTING_RULES.get(".".join(["finetune", "*", *parts[2:]]))
    return None


@functools.cache
def sb3_hyperparams(algo: str) -> list[str]:
    """The keys ``finetune.<algo>.hyperparams`` may hold: SB3's constructor arguments."""
    import inspect

    from stable_baselines3 import PPO, SAC

    cls = {"ppo": PPO, "sac": SAC}[algo]
    return sorted(
        name
        for name, param in inspect.signature(cls.__init__).parameters.items()
        if name not in _RESERVED_SB3_ARGS and not name.startswith("_") and param.kind is param.POSITIONAL_OR_KEYWORD
    )


def _show(value: Any) -> str:
    """A value as the user would write it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


class _Sources:
    """Where each setting's value came from (the file, a preset, --set), so errors name what to fix."""

    def __init__(self, path: Path, env_id: str):
        self.path = path
        self.env_id = env_id
        self.applied: list[tuple[str, str]] = []  # (dotted key, origin) in the order applied

    def record(self, dotted: str, origin: str) -> None:
        self.applied.append((dotted, origin))

    def origin(self, dotted: str) -> str | None:
        """The last override of ``dotted`` (or of a section holding it); None: the env's own section."""
        for key, origin in reversed(self.applied):
            if dotted == key or dotted.startswith(key + "."):
                return origin
        return None

    def error(self, dotted: str, problem: str) -> OptiqError:
        """``'key' <problem>`` as a one-line error naming where the value came from and how to fix it."""
        origin = self.origin(dotted)
        if origin == "--set":
            return OptiqError(f"'{dotted}' {problem} (fix the --set value)")
        where = f"set in {origin}; fix it there" if origin else f"fix it in {self.path.name}"
        return OptiqError(
            f"{self.path}: '{self.env_id}.{dotted}' {problem} ({where} or override it with --set {dotted}=VALUE)"
        )

    def bad_value(self, dotted: str, value: Any, expect: str) -> OptiqError:
        return self.error(dotted, f"must be {expect}, got {_show(value)}")

    def unknown_key(self, dotted: str, origin: str | None, known: list[str], section: str | None = None) -> OptiqError:
        """``dotted`` is not a setting: name it, the closest known ones, and where it was written."""
        close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.6)
        if close:
            hint = f"; did you mean '{close[0]}'?"
        else:
            inside = section + "." if section else ""
            names = [key[len(inside) :] for key in known if key.startswith(inside) and "." not in key[len(inside) :]]
            hint = f"; {section or 'the sections'} {'has' if section else 'are'}: {', '.join(names)}" if names else ""
        if origin == "--set":
            return OptiqError(f"unknown key '{dotted}' in --set{hint} (check the spelling)")
        where = f"{origin} sets" if origin else f"'{self.env_id}' has"
        return OptiqError(f"{self.path}: {where} unknown key '{dotted}'{hint} (check the spelling)")


def _dotted_keys(node: dict[str, Any], prefix: str = "") -> list[str]:
    """Every section and setting of ``node`` as a dotted key."""
    keys = []
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


def load_hparams_file(path: str | Path = DEFAULT_HPARAMS) -> dict[str, Any]:
    """Read the YAML file; a missing or malformed file is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise OptiqError(f"hparams file not found: {path} (pass --hparams PATH or restore hparams.yml)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise OptiqError(f"{path}: malformed YAML{where}: {getattr(exc, 'problem', exc)} (fix the syntax)") from None
    if not isinstance(data, dict) or not data:
        raise OptiqError(f"{path}: expected a mapping of env ids to settings (e.g. 'Hopper-v5:')")
    return data


def available_envs(path: str | Path = DEFAULT_HPARAMS) -> list[str]:
    return sorted(load_hparams_file(path))


def load_env_config(
    env_id: str,
    preset: str = "quick",
    path: str | Path = DEFAULT_HPARAMS,
    overrides: dict[str, Any] | None = None,
    obs_mode: str | None = None,
) -> dict[str, Any]:
    """Return the validated settings of ``env_id`` with ``preset`` and ``overrides`` applied.

    ``overrides`` uses dotted keys (``{"finetune.total_timesteps": 5000}``), like presets.
    ``obs_mode`` (``--obs``) overrides ``obs.mode``. A pixel-mode config keeps its state-mode
    twin under ``"state_config"`` (see :func:`state_config`): experts act on the true state.
    """
    overrides = dict(overrides or {})
    set_mode = overrides.pop("obs.mode", None)  # --set obs.mode=... wins over --obs
    mode = set_mode or obs_mode
    config = _load(env_id, preset, Path(path), overrides, mode, "--set" if set_mode else None)
    if config["obs"]["mode"] != "state":
        config["state_config"] = _load(env_id, preset, Path(path), overrides, "state")
    return config


def state_config(config: dict[str, Any]) -> dict[str, Any]:
    """The state-observation settings of ``config`` (itself in state mode): what experts train and act with."""
    return config.get("state_config", config)


def _load(
    env_id: str, preset: str, path: Path, overrides: dict[str, Any], mode: str | None, mode_origin: str | None = None
) -> dict[str, Any]:
    """One env's settings in observation ``mode`` (None: as the file says)."""
    data = load_hparams_file(path)
    if env_id not in data:
        raise OptiqError(
            f"{path}: unknown env '{env_id}'; envs with settings: {', '.join(sorted(data))} "
            "(add a section for it, see README 'Adding an environment')"
        )
    if preset not in PRESETS:
        raise OptiqError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
    base = data[env_id]
    if not isinstance(base, dict):
        raise OptiqError(f"{path}: '{env_id}' must be a mapping of sections, got {type(base).__name__}")
    sources = _Sources(path, env_id)
    config = copy.deepcopy(base)
    obs = config.get("obs") or {}
    if not isinstance(obs, dict):
        raise OptiqError(f"{path}: '{env_id}.obs' must be a mapping, got {type(obs).__name__}")
    config["obs"] = {**OBS_DEFAULTS, **obs}
    pixels = config.pop("pixels", None) or {}
    if not isinstance(pixels, dict):
        raise OptiqError(f"{path}: '{env_id}.pixels' must be a mapping of dotted keys, got {type(pixels).__name__}")
    config["imitation"] = _imitation_section(config.get("imitation"), path, env_id)
    _validate(config, SCHEMA, sources)
    preset_overrides = config.pop("presets")[preset] or {}
    for key, value in preset_overrides.items():
        _set_dotted(config, key, value, sources, f"{env_id}.presets.{preset}")
    if mode is not None and mode_origin is not None:
        sources.record("obs.mode", mode_origin)
    config["obs"]["mode"] = mode = mode or config["obs"]["mode"]
    if mode == "pixels":
        for key, value in PIXEL_DEFAULTS.items():
            _set_dotted(config, key, value, sources, "optiq's pixel defaults")
        for key, value in pixels.items():
            _set_dotted(config, key, value, sources, f"{env_id}.pixels")
    for key, value in overrides.items():
        _set_dotted(config, key, value, sources, "--set")
    _validate(config, {k: v for k, v in SCHEMA.items() if k != "presets"}, sources)
    _validate(config, {k: v for k, v in OPTIONAL_SCHEMA.items() if k in config}, sources)
    _check_settings(config, sources)
    _check_obs(config, sources)
    config["env_id"] = env_id
    config["preset"] = preset
    return config


def _imitation_section(section: Any, path: Path, env_id: str) -> dict[str, Any]:
    """The optional ``imitation`` section (AIRL/GAIL/DAgger/IPMD settings), with ``adversarial`` and ``dagger``
    present so ``--set imitation.dagger.rounds=5`` works for every env (``ipmd`` is made by its first key);
    :func:`_check_settings` checks the keys against optiq/settings.py."""
    section = section or {}
    if not isinstance(section, dict):
        raise OptiqError(f"{path}: '{env_id}.imitation' must be a mapping, got {type(section).__name__}")
    return {**section, "adversarial": section.get("adversarial") or {}, "dagger": section.get("dagger") or {}}


def _check_obs(config: dict[str, Any], sources: _Sources) -> None:
    """Pixel settings that the env wrappers and CnnPolicy can actually use."""
    obs = config["obs"]
    if obs["mode"] != "pixels":
        return
    for key in ("width", "height"):
        if obs[key] < MIN_IMAGE_SIDE:
            raise sources.error(f"obs.{key}", f"is {obs[key]}; CnnPolicy needs at least {MIN_IMAGE_SIDE} pixels")
    for algo in ALGOS:
        if config["finetune"][algo]["normalize"]:
            raise OptiqError(
                f"{sources.path}: 'finetune.{algo}.normalize' must be false with obs.mode pixels "
                "(CnnPolicy scales images by 1/255 itself)"
            )


def _check_settings(config: dict[str, Any], sources: _Sources) -> None:
    """Every setting with a :data:`SETTING_RULES` entry is in range; free-form sections hold known keys only."""
    known = _dotted_keys(config)
    for dotted in known:
        rule = setting_rule(dotted)
        if rule is not None:
            _apply_rule(config, dotted, rule, sources)
    _check_known_keys(config, settings.EnvSettings, sources)
    expert = config["expert"]
    sections = [(f"finetune.{algo}.hyperparams", algo) for algo in ALGOS]
    if expert.get("hyperparams"):
        sections.append(("expert.hyperparams", expert["algo"]))
    for section, algo in sections:
        _check_free_form(config, section, sb3_hyperparams(algo), f"finetune.{algo}.hyperparams", sources)
    for partial, cls in settings.PARTIAL_SECTIONS.items():
        parent, _, name = partial.rpartition(".")
        node = _get_dotted(config, parent)
        if name in node:  # imitation.ipmd may be absent
            if node[name] is None:  # --set imitation.dagger=null: no settings, the typed defaults
                node[name] = {}
            if not isinstance(node[name], dict):
                raise sources.bad_value(partial, node[name], "a mapping of settings")
            keys = [item.name for item in dataclasses.fields(cls)]
            _check_free_form(config, partial, keys, partial, sources)
    ppo = config["finetune"]["ppo"]
    n_steps = ppo["hyperparams"].get("n_steps", 2048)
    if ppo["hyperparams"].get("normalize_advantage", True) and n_steps * ppo["n_envs"] < 2:
        raise sources.error(
            "finetune.ppo.hyperparams.n_steps",
            f"is {n_steps} with finetune.ppo.n_envs {ppo['n_envs']}; PPO needs n_steps * n_envs >= 2",
        )


def _check_known_keys(node: dict[str, Any], cls: type, sources: _Sources, prefix: str = "") -> None:
    """A typed section (optiq/settings.py) holds only its fields: a misspelt key is an error, not ignored."""
    fields = {item.name: item for item in dataclasses.fields(cls)}
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            known = [f"{prefix}{name}" for name in fields]
            raise sources.unknown_key(dotted, sources.origin(dotted), known, prefix.rstrip(".") or None)
        nested = settings.section_of(fields[key])
        if nested is not None and isinstance(value, dict) and dotted not in settings.PARTIAL_SECTIONS:
            _check_known_keys(value, nested, sources, dotted + ".")


def _check_free_form(config: dict[str, Any], section: str, keys: list[str], rules: str, sources: _Sources) -> None:
    """``section`` (hyperparams, bc_rl) holds only ``keys``, each within the rule of ``<rules>.<key>``."""
    node = _get_dotted(config, section)
    for key in list(node):
        dotted = f"{section}.{key}"
        if key not in keys:
            raise sources.unknown_key(dotted, sources.origin(dotted), [f"{section}.{k}" for k in keys], section)
        rule = setting_rule(f"{rules}.{key}")
        if rule is not None:
            _apply_rule(config, dotted, rule, sources)


def _get_dotted(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node[part]
    return node


def _apply_rule(config: dict[str, Any], dotted: str, rule: Rule, sources: _Sources) -> None:
    """Replace the value at ``dotted`` by its checked form (numbers parsed), or raise a one-line error."""
    *parents, leaf = dotted.split(".")
    node = _get_dotted(config, ".".join(parents)) if parents else config
    try:
        node[leaf] = rule.apply(node[leaf])
    except Invalid:
        raise sources.bad_value(dotted, node[leaf], rule.expect) from None


def _validate(section: dict[str, Any], schema: dict[str, Any], sources: _Sources, prefix: str = "") -> None:
    for key, expected in schema.items():
        dotted = f"{prefix}{key}"
        if key not in section:
            raise OptiqError(
                f"{sources.path}: missing key '{sources.env_id}.{dotted}' "
                "(add it; see the Hopper-v5 section for an example)"
            )
        value = section[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise sources.bad_value(dotted, value, "a mapping")
            _validate(value, expected, sources, dotted + ".")
            continue
        section[key] = _coerce(value, expected, sources, dotted)
        rule = setting_rule(dotted)
        choices = rule.choices if rule is not None else ()
        if choices and section[key] not in choices:
            raise sources.error(dotted, f"is '{section[key]}'; choose one of: {', '.join(choices)}")


def _coerce(value: Any, expected: type, sources: _Sources, dotted: str) -> Any:
    if expected is bool:
        if isinstance(value, bool):
            return value
    elif expected is int:
        number = as_number(value, integer=True)
        if number is not None:
            return number
    elif expected is float:
        number = as_number(value, integer=False)
        if number is not None and abs(number) < 1e300:
            return float(number)
    elif expected is dict:
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
    elif isinstance(value, expected):
        return value
    rule = setting_rule(dotted)
    raise sources.bad_value(dotted, value, rule.expect if rule is not None else _KIND_WORDS[expected])


def _set_dotted(config: dict[str, Any], dotted: str, value: Any, sources: _Sources, origin: str) -> None:
    parts = dotted.split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        if part not in node and ".".join(parts[: depth + 1]) in settings.PARTIAL_SECTIONS:
            node[part] = {}  # an optional section the yml leaves out (imitation.ipmd), created by its first key
        if not isinstance(node.get(part), dict):
            section = ".".join(parts[:depth]) or None
            raise sources.unknown_key(dotted, origin, _dotted_keys(config), section)
        node = node[part]
    leaf = parts[-1]
    # Free-form sections (SB3's hyperparams and policy_kwargs, a controller's params) may gain new keys,
    # typed ones only their fields (the optional ones too: eval.paired_episodes, bc_rl's, imitation's);
    # _check_settings then checks the values.
    free_form = (["hyperparams"], ["policy_kwargs"], ["params"])
    parent = ".".join(parts[:-1])
    if parent in settings.PARTIAL_SECTIONS and dotted not in settings.FIELDS:
        known = [f"{parent}.{item.name}" for item in dataclasses.fields(settings.PARTIAL_SECTIONS[parent])]
        raise sources.unknown_key(dotted, origin, known, parent)
    if leaf not in node and parts[-2:-1] not in free_form and dotted not in settings.FIELDS:
        raise sources.unknown_key(dotted, origin, _dotted_keys(config), parent or None)
    node[leaf] = value
    sources.record(dotted, origin)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``key=value`` from the command line; the value is read as YAML."""
    if "=" not in text:
        raise OptiqError(f"bad --set '{text}': expected KEY=VALUE, e.g. finetune.total_timesteps=20000")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise OptiqError(f"bad --set '{text}': expected KEY=VALUE, e.g. finetune.total_timesteps=20000")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        return key.strip(), raw
