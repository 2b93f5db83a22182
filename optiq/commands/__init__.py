"""The command-line programs: one module per command, each with ``main(argv=None)``.

``optiq COMMAND ...`` (optiq/__main__.py), ``python -m optiq.commands.MODULE ...`` and the
checkout's scripts/*.py and run_all.py (thin wrappers) all run the same ``main``; a module's
docstring is its ``--help`` description. run_all and sweep launch their stage jobs as
``python -m optiq COMMAND ...`` (:func:`command_line`), so they need no checkout.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

# command name -> (module under optiq.commands, the checkout script it replaces)
COMMANDS: dict[str, tuple[str, str]] = {
    "collect-demos": ("collect_demos", "scripts/01_collect_demos.py"),
    "train-bc": ("train_bc", "scripts/02_train_bc.py"),
    "select-best": ("select_best", "scripts/03_select_best.py"),
    "finetune": ("finetune", "scripts/04_finetune_rl.py"),
    "train rl": ("finetune", "scripts/04_finetune_rl.py"),
    "eval-video": ("eval_video", "scripts/05_eval_video.py"),
    "compare": ("compare", "scripts/06_compare.py"),
    "run-all": ("run_all", "run_all.py"),
    "sweep": ("sweep", "scripts/sweep.py"),
    "settings": ("settings", "(no script) each setting of an env: value, default, range, what it does"),
}


def command_main(command: str) -> Callable[[list[str] | None], None]:
    """The ``main`` of ``command`` (imported on demand: --help of one command loads only its module)."""
    module = importlib.import_module(f"optiq.commands.{COMMANDS[command][0]}")
    return module.main


def command_line(command: str, *args: str) -> list[str]:
    """``python -m optiq COMMAND ARGS``, with this interpreter: a subprocess that needs no checkout."""
    return [sys.executable, "-m", "optiq", *command.split(" "), *args]
