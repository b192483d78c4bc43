"""Operator commands, run where the deployment's settings are: `python -m segops.ops <command> ...`."""
