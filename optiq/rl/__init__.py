"""RL: resumable training, BC weight transfer, fine-tuning."""
