#!/usr/bin/env python
"""Stage 04: RL fine-tuning (`optiq finetune`).

The code, its flags and its --help text are in optiq/commands/finetune.py.
"""

from optiq.cli import run_main
from optiq.commands.finetune import main

if __name__ == "__main__":
    run_main(main)
