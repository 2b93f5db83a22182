"""optiq: does imitation pre-training make RL faster and better on my task?

Stages: collect demos -> train BC -> select best BC checkpoint -> fine-tune RL from it
-> evaluate with video -> compare BC-only vs BC->RL vs RL-from-scratch.
"""

from optiq.rendering import configure_mujoco_gl

# MuJoCo reads MUJOCO_GL when it is first imported, so this must run before any env.
configure_mujoco_gl()

__version__ = "0.1.0"
