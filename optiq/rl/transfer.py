"""Copy a BC policy's trained weights into a fresh SB3 policy, and report what was copied.

Only the parts BC trains are copied: for PPO the actor (features extractor,
``mlp_extractor.policy_net``, ``action_net``, ``log_std``); for SAC the ``actor``.
Critics keep their random initialisation (BC never trained them) and are reported so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch as th
from stable_baselines3.common.policies import BasePolicy

from optiq.errors import OptiqError

# Parameter-name prefixes that BC trains, per algorithm.
BC_TRAINED_PREFIXES: dict[str, tuple[str, ...]] = {
    "ppo": ("features_extractor.", "pi_features_extractor.", "mlp_extractor.policy_net.", "action_net.", "log_std"),
    "sac": ("actor.",),
}


@dataclass
class CopyReport:
    """Which layers were copied from the source and which kept their random init."""

    copied_layers: list[tuple[str, bool]] = field(default_factory=list)
    random_init_layers: list[str] = field(default_factory=list)
    n_params_copied: int = 0
    n_params_total: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "copied_layers": [[name, copied] for name, copied in self.copied_layers],
            "random_init_layers": self.random_init_layers,
            "n_params_copied": self.n_params_copied,
            "n_params_total": self.n_params_total,
        }

    def to_text(self) -> str:
        lines = [f"copied {self.n_params_copied}/{self.n_params_total} parameters"]
        lines += [f"  {'copied' if copied else 'random'}  {name}" for name, copied in self.copied_layers]
        return "\n".join(lines)


def _layer_name(param_name: str) -> str:
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def copy_bc_weights(source: BasePolicy, target: BasePolicy, algo: str) -> CopyReport:
    """Copy BC-trained tensors of ``source`` into ``target`` (same architecture required)."""
    prefixes = BC_TRAINED_PREFIXES[algo]
    source_state = source.state_dict()
    target_state = target.state_dict()
    report = CopyReport()
    layers: dict[str, bool] = {}
    new_state = {}
    for name, tensor in target_state.items():
        trained = name.startswith(prefixes)
        report.n_params_total += tensor.numel()
        if trained:
            if name not in source_state or source_state[name].shape != tensor.shape:
                got = tuple(source_state[name].shape) if name in source_state else "missing"
                raise OptiqError(
                    f"BC checkpoint does not fit the RL policy: '{name}' is {got} in the checkpoint but "
                    f"{tuple(tensor.shape)} in the policy (retrain BC with the same hparams and --algo)"
                )
            new_state[name] = source_state[name].detach().clone()
            report.n_params_copied += tensor.numel()
        layer = _layer_name(name)
        layers[layer] = layers.get(layer, True) and trained
    with th.no_grad():
        target.load_state_dict({**target_state, **new_state})
    report.copied_layers = list(layers.items())
    report.random_init_layers = [name for name, copied in layers.items() if not copied]
    return report
