"""optiq: does imitation pre-training make RL faster and better on my task?

Stages: collect demos -> train BC -> select best BC checkpoint -> fine-tune RL from it
-> evaluate with video -> compare BC-only vs BC->RL vs RL-from-scratch.

Importing optiq sets nothing in the process: the headless GL backend (``MUJOCO_GL``) is chosen
when optiq first makes an env (:func:`optiq.rendering.configure_mujoco_gl`).
"""

__version__ = "0.1.0"
