"""A small registry of encoder architectures for pretrained state-dict checkpoints.

A ``.pth`` checkpoint carries ``{"state_dict", "arch", "input_dim", "output_dim", "cfg"}``;
``build_encoder(arch, input_dim, output_dim, cfg)`` rebuilds the module it was saved from.
Encoders take ``(B, F)`` or ``(B, T, F)`` inputs; sequence models return ``(B, T, F_out)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch as th
from torch import nn

from optiq.errors import OptiqError


class MLPEncoder(nn.Module):
    """Linear layers with an activation between them: ``input_dim -> hidden... -> output_dim``."""

    def __init__(self, input_dim: int, output_dim: int, hidden_dims: list[int] | None = None, activation: str = "relu"):
        super().__init__()
        dims = [input_dim, *(hidden_dims or [256, 256]), output_dim]
        layers: list[nn.Module] = []
        act = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[activation]
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(act())
        self.net = nn.Sequential(*layers)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.net(x)


class CNN1DEncoder(nn.Module):
    """Temporal 1-D convolutions over ``(B, T, F)`` (a ``(B, F)`` input is a length-1 sequence)."""

    def __init__(self, input_dim: int, output_dim: int, channels: list[int] | None = None, kernel_size: int = 3):
        super().__init__()
        chans = [input_dim, *(channels or [64, 64])]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv1d(a, b, kernel_size, padding=kernel_size // 2), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], output_dim)

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)
        return self.head(h)


class TransformerEncoderModel(nn.Module):
    """Input projection + ``nn.TransformerEncoder`` + output projection, on ``(B, T, F)``."""

    def __init__(self, input_dim: int, output_dim: int, d_model: int = 64, n_heads: int = 4, n_layers: int = 2):
        super().__init__()
        self.inp = nn.Linear(input_dim, d_model)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=2 * d_model, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.out = nn.Linear(d_model, output_dim)

    def forward(self, x: th.Tensor) -> th.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return self.out(self.encoder(self.inp(x)))


REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLPEncoder,
    "cnn1d": CNN1DEncoder,
    "transformer": TransformerEncoderModel,
}


def build_encoder(arch: str, input_dim: int, output_dim: int, cfg: dict[str, Any] | None = None) -> nn.Module:
    if arch not in REGISTRY:
        raise OptiqError(f"unknown encoder arch '{arch}'; known: {', '.join(REGISTRY)}")
    try:
        return REGISTRY[arch](input_dim, output_dim, **(cfg or {}))
    except TypeError as exc:
        raise OptiqError(f"bad cfg for encoder arch '{arch}': {exc}") from None


def save_encoder_checkpoint(
    module: nn.Module, path: str, arch: str, input_dim: int, output_dim: int, cfg: dict[str, Any]
) -> None:
    """Write a state-dict checkpoint that :func:`optiq.rl.pretrained.encoder_start.load_pretrained` reads."""
    th.save(
        {"state_dict": module.state_dict(), "arch": arch, "input_dim": input_dim, "output_dim": output_dim, "cfg": cfg},
        path,
    )
