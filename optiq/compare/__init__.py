"""Stage 06: BC-only vs BC->RL vs RL-from-scratch."""
