#!/usr/bin/env python
"""Run the whole pipeline (`optiq run-all`).

The code, its flags and its --help text are in optiq/commands/run_all.py.
"""

from optiq.cli import run_main
from optiq.commands.run_all import main

if __name__ == "__main__":
    run_main(main)
