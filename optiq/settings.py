"""The typed schema of hparams.yml: one dataclass per section, one field per setting.

Each field says what the setting holds (its :class:`~optiq.rules.Rule`: type and range), what it
does (its ``doc``) and, where the yml may leave it out, its default. This module *is* the schema:
optiq.config derives the required keys and every range from it and validates a config once, on
load; HybridPPO, DemoSAC and the imitation methods take their settings from the same classes, so
what the yml leaves out gets exactly the defaults written here (tests/test_settings.py checks the
classes that consume them agree). ``optiq settings`` prints the table.

A section with required fields (``bc``, ``eval``, ...) must be written out for every env; the
``bc_rl`` and ``imitation`` sections are partial: every key is optional and a key outside the
class is an error. ``finetune.<algo>.hyperparams`` is SB3's constructor (ranges in
optiq.config.SB3_RULES), not a class here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar

from optiq import rules
from optiq.errors import OptiqError
from optiq.rules import COUNT, DISCOUNT, FRACTION, NON_NEGATIVE, POSITIVE, STEPS, Rule

ALGOS = ("ppo", "sac")
OBS_MODES = ("state", "pixels")
BC_LOSSES = ("nll", "mse", "kl")
REWARD_NETS = ("auto", "basic", "shaped")


def setting(rule: Rule, doc: str, default: Any = MISSING) -> Any:
    """A field of a typed section: its rule, its one-line doc and its default (none: required)."""
    metadata = {"rule": rule, "doc": doc}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def section(cls: type, doc: str, optional: bool = False) -> Any:
    """A nested section; ``optional``: the yml may leave it out (it then holds the class's defaults)."""
    metadata = {"section": cls, "doc": doc}
    return field(default_factory=cls, metadata=metadata) if optional else field(metadata=metadata)


def rule_of(item: dataclasses.Field) -> Rule | None:
    return item.metadata.get("rule")


def section_of(item: dataclasses.Field) -> type | None:
    return item.metadata.get("section")


def doc_of(item: dataclasses.Field) -> str:
    return item.metadata.get("doc", "")


def is_required(item: dataclasses.Field) -> bool:
    return item.default is MISSING and item.default_factory is MISSING


# --- the sections every env writes out -------------------------------------------------------


@dataclass
class ExpertSection:
    """``expert``: how ``01_collect_demos --train-expert`` trains the demonstrator."""

    algo: str = setting(rules.choice(*ALGOS), "the expert's algorithm")
    n_timesteps: int = setting(COUNT, "env steps of expert training")
    hyperparams: dict | None = setting(
        rules.mapping(keep_null=True), "SB3 arguments of the expert's own (null: finetune.<algo>.hyperparams)", None
    )
    policy_kwargs: dict | None = setting(
        rules.mapping(keep_null=True), "the expert's policy_kwargs (null: finetune.<algo>.policy_kwargs)", None
    )


@dataclass
class DemosSection:
    """``demos``: what stage 01 records."""

    n_episodes: int = setting(COUNT, "expert episodes to record")


@dataclass
class BCSection:
    """``bc``: behavioural cloning (imitation's bc.BC) on a train/validation split of the demos."""

    n_epochs: int = setting(COUNT, "epochs over the training split")
    batch_size: int = setting(COUNT, "demo samples per BC step")
    learning_rate: float = setting(POSITIVE, "Adam's learning rate")
    ent_weight: float = setting(NON_NEGATIVE, "weight of the policy-entropy bonus in BC's loss")
    l2_weight: float = setting(NON_NEGATIVE, "weight of the L2 penalty on the weights")
    val_fraction: float = setting(rules.number(0, 1, high_open=True), "share of demo episodes held out for validation")
    checkpoint_every: int = setting(COUNT, "epochs between BC checkpoints (stage 03 picks one)")
    select_by: str = setting(rules.choice("val_loss", "eval_return"), "how stage 03 picks the best BC checkpoint")
    select_episodes: int = setting(COUNT, "episodes per checkpoint when select_by is eval_return")


@dataclass
class AlgoSection:
    """``finetune.<algo>``: the RL algorithm's settings (BC policies are built with the same ones)."""

    n_envs: int = setting(COUNT, "parallel training envs")
    normalize: bool = setting(rules.boolean(), "VecNormalize observations and rewards")
    hyperparams: dict = setting(rules.mapping(), "SB3 constructor arguments (zoo-tuned values where they exist)")
    policy_kwargs: dict = setting(rules.mapping(), "SB3 policy_kwargs (activation_fn is a name: relu, tanh, ...)")
    bc_rl: dict = setting(rules.mapping(), "how --init bc fine-tunes this algorithm (PPOFromBC / DemoSACSettings)")


@dataclass
class FinetuneSection:
    """``finetune``: the RL budget and per-algorithm settings."""

    total_timesteps: int = setting(COUNT, "env steps per fine-tuning run")
    checkpoint_freq: int = setting(STEPS, "env steps between resumable checkpoints (0: only at the end)")
    ppo: AlgoSection = section(AlgoSection, "PPO")
    sac: AlgoSection = section(AlgoSection, "SAC")


@dataclass
class EvalSection:
    """``eval``: periodic evaluation during RL, the final evaluation and the video."""

    eval_freq: int = setting(STEPS, "env steps between evaluations (0: only at the start and the end)")
    n_eval_episodes: int = setting(COUNT, "noise-free episodes per periodic evaluation")
    final_episodes: int = setting(COUNT, "noise-free episodes of the final evaluation (stage 05)")
    video_length: int = setting(COUNT, "video frames (raised to 10 s of real time, or the whole episode when shorter)")
    paired_episodes: bool = setting(
        rules.boolean(),
        "every periodic evaluation starts from the same start states (its env re-seeded each time), so a "
        "curve compares policies, not draws of start states; false: each evaluation draws new ones",
        False,
    )


@dataclass
class RunSection:
    """``run``: what run_all.py runs when no flag says otherwise."""

    algo: str = setting(rules.choice(*ALGOS), "the RL algorithm")
    seeds: list = setting(rules.seed_list(), "seeds; each trains its own BC and fine-tunes from it")


@dataclass
class ObsSection:
    """``obs`` (optional): state or pixel observations and the camera."""

    mode: str = setting(rules.choice(*OBS_MODES), "state or pixels (--obs)", "state")
    width: int = setting(COUNT, "frame width in pixels", 64)
    height: int = setting(COUNT, "frame height in pixels", 64)
    frame_stack: int = setting(COUNT, "frames stacked per observation", 4)
    grayscale: bool = setting(rules.boolean(), "one channel instead of RGB", True)


@dataclass
class ScriptedSection:
    """``scripted`` (optional): ``01_collect_demos --source scripted``."""

    controller: str = setting(rules.text(), "the controller factory, module:function")
    params: dict = setting(rules.mapping(), "its keyword arguments")


@dataclass
class PresetsSection:
    """``presets``: dotted-key overrides of the env's values."""

    quick: dict = setting(rules.mapping(), "minutes on 2 CPU cores (make quick)")
    full: dict = setting(rules.mapping(), "the full budget")


# --- finetune.<algo>.bc_rl: every key optional -------------------------------------------------

# What both --init bc methods share (optiq/rl/anchor.py, averaging.py, release.py).
_REFERENCE_EPISODES = (
    "> 0: episodes of the BC policy at the start of the critic warm-up (its own small action noise; "
    "noise-free with bc_probe_every) whose mean return drives the BC anchor's weight (optiq/rl/anchor.py), "
    "at most those that end within the warm-up (with bc_probe_steps: noise-free episodes on a probe env, "
    "all of them, counted in the budget); 0: clock decay only"
)
_ADAPT_RATE = "log-scale step of the anchor's weight per training (or probe) episode at a full shortfall"
_REFERENCE_FRACTION = (
    "in (0, 1]: the return the anchor holds is BC's reference lowered by (1 - this) x |reference| (a share "
    "of it when positive): episodes below it tighten the anchor, above it loosen it (1.0: BC's return; "
    "below 1, episodes at BC's level loosen it, so it lets go sooner)"
)
_AVERAGE = "> 0: the evaluated and saved policy is the weights' average over this many env steps; 0: off"
_CHECK_STEPS = "> 0: env steps between guarded-release checks (optiq/rl/release.py); 0: off"
_CHECK_EPISODES = "noise-free probe episodes per release check"
_RELEASE_REFERENCE = "noise-free BC episodes that set the release threshold"
_MIN_FRACTION = "a candidate is released when it scores at least this x BC's probe return"


def check_reference_fraction(fraction: float) -> float:
    """``bc_reference_fraction`` in (0, 1]: the rule checks hparams, this checks direct construction
    (HybridSettings, DemoSAC) with the same bound."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"bc_reference_fraction must be in (0, 1], got {fraction}")
    return float(fraction)


@dataclass
class HybridSettings:
    """HybridPPO's knobs (``finetune.ppo.bc_rl`` without ``target_kl``); with the defaults, stock PPO."""

    critic_warmup_steps: int = setting(STEPS, "env steps at the start in which only the critic learns", 0)
    actor_lr_warmup_steps: int = setting(STEPS, "env steps after the warm-up over which the actor's LR rises from 0", 0)
    actor_lr_scale: float = setting(NON_NEGATIVE, "the actor's learning rate relative to PPO's, after the warm-up", 1.0)
    bc_coeff: float = setting(NON_NEGATIVE, "weight of the BC loss on demo batches (0: no BC term)", 0.0)
    bc_decay: float = setting(DISCOUNT, "factor on the BC weight per actor iteration (1.0: no clock decay)", 1.0)
    bc_batch_size: int = setting(COUNT, "demo samples per BC loss", 256)
    bc_loss: str = setting(
        rules.choice(*BC_LOSSES),
        "nll of the demo actions; mse of the mean action (leaves log_std to RL); or kl: KL(BC || policy) "
        "on demo states, which pulls toward the BC policy the run started from (its fixed point), not the demos",
        "nll",
    )
    bc_filter: bool = setting(rules.boolean(), "BC loss only on demo samples whose return beats V(s)", False)
    mix_ratio: float = setting(
        rules.number(0, 1, high_open=True), "share of the loss from demo samples with V-trace targets", 0.0
    )
    rho_bar: float = setting(POSITIVE, "V-trace cap on the importance ratio of TD errors", 1.0)
    c_bar: float = setting(POSITIVE, "V-trace cap on the importance ratio of the trace", 1.0)
    log_std_subtract: float = setting(rules.number(), "subtracted from BC's log std before fine-tuning", 0.0)
    log_std_floor: float | None = setting(rules.number(null=True), "lower bound on BC's log std (null: none)", None)
    log_std_floor_tolerance: float | None = setting(
        rules.number(0, null=True),
        "keep log_std_floor only if BC's sampled return at the floor is at least this x its return at its own "
        "std, measured before the first rollout on an env of its own (optiq/rl/exploration.py; the episodes "
        "count in the budget, the critic warm-up starts after them); null: the floor always applies",
        None,
    )
    log_std_floor_check_episodes: int = setting(
        COUNT, "sampled episodes at each std for log_std_floor_tolerance (so twice this many in all)", 5
    )
    bc_reference_episodes: int = setting(STEPS, _REFERENCE_EPISODES, 0)
    bc_adapt_rate: float = setting(NON_NEGATIVE, _ADAPT_RATE, 1.0)
    bc_reference_fraction: float = setting(rules.number(0, 1, low_open=True), _REFERENCE_FRACTION, 1.0)
    bc_probe_steps: int = setting(
        STEPS,
        "> 0: the anchor follows noise-free probe episodes on an env of their own (optiq/rl/anchor.py, "
        "AnchorProbes), not the sampled training episodes: bc_reference_episodes noise-free BC episodes "
        "set the reference, then at the first rollout end this many env steps after the last probe (once the "
        "warm-up is over) bc_probe_episodes of the evaluated policy move the weight; their env steps count in "
        "the budget and in the warm-up. 0: training episodes",
        0,
    )
    bc_probe_episodes: int = setting(COUNT, "noise-free episodes per anchor probe (bc_probe_steps)", 1)
    policy_average_steps: int = setting(STEPS, _AVERAGE, 0)
    release_check_steps: int = setting(STEPS, _CHECK_STEPS, 0)
    release_check_episodes: int = setting(COUNT, _CHECK_EPISODES, 2)
    release_reference_episodes: int = setting(COUNT, _RELEASE_REFERENCE, 5)
    release_min_fraction: float = setting(NON_NEGATIVE, _MIN_FRACTION, 1.0)

    def __post_init__(self) -> None:
        if self.bc_probe_steps > 0 and self.bc_reference_episodes <= 0:
            raise ValueError(
                "bc_probe_steps needs bc_reference_episodes > 0 (the probes are compared with BC's reference): "
                "pass --set finetune.ppo.bc_rl.bc_reference_episodes=5 or bc_probe_steps=0"
            )
        if self.bc_probe_steps > 0 and self.bc_coeff <= 0:
            raise ValueError(
                "bc_probe_steps needs bc_coeff > 0 (the probes only scale the BC anchor; without it they spend "
                "env steps for nothing): pass --bc-coeff 1.0 or --set finetune.ppo.bc_rl.bc_probe_steps=0"
            )
        if self.log_std_floor_tolerance is not None and self.log_std_floor is None:
            raise ValueError(
                "log_std_floor_tolerance needs a log_std_floor to test: pass "
                "--set finetune.ppo.bc_rl.log_std_floor=-2.5 or log_std_floor_tolerance=null"
            )
        check_reference_fraction(self.bc_reference_fraction)
        if self.bc_loss not in BC_LOSSES:
            raise ValueError(f"bc_loss must be one of {', '.join(BC_LOSSES)}, got '{self.bc_loss}'")
        if not 0.0 <= self.mix_ratio < 1.0:
            raise ValueError(f"mix_ratio must be in [0, 1), got {self.mix_ratio}")
        if self.bc_reference_episodes > 0 and self.critic_warmup_steps <= 0:
            raise ValueError(
                "bc_reference_episodes needs critic_warmup_steps > 0 "
                "(the BC policy's warm-up episodes set the reference): pass --critic-warmup-steps > 0 "
                "or --set finetune.ppo.bc_rl.bc_reference_episodes=0"
            )

    @property
    def uses_demos(self) -> bool:
        return self.bc_coeff > 0 or self.mix_ratio > 0

    @property
    def demo_loss_weight(self) -> float:
        """Weight of the demo loss relative to PPO's minibatch loss: a ``mix_ratio`` share of the sum."""
        return self.mix_ratio / (1.0 - self.mix_ratio)


# PPO/SAC settings that --init bc may set apart from the shared finetune.<algo>.hyperparams: absent
# (None here), the shared value applies.
_APART = "for --init bc only; absent: finetune.{algo}.hyperparams' value"


@dataclass
class PPOFromBC(HybridSettings):
    """``finetune.ppo.bc_rl``: how ``--init bc`` fine-tunes PPO (optiq/rl/hybrid_ppo.py)."""

    target_kl: float | None = setting(
        rules.number(0, low_open=True, null=True), "PPO's target_kl " + _APART.format(algo="ppo"), None
    )

    APART: ClassVar[tuple[str, ...]] = ("target_kl",)


@dataclass
class DemoSACSettings:
    """``finetune.sac.bc_rl``: how ``--init bc`` fine-tunes SAC (DemoSAC's arguments; optiq/rl/demo_sac.py)."""

    critic_warmup_steps: int = setting(STEPS, "env steps at the start in which only the critics learn (WSRL)", 0)
    demo_fraction: float = setting(FRACTION, "share of every replay batch from the demonstrations (RLPD)", 0.5)
    bc_coeff: float = setting(NON_NEGATIVE, "BC anchor weight, times the batch's mean |Q(s, a_demo)| (TD3+BC)", 0.0)
    bc_filter: bool = setting(
        rules.boolean(), "anchor only where the critic rates the demo action higher (Q-filter)", True
    )
    bc_batch_size: int = setting(COUNT, "demo samples per anchor loss", 256)
    bc_decay: float = setting(DISCOUNT, "factor on the anchor's weight per 1,000 env steps (1.0: no clock decay)", 1.0)
    critic_layer_norm: bool = setting(rules.boolean(), "LayerNorm in the critics (RLPD)", False)
    warmup_action_noise: float = setting(
        NON_NEGATIVE, "std of Gaussian noise on BC's actions during the warm-up ([-1, 1] action scale)", 0.0
    )
    actor_lr_warmup_steps: int = setting(STEPS, "env steps after the warm-up over which the actor's LR rises from 0", 0)
    bc_proposals: bool = setting(
        rules.boolean(), "a frozen BC actor proposes actions too; the critic picks (IBRL)", False
    )
    bc_reference_episodes: int = setting(STEPS, _REFERENCE_EPISODES, 0)
    bc_adapt_rate: float = setting(NON_NEGATIVE, _ADAPT_RATE, 1.0)
    bc_reference_fraction: float = setting(rules.number(0, 1, low_open=True), _REFERENCE_FRACTION, 1.0)
    bc_probe_every: int = setting(
        STEPS,
        "> 0: every k-th training episode after the warm-up acts by the actor's mean action and only "
        "those move the anchor's weight (like with like against the noise-free reference); 0: every episode",
        0,
    )
    policy_average_steps: int = setting(STEPS, _AVERAGE, 0)
    release_check_steps: int = setting(STEPS, _CHECK_STEPS, 0)
    release_check_episodes: int = setting(COUNT, _CHECK_EPISODES, 2)
    release_reference_episodes: int = setting(COUNT, _RELEASE_REFERENCE, 5)
    release_min_fraction: float = setting(NON_NEGATIVE, _MIN_FRACTION, 1.0)
    learning_starts: int | None = setting(STEPS, "SAC's learning_starts " + _APART.format(algo="sac"), None)
    ent_coef: Any = setting(rules.ent_coef(), "SAC's ent_coef " + _APART.format(algo="sac"), None)
    target_entropy: Any = setting(rules.target_entropy(), "SAC's target_entropy " + _APART.format(algo="sac"), None)

    APART: ClassVar[tuple[str, ...]] = ("learning_starts", "ent_coef", "target_entropy")

    def __post_init__(self) -> None:
        if self.bc_probe_every > 0 and self.bc_reference_episodes <= 0:
            raise ValueError(
                "bc_probe_every needs bc_reference_episodes > 0 (the probes are compared with BC's reference): "
                "pass --set finetune.sac.bc_rl.bc_reference_episodes=5 or bc_probe_every=0"
            )


BC_RL_SECTIONS: dict[str, type] = {"ppo": PPOFromBC, "sac": DemoSACSettings}


# --- imitation: every key optional -------------------------------------------------------------


@dataclass(frozen=True)
class AdversarialSettings:
    """``imitation.adversarial``: how AIRL and GAIL train (imitation's ``AdversarialTrainer`` arguments).

    One round is one PPO rollout (``n_steps * n_envs`` env steps) followed by
    ``n_disc_updates_per_round`` discriminator steps on ``demo_batch_size`` demo and as many
    generator transitions.
    """

    demo_batch_size: int = setting(COUNT, "demo transitions per round", 512)
    demo_minibatch_size: int | None = setting(
        rules.number(1, integer=True, null=True), "discriminator minibatch (null: the whole batch at once)", None
    )
    gen_replay_buffer_capacity: int | None = setting(
        rules.number(1, integer=True, null=True),
        "generator samples kept (null: the last round, imitation's default)",
        None,
    )
    n_disc_updates_per_round: int = setting(COUNT, "discriminator steps per round", 2)
    disc_learning_rate: float = setting(POSITIVE, "the discriminator's Adam learning rate", 0.001)
    reward_net: str = setting(
        rules.choice(*REWARD_NETS),
        "auto: shaped (BasicShapedRewardNet) for AIRL, basic (BasicRewardNet) for GAIL",
        "auto",
    )
    reward_hid_sizes: tuple[int, ...] = setting(rules.int_list(), "hidden layers of the reward net", (32, 32))
    potential_hid_sizes: tuple[int, ...] = setting(
        rules.int_list(), "hidden layers of the potential (shaped nets)", (32, 32)
    )
    normalize_reward: bool = setting(rules.boolean(), "RunningNorm on the reward the generator sees", True)


@dataclass(frozen=True)
class DaggerSettings:
    """``imitation.dagger``: the DAgger budget and its BC updates.

    DAgger gets ``budget_fraction * finetune.total_timesteps`` env steps (it queries the expert
    at every one, so it needs far fewer than RL), split into ``rounds`` collection rounds of
    whole episodes. Before the first round the policy is trained on the stage-01 demos (round
    0, at 0 env steps); each round then trains ``bc_epochs`` epochs of BC on all data so far.
    The expert acts with probability ``1 - round / beta_rampdown_rounds`` (imitation's linear
    beta schedule; default: ``rounds``), the learner otherwise.
    """

    budget_fraction: float = setting(rules.number(0, 1, low_open=True), "share of finetune.total_timesteps", 0.1)
    rounds: int = setting(COUNT, "collection rounds", 10)
    bc_epochs: int = setting(COUNT, "BC epochs per round, on all data so far", 4)
    beta_rampdown_rounds: int | None = setting(
        rules.number(1, integer=True, null=True), "rounds until the learner acts alone (null: rounds)", None
    )


@dataclass(frozen=True)
class IPMDSettings:
    """``imitation.ipmd``: IPMD's reward learning on SAC (``--init ipmd --algo sac``; optiq/rl/ipmd.py).

    SAC's own settings are finetune.sac's; the budget is finetune.total_timesteps.
    """

    expert_batch_size: int = setting(COUNT, "demo state-actions per reward update (and as many of the policy's)", 256)
    reward_hid_sizes: tuple[int, ...] = setting(rules.int_list(), "hidden layers of the reward net", (256, 256))
    reward_learning_rate: float = setting(POSITIVE, "the reward net's Adam learning rate", 3e-4)
    reward_l2: float = setting(NON_NEGATIVE, "weight of the squared mean rewards in the reward loss", 0.1)
    reward_grad_penalty: float = setting(
        NON_NEGATIVE,
        "weight of a gradient penalty (|grad r| - 1)^2 at points between expert and policy pairs (WGAN-GP): "
        "a reward with a slope from the policy's states to the expert's; 0: off",
        0.0,
    )
    reward_rms_penalty: float = setting(
        NON_NEGATIVE,
        "weight of the root-mean-square of the rewards on each side (expert's, policy's), on top of reward_l2: "
        "pins every pair to its side's level; below 1 a separable optimum stays flat at +-(1 - w) / (2 reward_l2), "
        "from 1 the only optimum is r = 0 (the IPMD authors' code: about 1.1 on the policy's side and 5 on the "
        "expert's, with reward_l2 0); 0: off",
        0.0,
    )
    policy_actions: str = setting(
        rules.choice("stored", "current"),
        "the policy's side of the reward step: stored: the replay buffer's state-actions; current: its states with "
        "actions the current policy samples there (the IPMD authors' code)",
        "stored",
    )
    absorbing_states: bool = setting(
        rules.boolean(),
        "a terminated episode enters an absorbing state whose reward is learned (DAC), so the critics' "
        "target of a fall is gamma / (1 - gamma) x r_psi(absorbing), not 0; needs criterion: discounted",
        False,
    )
    reward_updates_per_step: int = setting(
        COUNT, "reward gradient steps each time the reward is updated (every reward_update_interval SAC steps)", 1
    )
    reward_update_interval: int = setting(
        COUNT,
        "SAC gradient steps between reward updates: 1 updates it with every policy step; ML-IRL's reference "
        "code takes one reward step per 5,000, so the policy nearly solves each reward before it moves",
        1,
    )
    policy_sample_window: int = setting(
        STEPS,
        "the reward step's policy pairs come from this many most recent env steps (n_envs transitions each; "
        "at most the replay buffer): the current policy's E[r], as ML-IRL's fresh rollouts; 0: the whole buffer",
        0,
    )
    criterion: str = setting(
        rules.choice("average", "discounted"),
        "average: undiscounted differential critics on r - rho (the paper's); discounted: SAC's gamma",
        "average",
    )
    average_reward_rate: float = setting(
        rules.number(0, 1, low_open=True), "step size of rho, the running average of the estimated reward", 0.005
    )

    def __post_init__(self) -> None:
        if self.absorbing_states and self.criterion != "discounted":
            raise ValueError(
                "absorbing_states needs criterion: discounted (an absorbing state has no average-reward value): "
                "pass --set imitation.ipmd.criterion=discounted or absorbing_states=false"
            )


@dataclass
class ImitationSection:
    """``imitation`` (optional): ``04_finetune_rl --init airl|gail|dagger|ipmd``."""

    adversarial: AdversarialSettings = section(AdversarialSettings, "AIRL and GAIL", optional=True)
    dagger: DaggerSettings = section(DaggerSettings, "DAgger", optional=True)
    ipmd: IPMDSettings = section(IPMDSettings, "IPMD", optional=True)


# --- one env's section -------------------------------------------------------------------------


@dataclass
class EnvSettings:
    """One env of hparams.yml (``pixels``: dotted-key overrides in pixel mode, applied before this is checked)."""

    expert: ExpertSection = section(ExpertSection, "the demonstrator's training")
    demos: DemosSection = section(DemosSection, "stage 01")
    bc: BCSection = section(BCSection, "stages 02-03")
    finetune: FinetuneSection = section(FinetuneSection, "stage 04")
    eval: EvalSection = section(EvalSection, "stages 04-05")
    run: RunSection = section(RunSection, "run_all.py")
    presets: PresetsSection = section(PresetsSection, "quick and full")
    obs: ObsSection = section(ObsSection, "observations", optional=True)
    scripted: ScriptedSection | None = field(
        default=None, metadata={"section": ScriptedSection, "doc": "--source scripted"}
    )
    imitation: ImitationSection = section(ImitationSection, "AIRL, GAIL, DAgger", optional=True)


# The sections whose keys are all optional (a key outside the class is an error) and the class of each.
PARTIAL_SECTIONS: dict[str, type] = {
    "finetune.ppo.bc_rl": PPOFromBC,
    "finetune.sac.bc_rl": DemoSACSettings,
    "imitation.adversarial": AdversarialSettings,
    "imitation.dagger": DaggerSettings,
    "imitation.ipmd": IPMDSettings,
}


def fields_by_key(cls: type = EnvSettings, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Every setting under ``cls`` (nested sections and the partial ones included), by dotted key."""
    found: dict[str, dataclasses.Field] = {}
    for item in dataclasses.fields(cls):
        dotted = f"{prefix}{item.name}"
        nested = section_of(item)
        if nested is not None:
            found.update(fields_by_key(nested, dotted + "."))
        elif dotted in PARTIAL_SECTIONS:
            found.update(fields_by_key(PARTIAL_SECTIONS[dotted], dotted + "."))
        else:
            found[dotted] = item
    return found


def default_of(item: dataclasses.Field) -> Any:
    """The value a setting takes where the yml leaves it out (MISSING for a required one)."""
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:
        return item.default_factory()
    return MISSING


def build(cls: type, values: dict[str, Any]) -> Any:
    """``cls`` from a checked partial section (lists become the tuples ``cls`` declares)."""
    kinds = {item.name: item.default for item in dataclasses.fields(cls)}
    return cls(**{key: tuple(value) if isinstance(kinds.get(key), tuple) else value for key, value in values.items()})


def check_partial(cls: type, values: dict[str, Any] | None, where: str) -> Any:
    """``cls`` from a partial section given as a mapping (``where``: its dotted key, for errors).

    A config from optiq.config.load_env_config was already checked on load; this is the same
    check for a mapping built in code, with the same one-line errors (minus the file's name).
    """
    values = values or {}
    if not isinstance(values, dict):
        raise OptiqError(f"'{where}' must be a mapping of settings, got {type(values).__name__}")
    fields = {item.name: item for item in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise OptiqError(f"unknown key(s) {', '.join(unknown)} in {where}; known: {', '.join(sorted(fields))}")
    checked = {}
    for key, value in values.items():
        rule = rule_of(fields[key])
        try:
            checked[key] = rule.apply(value) if rule is not None else value
        except rules.Invalid:
            shown = "null" if value is None else repr(value)
            raise OptiqError(f"'{where}.{key}' must be {rule.expect}, got {shown}") from None
    try:
        return build(cls, checked)
    except ValueError as exc:
        raise OptiqError(f"{where}: {exc}") from None


FIELDS: dict[str, dataclasses.Field] = fields_by_key()


def configured(config: dict[str, Any], dotted: str) -> Any:
    """``config``'s value of ``dotted``, else its typed default (for the keys the yml may leave out)."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default_of(FIELDS[dotted])
        node = node[part]
    return node


def setting_doc(dotted: str) -> str:
    """What the setting ``dotted`` does ('' for a key outside the typed sections, e.g. SB3's hyperparams)."""
    item = FIELDS.get(dotted)
    return doc_of(item) if item is not None else ""
