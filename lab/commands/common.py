"""What every command shares: the registry of this invocation (``--plugins-dir`` included), resolving
``key=value`` arguments, rich output (a console, a table), and the checks a command makes before it touches the
store: that it can be written, that a run exists, that an experiment can take a new run."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from lab.core.config import ResolvedConfig
from lab.core.errors import ConfigError
from lab.core.registry import Registry

plugins_dir: str | None = None
"""``--plugins-dir`` of this invocation (set by ``lab.cli.main``): its ``*.py`` files are loaded as plugins too."""


def registry() -> Registry:
    from pathlib import Path

    from lab.core.loading import load_registry, make_plugin_manager

    registry = load_registry(make_plugin_manager(plugins_dir=Path(plugins_dir) if plugins_dir else None))
    for problem in registry.problems:
        print(f"lab: warning: {problem}", file=sys.stderr)
    return registry


def resolve_args(cli: Mapping[str, Any]) -> ResolvedConfig:
    """The resolved config of parsed ``key=value`` arguments (:func:`lab.core.config.parse_overrides`), with the
    ``config=FILE`` among them read as the file layer."""
    from lab.core.config import load_config_file, resolve

    cli = dict(cli)
    config_file = cli.pop("config", None)
    file = load_config_file(str(config_file)) if config_file is not None else None
    return resolve(registry(), cli, file)


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output: wide enough that tables never fold keys and values (rich assumes 80 columns).
    width = None if stream.isatty() else 200
    return Console(file=stream, highlight=False, soft_wrap=True, width=width)


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(str(row[column])) for column in columns))
    console().print(table)


def check_writable() -> None:
    """A command that records something: refuse a read-only, empty or corrupt store in one line, up front."""
    from lab.tracking.tracker import check_store

    check_store(write=True)


def check_store(run: Any) -> None:
    """A run id or model URI names nothing where there is no store yet: refused before asking creates one."""
    from lab.tracking.preflight import check_run_exists

    check_run_exists(str(run))


def model_as_run(options: dict[str, Any]) -> dict[str, Any]:
    """``model=models:/NAME@ALIAS`` is another way to name what ``run=`` names (which takes such URIs too)."""
    if "model" in options:
        if "run" in options:
            raise ConfigError("give run=<run id> or model=models:/NAME@ALIAS, not both")
        model = str(options.pop("model"))
        if not model.startswith("models:/"):
            raise ConfigError(f"model={model}: expected models:/NAME@ALIAS or models:/NAME/VERSION "
                              "(for a run id, use run=)")
        options["run"] = model
    return options


def interruptible() -> None:
    """Ctrl-C (SIGINT) stops the command even where the shell started lab with SIGINT ignored (`lab sweep ... &`
    in a script, nohup): as in the runner, SIGINT means "stop, checkpoint, mark KILLED"."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)


def check_experiment(config: ResolvedConfig) -> None:
    """The experiment a new run (or a grid's or sweep's parent run) goes to, checked before the run exists and
    before any other rank starts: a deleted one is refused. Only rank 0 of a data-parallel run tracks it."""
    from lab.tracking.preflight import check_experiment
    from lab.training.build import experiment_name

    if os.environ.get("RANK", "0") == "0":
        check_experiment(experiment_name(config))
