"""The ``optiq`` command: one entry point for every stage script.

``optiq run-all ...`` is ``python run_all.py ...``; ``optiq finetune ...`` is
``python scripts/04_finetune_rl.py ...``, and so on. Flags are the scripts' own.
"""

from __future__ import annotations

import runpy
import sys

from optiq.config import REPO_ROOT

COMMANDS = {
    "collect-demos": "scripts/01_collect_demos.py",
    "train-bc": "scripts/02_train_bc.py",
    "select-best": "scripts/03_select_best.py",
    "finetune": "scripts/04_finetune_rl.py",
    "train rl": "scripts/04_finetune_rl.py",
    "eval-video": "scripts/05_eval_video.py",
    "compare": "scripts/06_compare.py",
    "run-all": "run_all.py",
    "sweep": "scripts/sweep.py",
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["train", "rl"]:
        argv = ["train rl", *argv[2:]]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print("usage: optiq COMMAND [flags]   (optiq COMMAND --help for its flags)\n\ncommands:")
        for name, script in COMMANDS.items():
            print(f"  {name:<14} {script}")
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    script = REPO_ROOT / COMMANDS[argv[0]]
    sys.argv = [str(script), *argv[1:]]
    runpy.run_path(str(script), run_name="__main__")


if __name__ == "__main__":
    main()
