"""Operator commands, run as `python -m segops.ops <command>` against the settings of the environment."""
