"""Stage 01: experts and demonstrations."""
