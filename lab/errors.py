"""Errors the CLI turns into exit codes."""


class LabError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2, and no run is created."""

    exit_code = 2


class ConfigError(LabError):
    """A configuration value, key or file is wrong."""
