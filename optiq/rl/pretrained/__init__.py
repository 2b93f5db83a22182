"""``--init pretrained``: start RL from a pretrained encoder (TorchScript or state-dict).

* :mod:`~optiq.rl.pretrained.encoder_start`: loading the encoder, adapters, the adapter modes
  (obs / feature / none), the copy of matching MLP layers and the report of what was done;
* :mod:`~optiq.rl.pretrained.architectures`: the encoder architectures a ``.pth`` can name;
* :mod:`~optiq.rl.pretrained.policy_factory`: the SB3 model built around it (``bootstrap_model``).
"""
