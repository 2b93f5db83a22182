"""An optimizer wrapper that lets an SB3 algorithm extension act at ``step()`` time.

SB3's update loops call ``zero_grad``, ``backward``, gradient clipping and ``step`` on
the policy's optimizers. Wrapping the optimizer lets an extension add loss terms or hold
parameters still right before the step, without copying SB3's loop. The class
subclasses ``torch.optim.Optimizer`` (without its constructor) only so that SB3 saves and
loads it as an optimizer; everything is delegated to the wrapped one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch as th


class HookedOptimizer(th.optim.Optimizer):
    """Delegates to ``optimizer``; ``before_step()`` runs first and may veto the step by returning False."""

    def __init__(self, optimizer: th.optim.Optimizer, before_step: Callable[[], bool]):
        # Deliberately not calling Optimizer.__init__: all state lives in the wrapped optimizer.
        self.optimizer = optimizer
        self.before_step = before_step

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.optimizer!r})"

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        return self.optimizer.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any], **_: Any) -> None:
        self.optimizer.load_state_dict(state_dict)

    def step(self, closure: Any = None) -> Any:
        if self.before_step():
            return self.optimizer.step(closure)
        self.optimizer.zero_grad(set_to_none=True)
        return None
