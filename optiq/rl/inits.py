"""The starts stage 04 offers, one name per ``04_finetune_rl.py --init``."""

# bc: BC weights + the BC-preserving extensions configured in finetune.<algo>.bc_rl;
# bc_naive: BC weights + stock PPO/SAC (the baseline that tends to forget); scratch: random init.
# airl, gail, dagger: imitation-library baselines trained from the demos (optiq.rl.imitation_methods).
# ipmd: inverse RL on SAC (optiq.rl.ipmd), trained and resumed like the RL starts.
IMITATION_INITS = ("airl", "gail", "dagger")
INVERSE_RL_INITS = ("ipmd",)
INITS = ("bc", "bc_naive", "scratch", "pretrained", *IMITATION_INITS, *INVERSE_RL_INITS)
