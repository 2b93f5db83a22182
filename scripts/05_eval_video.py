#!/usr/bin/env python
"""Stage 05: evaluate every policy and record videos (`optiq eval-video`).

The code, its flags and its --help text are in optiq/commands/eval_video.py.
"""

from optiq.cli import run_main
from optiq.commands.eval_video import main

if __name__ == "__main__":
    run_main(main)
