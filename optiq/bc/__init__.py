"""Stages 02-03: behavioural cloning and checkpoint selection."""
