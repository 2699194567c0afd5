"""``lab run`` and ``lab show``: train one config (on one process, or data-parallel on several), several at once
(``key=a,b,c``: one child run each, under a parent run), resume one; print a resolved config."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lab.commands import common
from lab.commands.common import check_experiment, check_writable, interruptible, resolve_args
from lab.core.config import ResolvedConfig
from lab.core.errors import ConfigError, LabError
from lab.core.text import plain
from lab.tracking.worker import RemoteTracker
from lab.training.checkpoints import ResumePoint

if TYPE_CHECKING:
    from rich.console import Console

    from lab.training.runner import RunResult


def cmd_run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from lab.core.config import Sweep, parse_overrides

    cli = parse_overrides(args.overrides, sweeps=True)
    if any(isinstance(value, Sweep) for value in cli.values()) or "workers" in cli:
        return _run_several(args.overrides, cli)
    if "trust" in cli:  # the key of lab before 0.3, which loaded pickled checkpoints when trusted
        raise ConfigError("trust=: lab loads no pickled file, trusted or not, and a lab checkpoint needs none; "
                          "drop trust=")
    if "resume" not in cli:
        config = resolve_args(cli)
        check_experiment(config)
        if data_parallel(config):
            return run_data_parallel(config, ["run", *args.overrides])
        return run_tracked(config, None)
    from lab.commands import resume
    from lab.tracking import preflight

    target = str(cli["resume"])
    if not Path(target).is_dir() and "/" not in target and not target.startswith("."):
        preflight.check_run_exists(target)  # a run id: none without a store, and asking would create one
    check_writable()  # the run is recorded into: refused before anything of it is read
    with tempfile.TemporaryDirectory(prefix="lab-resume-") as workdir:
        config, point = resume.prepare(common.registry(), cli, Path(workdir))
        if point.run_id is None:  # a new run from a checkpoint folder (a resumed run stays in its experiment)
            check_experiment(config)
        if data_parallel(config):
            raise ConfigError(f"nproc={config.runner.nproc}: resume= continues in one process; add nproc=1 (the "
                              "global batch, and so the training, stays the same)")
        return run_tracked(config, point)


def data_parallel(config: ResolvedConfig) -> bool:
    from lab.training import distributed

    distributed.check(config.plugin, config.params, config.runner.nproc)
    return config.runner.nproc > 1 or distributed.launched_size() > 1


def run_data_parallel(config: ResolvedConfig, command: Sequence[str], tags: dict[str, str] | None = None) -> int:
    """``nproc=N`` (or a torchrun launch): this process is rank 0 and tracks the run; the others follow it.
    ``command``: this command line (``run ...``), which the other ranks are started with."""
    from lab.training import distributed, runner

    if distributed.launched_size() > 1:  # started by torchrun (or by our own rank 0)
        if os.environ.get("RANK", "0") != "0":
            return runner.follow(config)
        return run_tracked(config, None, tags)
    with distributed.group(config.runner.nproc, command, common.plugins_dir):
        return run_tracked(config, None, tags)


def _run_several(overrides: Sequence[str], cli: dict[str, Any]) -> int:
    """``key=a,b,c`` (or ``range()``): one child run per combination under a parent run, with statistics."""
    check_writable()
    from lab.commands import seeds as experiments
    from lab.core.config import Sweep

    interruptible()
    options, cli = experiments.grid_options(cli)
    workers = options.workers
    swept = [key for key, value in cli.items() if isinstance(value, Sweep)]
    if not swept:
        raise ConfigError("workers= applies to several runs at once, e.g. seed=0,1,2,3,4 workers=2")
    for key in ("resume", "config", "run_name"):
        if key in cli:
            raise ConfigError(f"{key}= does not go with several values of {', '.join(swept)} "
                              "(start the runs one by one)")
    config = experiments.check_children(common.registry(), cli, None)
    check_experiment(config)
    fixed_args = [arg for arg in overrides if arg.split("=", 1)[0].strip() not in (*swept, "workers")]
    children = experiments.expand(cli, fixed_args)
    console = common.console()
    try:
        result = experiments.run_grid(config, children, workers, common.plugins_dir, echo=console.print)
    except KeyboardInterrupt:
        print("lab: interrupted: child runs checkpointed and marked KILLED, parent run KILLED", file=sys.stderr)
        return 130
    aggregates = result.aggregates
    console.print(f"\n[bold]{len(children) - len(result.failed)}/{len(children)} runs finished[/] "
                  f"(parent run {result.parent_run_id})")
    for key in sorted(k for k in aggregates if k.endswith(("final_mean", "final_iqm", "solved_fraction"))):
        console.print(f"  {key}: {aggregates[key]:.4g}")
    for key in sorted(k for k in aggregates if k.endswith("final_mean_ci_low")):
        stem = key.removesuffix("_ci_low")
        console.print(f"  {stem} 95% CI: [{aggregates[key]:.4g}, {aggregates[stem + '_ci_high']:.4g}]")
    return 0 if not result.failed else 1


def run_tracked(config: ResolvedConfig, point: ResumePoint | None, tags: dict[str, str] | None = None) -> int:
    """Train ``config`` in a tracked run. A child run (of several at once, or of a sweep) is told by its parent,
    through the environment, the run to nest under, its trial, and where to write its outcome when it ends."""
    from lab.commands.children import RunOutcome, parent_tags, report_outcome
    from lab.commands.sweep import reporter_from_environment, trial_tags
    from lab.training import runner

    check_writable()  # before anything is created
    console = common.console()
    what = f"resuming run {point.run_id} at step {point.step:,}" if point and point.run_id else (
        f"from checkpoint {point.checkpoint} (step {point.step:,})" if point else f"preset: {config.preset or 'none'}")
    console.print(f"[bold]lab run[/] {config.plugin.name} on {config.target} "
                  f"({what}, seed {config.runner.seed}, budget {config.runner.steps:,})")
    tags = {**parent_tags(), **trial_tags(), **(tags or {})}
    try:
        reporter = reporter_from_environment()  # before the tracker, whose process would outlive a failure here
        result = runner.run(config, RemoteTracker(), resume=point, tags=tags, reporter=reporter)
    except KeyboardInterrupt as e:
        print(f"lab: interrupted: {getattr(e, 'lab_note', 'no checkpoint')}, {_killed(e)}", file=sys.stderr)
        return 130
    except runner.Terminated as e:
        print(f"lab: terminated: {getattr(e, 'lab_note', 'no checkpoint')}, {_killed(e)}", file=sys.stderr)
        return 143
    except LabError as e:
        note = getattr(e, "lab_note", None)  # set when a run exists: what became of it
        if note is None:
            raise
        print(f"lab: error: {e} ({note})", file=sys.stderr)
        return e.exit_code
    except Exception as e:
        from lab.core.errors import TrackingError

        if not isinstance(e, TrackingError):  # the store's error is all there is to say: no traceback of lab's
            import traceback

            traceback.print_exc()
        # Only what is true of the run: marked FAILED, left RUNNING (a full disk), or none was recorded.
        note = getattr(e, "lab_note", None) or "no run was recorded"
        print(f"lab: run failed: {type(e).__name__}: {e} ({note})", file=sys.stderr)
        return 1
    report_outcome(RunOutcome(result.run_id, result.status, result.best_score,
                              pruned=reporter is not None and reporter.pruned))
    _print_summary(console, result)
    return 0


def _killed(stop: BaseException) -> str:
    if getattr(stop, "lab_marked", True):
        return "run marked KILLED"
    return ("the run could not be marked KILLED (the store cannot be written): it stays RUNNING until `lab runs "
            "clean` marks it FAILED, once the store can be written again")


def _print_summary(console: Console, result: RunResult) -> None:
    from lab.tracking.tracker import tracking_uri

    best = "no evaluation" if result.best_score is None else (
        f"{result.best_score:.4g} at step {result.best_step:,}")
    solved = ""
    if result.target_score is not None:
        verdict = "solved" if result.solved else "not solved"
        solved = f" — {verdict} (threshold {result.target_score:g})"
    console.print(f"\n[bold]Run {result.run_name}[/] {result.status} in {result.seconds:.1f} s, {result.steps:,} steps"
                  f"{_budget_note(result)}")
    console.print(f"  best {result.score_key}: {best}{solved}")
    if result.test_metrics:
        tested = ", ".join(f"{key} {value:.4g}" for key, value in result.test_metrics.items())
        console.print(f"  test (best model): {tested}")
    console.print(f"  run id:     {result.run_id}")
    console.print(f"  experiment: {result.experiment}")
    console.print(f"  store:      {tracking_uri()}")
    console.print(f"  artifacts:  {result.artifact_uri}")
    console.print(f"  next:       lab eval run={result.run_id}   |   lab ui")


def _budget_note(result: RunResult) -> str:
    """Why the steps done differ from the budget, so the two numbers never disagree silently."""
    if result.stop_reason:
        return f" ({result.stop_reason}; budget {result.budget:,})"
    if result.steps > result.budget:
        return f" (budget {result.budget:,}: its last rollout or batch ran past it)"
    return ""


def cmd_show(args: argparse.Namespace) -> int:
    from lab.core.config import parse_overrides

    config = resolve_args(parse_overrides(args.overrides))
    if args.json:
        payload = {
            "plugin": config.plugin.name, "kind": config.plugin.spec.kind, "package": config.plugin.package,
            "version": config.plugin.version, "target": config.target, "preset": config.preset,
            "keys": [vars(field) for field in config.fields],
        }
        print(json.dumps(payload, indent=2, default=str))
        return 0
    from rich.markup import escape
    from rich.table import Table

    preset = config.plugin.spec.presets(config.target) if config.plugin.spec.presets else None
    console = common.console()
    console.print(f"[bold]{config.plugin.name}[/] ({config.plugin.spec.kind}, {config.plugin.package} "
                  f"{config.plugin.version}) on {config.target}")
    console.print(f"preset: {config.preset or 'none'}" + (f" — {preset.source}" if preset and preset.source else ""))
    table = Table(show_lines=False)
    for column in ("key", "value", "type", "source", "doc"):
        table.add_column(column, overflow="fold")
    for field in config.fields:
        table.add_row(*(escape(cell) for cell in (field.key, plain(field.value), field.type, field.source,
                                                  field.doc)))
    console.print(table)
    return 0
