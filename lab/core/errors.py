"""Errors the CLI turns into exit codes."""


class LabError(Exception):
    """Bad input from the user: reported as one line on stderr, exit code 2, and no run is created."""

    exit_code = 2


class ConfigError(LabError):
    """A configuration value, key or file is wrong."""


class StoreError(LabError):
    """The tracking store cannot be used as asked: it is read-only (and the command writes), or its database is
    not a readable MLflow store. Reported as one line naming the store, exit code 2; nothing is written."""


class TrackingError(RuntimeError):
    """The tracking worker reported an error or died. ``applied``: the call itself succeeded, and the error is
    that of an earlier call that was not waited for."""

    def __init__(self, message: str, applied: bool = False) -> None:
        super().__init__(message)
        self.applied = applied
