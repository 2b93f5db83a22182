"""Stage 05: deterministic evaluation and headless video."""
