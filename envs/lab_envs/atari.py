"""Atari 2600 games from ale-py, whose wheel bundles the ROMs (nothing is downloaded)."""

from __future__ import annotations


def register() -> None:
    """Register ale-py's ``ALE/*`` games with gymnasium, without its start-up banner on every env."""
    import ale_py
    import gymnasium

    ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)
    gymnasium.register_envs(ale_py)
