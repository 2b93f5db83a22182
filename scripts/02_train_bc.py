#!/usr/bin/env python
"""Stage 02: behavioural cloning on the demos of stage 01 (`optiq train-bc`).

The code, its flags and its --help text are in optiq/commands/train_bc.py.
"""

from optiq.cli import run_main
from optiq.commands.train_bc import main

if __name__ == "__main__":
    run_main(main)
