"""Start RL from a pretrained encoder (TorchScript ``.ts`` or state-dict ``.pth``).

Adapter modes:

* ``obs``: env obs -> optional pre-adapter to the encoder's input dim -> frozen encoder ->
  optional adapter to the env obs dim -> a vanilla policy. Applied as a Gymnasium
  ObservationWrapper inside each env, with a fixed ``observation_space``.
* ``feature``: the encoder (+ a :class:`LinearAdapter` from F_src to the policy's F_tgt) is
  the SB3 features extractor and trains with the policy.
* ``none``: a plain SB3 policy.

If the pretrained model is an MLP whose Linear shapes match the policy torso, its first
matching layers are copied (stopping at the first mismatch). What was done is reported as
``pretrained_arch, F_src, F_tgt, adapter_hidden, mode, copied_layers, random_init_layers``.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from optiq.errors import OptiqError
from optiq.rl.pretrained.architectures import build_encoder

ADAPTER_MODES = ("obs", "feature", "none")
POOLS = ("last", "mean")


class LinearAdapter(nn.Module):
    """``F_src -> hidden... -> F_tgt`` with ReLUs between (a single Linear without hidden dims)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dims: list[int] | None = None):
        super().__init__()
        dims = [in_dim, *(hidden_dims or []), out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim, self.hidden_dims = in_dim, out_dim, list(hidden_dims or [])

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.net(x)


class PooledEncoder(nn.Module):
    """Runs an encoder and flattens its output to ``(B, F)``: sequences are pooled (last or mean)."""

    def __init__(self, encoder: nn.Module, pool: str = "last"):
        super().__init__()
        if pool not in POOLS:
            raise OptiqError(f"unknown --feature-pool '{pool}'; choose one of: {', '.join(POOLS)}")
        self.encoder = encoder
        self.pool = pool

    def forward(self, x: th.Tensor) -> th.Tensor:
        out = self.encoder(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.dim() == 3:
            out = out[:, -1] if self.pool == "last" else out.mean(dim=1)
        return out.flatten(start_dim=1)


@dataclass
class BootstrapArtifacts:
    """A loaded pretrained model and what was learned about it."""

    encoder: PooledEncoder
    arch: str  # registry name, or "torchscript"
    in_dim: int  # what the encoder expects
    f_src: int  # pooled output features
    source: str  # "torchscript" or "state_dict"
    path: Path


def _probe(encoder: PooledEncoder, in_dim: int, device: th.device) -> int:
    with th.no_grad():
        out = encoder(th.zeros(2, in_dim, device=device))
    return int(out.shape[-1])


def load_pretrained(
    path: str | Path,
    device: str | th.device,
    adapter_mode: str,
    env_obs_dim: int,
    torchscript_in_dim: int | None = None,
    feature_pool: str = "last",
) -> BootstrapArtifacts:
    """Load a TorchScript module, or else a state-dict checkpoint built through the registry.

    F_src comes from a dummy forward pass. Both loaders failing is one error naming both causes.
    """
    if adapter_mode not in ADAPTER_MODES:
        raise OptiqError(f"unknown --adapter-mode '{adapter_mode}'; choose one of: {', '.join(ADAPTER_MODES)}")
    path = Path(path)
    if not path.is_file():
        raise OptiqError(f"pretrained model not found: {path} (pass a TorchScript .ts or a state-dict .pth)")
    device = th.device(
        "cpu" if str(device) == "auto" and not th.cuda.is_available() else ("cuda" if str(device) == "auto" else device)
    )
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but is what users ship
            warnings.simplefilter("ignore", DeprecationWarning)
            module = th.jit.load(str(path), map_location=device)
        in_dim = torchscript_in_dim or env_obs_dim
        encoder = PooledEncoder(module, feature_pool)
        try:
            f_src = _probe(encoder, in_dim, device)
        except Exception as exc:
            raise OptiqError(
                f"TorchScript model {path.name} does not accept inputs of dim {in_dim}: {str(exc).splitlines()[0]} "
                "(pass --torchscript-in-dim with the dim it was traced with)"
            ) from None
        return BootstrapArtifacts(encoder, "torchscript", in_dim, f_src, "torchscript", path)
    except OptiqError:
        raise
    except Exception as ts_exc:
        ts_error = f"{type(ts_exc).__name__}: {str(ts_exc).splitlines()[0] if str(ts_exc) else ''}"
    try:
        checkpoint = th.load(str(path), map_location=device, weights_only=True)
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint or "arch" not in checkpoint:
            raise ValueError("expected a dict with 'state_dict', 'arch', 'input_dim', 'output_dim', 'cfg'")
        module = build_encoder(
            checkpoint["arch"], int(checkpoint["input_dim"]), int(checkpoint["output_dim"]), checkpoint.get("cfg")
        )
        module.load_state_dict(checkpoint["state_dict"])
    except OptiqError:
        raise
    except (Exception, zipfile.BadZipFile) as sd_exc:
        sd_error = f"{type(sd_exc).__name__}: {str(sd_exc).splitlines()[0] if str(sd_exc) else ''}"
        raise OptiqError(
            f"cannot load pretrained model {path}: as TorchScript ({ts_error}); as a state dict ({sd_error}) "
            "(save it with torch.jit.save, or torch.save a dict with state_dict/arch/input_dim/output_dim/cfg)"
        ) from None
    module.to(device).eval()
    encoder = PooledEncoder(module, feature_pool)
    in_dim = int(checkpoint["input_dim"])
    if torchscript_in_dim and torchscript_in_dim != in_dim:
        raise OptiqError(f"--torchscript-in-dim {torchscript_in_dim} contradicts the checkpoint's input_dim {in_dim}")
    return BootstrapArtifacts(encoder, checkpoint["arch"], in_dim, _probe(encoder, in_dim, device), "state_dict", path)


class AdaptedEncoder(nn.Module):
    """pre-adapter (env obs -> encoder input) -> encoder -> adapter (F_src -> F_tgt); missing parts are identity."""

    def __init__(self, encoder: PooledEncoder, pre_adapter: nn.Module | None, adapter: nn.Module | None):
        super().__init__()
        self.pre_adapter = pre_adapter
        self.encoder = encoder
        self.adapter = adapter

    def forward(self, obs: th.Tensor) -> th.Tensor:
        x = self.pre_adapter(obs) if self.pre_adapter is not None else obs
        x = self.encoder(x)
        return self.adapter(x) if self.adapter is not None else x


def build_adapters(
    artifacts: BootstrapArtifacts, env_obs_dim: int, f_tgt: int, adapter_hidden: list[int] | None
) -> tuple[nn.Module | None, nn.Module | None]:
    """(pre-adapter env->encoder input, adapter F_src->F_tgt), each None when the dims already match."""
    pre = LinearAdapter(env_obs_dim, artifacts.in_dim) if env_obs_dim != artifacts.in_dim else None
    post = LinearAdapter(artifacts.f_src, f_tgt, adapter_hidden) if artifacts.f_src != f_tgt else None
    return pre, post


class PretrainedFeaturesExtractor(BaseFeaturesExtractor):
    """``feature`` mode: the (adapted) pretrained encoder as SB3's features extractor.

    Its constructor takes only plain values (the checkpoint path and dims), so SB3 can save
    the policy's kwargs in its zip; the encoder's weights travel in the policy's state dict.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        pretrained_path: str,
        features_dim: int,
        torchscript_in_dim: int | None = None,
        feature_pool: str = "last",
        adapter_hidden: list[int] | None = None,
    ):
        super().__init__(observation_space, features_dim)
        obs_dim = int(np.prod(observation_space.shape))
        artifacts = load_pretrained(pretrained_path, "cpu", "feature", obs_dim, torchscript_in_dim, feature_pool)
        pre, post = build_adapters(artifacts, obs_dim, features_dim, adapter_hidden)
        self.adapted = AdaptedEncoder(artifacts.encoder, pre, post)
        self.f_src = artifacts.f_src
        self.arch = artifacts.arch

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.adapted(observations.flatten(start_dim=1).float())


class AdapterObsWrapper(gym.ObservationWrapper):
    """``obs`` mode: replace each observation by the frozen adapted encoder's output."""

    def __init__(self, env: gym.Env, adapted: AdaptedEncoder, out_dim: int, obs_key: str | None = None):
        super().__init__(env)
        space = env.observation_space
        if isinstance(space, gym.spaces.Dict):
            if obs_key is None or obs_key not in space.spaces:
                keys = ", ".join(space.spaces)
                raise OptiqError(f"this env has dict observations ({keys}); pass --obs-key to pick one")
        elif obs_key is not None:
            raise OptiqError(f"--obs-key {obs_key} given but the env's observations are not a dict")
        self.obs_key = obs_key
        self.adapted = adapted.eval()
        for p in self.adapted.parameters():
            p.requires_grad_(False)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(out_dim,), dtype=np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        obs = observation[self.obs_key] if self.obs_key is not None else observation
        device = next(self.adapted.parameters()).device
        with th.no_grad():
            out = self.adapted(th.as_tensor(np.asarray(obs, dtype=np.float32), device=device).reshape(1, -1))
        return out.cpu().numpy().reshape(-1).astype(np.float32)


def make_adapter_obs_wrapper(adapted: AdaptedEncoder, out_dim: int, obs_key: str | None = None):
    """A ``wrapper_class`` for make_vec_env applying :class:`AdapterObsWrapper` in each env."""
    return lambda env: AdapterObsWrapper(env, adapted, out_dim, obs_key)


@dataclass
class BootstrapReport:
    pretrained_arch: str
    f_src: int
    f_tgt: int
    adapter_hidden: list[int]
    mode: str
    copied_layers: list[tuple[str, bool]]
    random_init_layers: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "pretrained_arch": self.pretrained_arch,
            "F_src": self.f_src,
            "F_tgt": self.f_tgt,
            "adapter_hidden": self.adapter_hidden,
            "mode": self.mode,
            "copied_layers": [[n, c] for n, c in self.copied_layers],
            "random_init_layers": self.random_init_layers,
        }

    def to_text(self) -> str:
        lines = [
            f"pretrained_arch={self.pretrained_arch} F_src={self.f_src} F_tgt={self.f_tgt} "
            f"adapter_hidden={self.adapter_hidden} mode={self.mode}"
        ]
        lines += [f"  {'copied' if c else 'random'}  {n}" for n, c in self.copied_layers]
        return "\n".join(lines)


def copy_mlp_layers(artifacts: BootstrapArtifacts, policy_net: nn.Module, prefix: str) -> list[tuple[str, bool]]:
    """Copy the pretrained MLP's Linear layers into ``policy_net``'s, in order, until the first shape mismatch."""
    targets = [(f"{prefix}.{name}", m) for name, m in policy_net.named_modules() if isinstance(m, nn.Linear)]
    if artifacts.arch != "mlp":
        return [(name, False) for name, _ in targets]
    # The registry's MLP, already loaded with the checkpoint's weights: its Linear layers in order.
    sources = [m for m in artifacts.encoder.modules() if isinstance(m, nn.Linear)]
    report, matching = [], True
    for i, (name, linear) in enumerate(targets):
        if matching and i < len(sources) and sources[i].weight.shape == linear.weight.shape:
            with th.no_grad():
                linear.weight.copy_(sources[i].weight)
                linear.bias.copy_(sources[i].bias)
            report.append((name, True))
        else:
            matching = False
            report.append((name, False))
    return report


def save_bundle(
    model: Any, adapter: nn.Module | None, pre_ts_adapter: nn.Module | None, path: str | Path, metadata: dict[str, Any]
) -> Path:
    """A self-contained state-dict bundle: policy, adapters and what is needed to rebuild them."""
    return write_bundle(
        path,
        model.policy.state_dict(),
        adapter.state_dict() if adapter is not None else None,
        pre_ts_adapter.state_dict() if pre_ts_adapter is not None else None,
        metadata,
    )


def write_bundle(
    path: str | Path,
    policy_state_dict: dict[str, th.Tensor],
    adapter_state_dict: dict[str, th.Tensor] | None,
    pre_ts_adapter_state_dict: dict[str, th.Tensor] | None,
    metadata: dict[str, Any],
) -> Path:
    """Atomically write the bundle format that :func:`load_bundle` reads."""
    from optiq.atomic_io import write_with

    bundle = {
        "policy_state_dict": policy_state_dict,
        "adapter_state_dict": adapter_state_dict,
        "pre_ts_adapter_state_dict": pre_ts_adapter_state_dict,
        "metadata": metadata,
    }
    return write_with(path, lambda p: th.save(bundle, p))


def load_bundle(path: str | Path) -> dict[str, Any]:
    """Read a bundle written by :func:`save_bundle` (tensors and plain metadata only)."""
    try:
        return th.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise OptiqError(
            f"cannot read bundle {path}: {type(exc).__name__}: {exc} (was it written by save_bundle?)"
        ) from None
