"""The ``lab`` command line.

Exit codes: 0 success, 1 a run failed, 2 bad input (one line on stderr, nothing created),
130 interrupted by Ctrl-C, 143 terminated (the run is checkpointed and marked KILLED in both cases).
Heavy libraries (torch, SB3, mlflow) are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from lab import __version__
from lab.errors import ConfigError, LabError

EXAMPLES = """examples:
  lab run plugin=dqn env=CartPole
  lab run plugin=ppo env=CartPole seed=3 steps=50000 lr=1e-3 device=cpu
  lab run config=my_experiment.yaml seed=1
  lab show plugin=ppo env=LunarLander
  lab eval run=<run id> episodes=20
  lab sample run=<run id> n=64 out=samples.png
  lab sample run=<run id> prompt="def " n=400
  lab play run=<run id> episodes=3 out=play.mp4
  lab promote run=<run id> name=cartpole-dqn alias=champion
  lab eval model=models:/cartpole-dqn@champion episodes=20
  lab rerun <run id>
  lab play env=Snake policy=random out=random.gif
  lab plugins --json
  lab envs
  lab data
  lab runs --stale
  lab store --uri
  lab ui
"""


_plugins_dir: str | None = None  # --plugins-dir of this invocation
MAX_RUNS_LIMIT = 50_000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD: a larger max_results is refused by its stores


def main(argv: Sequence[str] | None = None) -> int:
    global _plugins_dir
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _plugins_dir = args.plugins_dir
    try:
        return args.handler(args)
    except LabError as e:
        print(f"lab: error: {e}", file=sys.stderr)
        return e.exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lab", description="Train RL agents and generative models from plugins; every run tracked in MLflow.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lab {__version__}")
    parser.add_argument("--plugins-dir", metavar="DIR", default=None,
                        help="also load every *.py file in DIR as a plugin (default: $LAB_PLUGINS_DIR)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="train a plugin (key=value overrides, config=FILE.yaml)")
    run.add_argument("overrides", nargs="*", metavar="key=value")
    run.set_defaults(handler=cmd_run)

    show = commands.add_parser("show", help="print the resolved config: every key, value, type, source, doc")
    show.add_argument("overrides", nargs="*", metavar="key=value")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_show)

    plugins = commands.add_parser("plugins", help="list installed plugins (broken ones with their error); "
                                                  "`lab plugins check NAME [env=|data=...]` runs the conformance kit")
    plugins.add_argument("action", nargs="?", choices=["check"], help="check: run the conformance checks on NAME")
    plugins.add_argument("name", nargs="?", help="the plugin to check")
    plugins.add_argument("overrides", nargs="*", metavar="key=value", help="target and keys for the check runs")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=cmd_plugins)

    envs = commands.add_parser("envs", help="list envs: id, aliases, family, source package, spaces, threshold, "
                                           "agents that fit")
    envs.add_argument("--json", action="store_true", help="machine-readable output")
    envs.set_defaults(handler=cmd_envs)

    data = commands.add_parser("data", help="list datasets: name, task, shape, classes, size")
    data.add_argument("--json", action="store_true", help="machine-readable output")
    data.set_defaults(handler=cmd_data)

    evaluate = commands.add_parser("eval", help="evaluate a run's best model: run=ID [episodes=N] [device=D]")
    evaluate.add_argument("overrides", nargs="*", metavar="key=value")
    evaluate.set_defaults(handler=cmd_eval)

    sample = commands.add_parser("sample", help="draw from a logged generator or language model: run=ID [n=N] "
                                                "[seed=0] [out=samples.png|.npy|.txt] [prompt=TEXT] "
                                                "[temperature=0.8] [plugin keys, e.g. inference_steps=20]")
    sample.add_argument("overrides", nargs="*", metavar="key=value")
    sample.set_defaults(handler=cmd_sample)

    play = commands.add_parser("play", help="watch an agent play: run=ID | env=NAME policy=random; [episodes=1] "
                                           "[seed=0] [out=play.gif|.mp4] [device=D]")
    play.add_argument("overrides", nargs="*", metavar="key=value")
    play.set_defaults(handler=cmd_play)

    promote = commands.add_parser("promote", help="register a run's model in the MLflow registry: run=ID name=NAME "
                                                  "[alias=ALIAS]; then models:/NAME@ALIAS works in eval, play, "
                                                  "sample and mlflow.pyfunc.load_model")
    promote.add_argument("overrides", nargs="*", metavar="key=value")
    promote.set_defaults(handler=cmd_promote)

    rerun = commands.add_parser("rerun", help="run a logged run's config again as a new run linked to it "
                                              "(refused if the plugin or lab version differs, unless force=true)")
    rerun.add_argument("run_id", help="the run to repeat")
    rerun.add_argument("overrides", nargs="*", metavar="key=value", help="force=true, device=, threads=, progress=")
    rerun.set_defaults(handler=cmd_rerun)

    sweep = commands.add_parser("sweep", help="Optuna search: key=loguniform(a,b)|uniform(a,b)|int(a,b)|"
                                              "choice(a,b,..) trials=N seeds=K workers=W [sampler=tpe|random] "
                                              "[pruner=median|none] [study=NAME]; re-run to continue")
    sweep.add_argument("overrides", nargs="*", metavar="key=value")
    sweep.set_defaults(handler=cmd_sweep)

    runs = commands.add_parser("runs", help="recent runs: id, plugin, target, status, step, age; --stale for "
                                            "RUNNING runs whose process is gone; `lab runs clean` marks those FAILED")
    runs.add_argument("action", nargs="?", choices=["clean"], help="clean: mark stale runs FAILED")
    runs.add_argument("--stale", action="store_true", help="only RUNNING runs whose process is gone")
    runs.add_argument("--limit", type=int, default=20, help="how many recent runs to look at (default 20)")
    runs.add_argument("--stale-after", type=float, default=600, metavar="SECONDS",
                      help="a heartbeat older than this marks a run stale (default 600)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler=cmd_runs)

    new = commands.add_parser("new", help="scaffold a plugin package: lab new plugin NAME --kind KIND")
    new.add_argument("what", choices=["plugin"], help="what to create")
    new.add_argument("name", help="the package (distribution) name, e.g. lab-reinforce")
    new.add_argument("--kind", required=True, choices=["agent", "backbone", "generator", "env", "callback"])
    new.add_argument("--dir", default=".", help="folder to create the package in (default: here)")
    new.set_defaults(handler=cmd_new)

    store = commands.add_parser("store", help="where runs are stored: the tracking URI and the artifact folder "
                                              "(--uri: the URI alone, e.g. for MLFLOW_TRACKING_URI)")
    store.add_argument("--uri", action="store_true", help="print only the tracking URI")
    store.set_defaults(handler=cmd_store)

    ui = commands.add_parser("ui", help="open the MLflow UI on the tracking store")
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1",
                    help="interface to bind (default: loopback only); any other needs a login (user admin, a "
                         "generated password shown once) unless --insecure")
    ui.add_argument("--allowed-hosts", metavar="HOSTS", default=None,
                    help="comma-separated Host headers to accept (MLflow's --allowed-hosts; beyond loopback the "
                         "default is the bound address and localhost, with the port)")
    ui.add_argument("--insecure", action="store_true",
                    help="beyond loopback, serve without authentication: anyone who can reach the port can change "
                         "your runs")
    ui.add_argument("--reset-password", action="store_true",
                    help="give the admin user a new generated password (shown once)")
    ui.set_defaults(handler=cmd_ui)
    return parser


# ---------------------------------------------------------------------------------------------- helpers


def _registry() -> Any:
    from pathlib import Path

    from lab.registry import load_registry, make_plugin_manager

    registry = load_registry(make_plugin_manager(plugins_dir=Path(_plugins_dir) if _plugins_dir else None))
    for problem in registry.problems:
        print(f"lab: warning: {problem}", file=sys.stderr)
    return registry


def _resolve(overrides: Sequence[str], cli: dict[str, Any] | None = None) -> Any:
    """The resolved config of ``key=value`` arguments (``cli``: the same, already parsed)."""
    from lab.config import load_config_file, parse_overrides, resolve

    cli = dict(cli) if cli is not None else parse_overrides(overrides)
    config_file = cli.pop("config", None)
    file = load_config_file(str(config_file)) if config_file is not None else None
    return resolve(_registry(), cli, file)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output: wide enough that tables never fold keys and values (rich assumes 80 columns).
    width = None if stream.isatty() else 200
    return Console(file=stream, highlight=False, soft_wrap=True, width=width)


# ---------------------------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    import tempfile
    from pathlib import Path

    from lab.config import Sweep, parse_overrides

    cli = parse_overrides(args.overrides, sweeps=True)
    if any(isinstance(value, Sweep) for value in cli.values()) or "workers" in cli:
        return _run_several(args.overrides, cli)
    if "trust" in cli:  # the key of lab before 0.3, which loaded pickled checkpoints when trusted
        raise ConfigError("trust=: lab loads no pickled file, trusted or not, and a lab checkpoint needs none; "
                          "drop trust=")
    if "resume" not in cli:
        config = _resolve(args.overrides, cli)
        _check_experiment(config)
        if _data_parallel(config):
            return _run_data_parallel(config, ["run", *args.overrides])
        return _run(config, None)
    from lab import preflight, resume

    target = str(cli["resume"])
    if not Path(target).is_dir() and "/" not in target and not target.startswith("."):
        preflight.check_run_exists(target)  # a run id: none without a store, and asking would create one
    _check_writable()  # the run is recorded into: refused before anything of it is read
    with tempfile.TemporaryDirectory(prefix="lab-resume-") as workdir:
        config, point = resume.prepare(_registry(), cli, Path(workdir))
        if point.run_id is None:  # a new run from a checkpoint folder (a resumed run stays in its experiment)
            _check_experiment(config)
        if _data_parallel(config):
            raise ConfigError(f"nproc={config.runner.nproc}: resume= continues in one process; add nproc=1 (the "
                              "global batch, and so the training, stays the same)")
        return _run(config, point)


def _data_parallel(config: Any) -> bool:
    from lab import distributed

    distributed.check(config.plugin, config.params, config.runner.nproc)
    return config.runner.nproc > 1 or distributed.launched_size() > 1


def _run_data_parallel(config: Any, command: Sequence[str], tags: dict[str, str] | None = None) -> int:
    """``nproc=N`` (or a torchrun launch): this process is rank 0 and tracks the run; the others follow it.
    ``command``: this command line (``run ...``), which the other ranks are started with."""
    from lab import distributed, runner

    if distributed.launched_size() > 1:  # started by torchrun (or by our own rank 0)
        if os.environ.get("RANK", "0") != "0":
            return runner.follow(config)
        return _run(config, None, tags)
    with distributed.group(config.runner.nproc, command, _plugins_dir):
        return _run(config, None, tags)


def _check_writable() -> None:
    """A command that records something: refuse a read-only, empty or corrupt store in one line, up front."""
    from lab.tracking import check_store

    check_store(write=True)


def _run_several(overrides: Sequence[str], cli: dict[str, Any]) -> int:
    """``key=a,b,c`` (or ``range()``): one child run per combination under a parent run, with statistics."""
    _check_writable()
    from lab import experiments
    from lab.config import Sweep

    _interruptible()
    workers = experiments.check_workers(cli.pop("workers", 1))
    swept = [key for key, value in cli.items() if isinstance(value, Sweep)]
    if not swept:
        raise ConfigError("workers= applies to several runs at once, e.g. seed=0,1,2,3,4 workers=2")
    for key in ("resume", "config", "run_name"):
        if key in cli:
            raise ConfigError(f"{key}= does not go with several values of {', '.join(swept)} "
                              "(start the runs one by one)")
    config = experiments.check_children(_registry(), cli, None)
    _check_experiment(config)
    fixed_args = [arg for arg in overrides if arg.split("=", 1)[0].strip() not in (*swept, "workers")]
    children = experiments.expand(cli, fixed_args)
    console = _console()
    try:
        result = experiments.run_grid(config, children, workers, _plugins_dir, echo=console.print)
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


def _check_experiment(config: Any) -> None:
    """The experiment a new run (or a grid's or sweep's parent run) goes to, checked before the run exists and
    before any other rank starts: a deleted one is refused. Only rank 0 of a data-parallel run tracks it."""
    from lab.preflight import check_experiment
    from lab.runner import experiment_name

    if os.environ.get("RANK", "0") == "0":
        check_experiment(experiment_name(config))


def _run(config: Any, point: Any, tags: dict[str, str] | None = None) -> int:
    from lab import runner

    _check_writable()  # before anything is created
    console = _console()
    what = f"resuming run {point.run_id} at step {point.step:,}" if point and point.run_id else (
        f"from checkpoint {point.checkpoint} (step {point.step:,})" if point else f"preset: {config.preset or 'none'}")
    console.print(f"[bold]lab run[/] {config.plugin.name} on {config.target} "
                  f"({what}, seed {config.runner.seed}, budget {config.runner.steps:,})")
    try:
        result = runner.run(config, point, tags=tags)
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
        from lab.tracking_worker import TrackingError

        if not isinstance(e, TrackingError):  # the store's error is all there is to say: no traceback of lab's
            import traceback

            traceback.print_exc()
        # Only what is true of the run: marked FAILED, left RUNNING (a full disk), or none was recorded.
        note = getattr(e, "lab_note", None) or "no run was recorded"
        print(f"lab: run failed: {type(e).__name__}: {e} ({note})", file=sys.stderr)
        return 1
    _print_summary(console, result)
    return 0


def _killed(stop: BaseException) -> str:
    if getattr(stop, "lab_marked", True):
        return "run marked KILLED"
    return ("the run could not be marked KILLED (the store cannot be written): it stays RUNNING until `lab runs "
            "clean` marks it FAILED, once the store can be written again")


def _print_summary(console: Any, result: Any) -> None:
    from lab.tracking import tracking_uri

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


def _budget_note(result: Any) -> str:
    """Why the steps done differ from the budget, so the two numbers never disagree silently."""
    if result.stop_reason:
        return f" ({result.stop_reason}; budget {result.budget:,})"
    if result.steps > result.budget:
        return f" (budget {result.budget:,}: its last rollout or batch ran past it)"
    return ""


def cmd_show(args: argparse.Namespace) -> int:
    config = _resolve(args.overrides)
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
    console = _console()
    console.print(f"[bold]{config.plugin.name}[/] ({config.plugin.spec.kind}, {config.plugin.package} "
                  f"{config.plugin.version}) on {config.target}")
    console.print(f"preset: {config.preset or 'none'}" + (f" — {preset.source}" if preset and preset.source else ""))
    table = Table(show_lines=False)
    for column in ("key", "value", "type", "source", "doc"):
        table.add_column(column, overflow="fold")
    for field in config.fields:
        table.add_row(*(escape(cell) for cell in (field.key, _show_value(field.value), field.type, field.source,
                                                  field.doc)))
    console.print(table)
    return 0


def _show_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.action == "check":
        return _check_plugin(args)
    if args.name:
        raise ConfigError(f"unexpected {args.name!r}: use `lab plugins` or `lab plugins check NAME`")
    registry = _registry()
    rows = []
    for info in sorted(registry.plugins.values(), key=lambda i: (i.spec.kind, i.name)):
        problem = info.factory_problem()  # found without importing it: listing stays fast
        rows.append({"name": info.name, "kind": info.spec.kind, "package": info.package, "version": info.version,
                     "description": info.spec.description, "status": "broken" if problem else "ok",
                     "error": problem})
    # Plugin modules that add envs, datasets or lifecycle hooks but no model plugin are listed by module name.
    rows += [{"name": module.name, "kind": module.kind, "package": module.package, "version": module.version,
              "description": module.summary(), "status": "ok", "error": None}
             for module in registry.modules.values() if not module.plugins]
    rows += [{"name": broken.name, "kind": "-", "package": broken.package, "version": broken.version,
              "description": "", "status": "broken", "error": broken.error} for broken in registry.broken.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_table([{**row, "description": f"BROKEN: {row['error']}" if row["error"] else row["description"]}
                  for row in rows], ("name", "kind", "package", "version", "description"))
    return 0


def _check_plugin(args: argparse.Namespace) -> int:
    from lab.config import parse_overrides
    from lab.testing import run_checks

    if not args.name:
        raise ConfigError("missing plugin name: lab plugins check NAME [env=...|data=...] [key=value ...]")
    report = run_checks(_registry(), args.name, parse_overrides(args.overrides))
    if args.json:
        print(json.dumps([vars(check) for check in report], indent=2))
    else:
        for check in report:
            mark = "PASS" if check.passed else "FAIL"
            print(f"{mark}  {check.name:<22} {check.detail}")
        passed = sum(check.passed for check in report)
        print(f"{passed}/{len(report)} checks passed for plugin {args.name!r}")
    return 0 if all(check.passed for check in report) else 1


def cmd_envs(args: argparse.Namespace) -> int:
    from lab.play import env_rows

    registry = _registry()
    rows = env_rows(registry)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0

    def threshold(row: dict[str, Any]) -> str:
        return "-" if row["reward_threshold"] is None else f"{row['reward_threshold']:g}"

    _print_table([{**row, "aliases": ", ".join(row["aliases"]) or "-", "threshold": threshold(row),
                   "observation": row["observation"] or f"unavailable: {row['error']}",
                   "action": row["action"] or "-", "agents": ", ".join(row["agents"]) or "-"} for row in rows],
                 ("id", "aliases", "family", "source", "observation", "action", "threshold", "agents"))
    print("env= also takes any other gymnasium id, e.g. ALE/Tetris-v5 or Taxi-v4.")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from lab.config import parse_overrides
    from lab.play import play

    options = _model_as_run(parse_overrides(args.overrides))
    if "run" in options:
        _check_store(options["run"])
    result = play(_registry(), options)
    for number, episode in enumerate(result.episodes, 1):
        print(f"episode {number}: return {episode.total_reward:.2f}, length {episode.length} steps")
    if len(result.episodes) > 1:
        returns = [episode.total_reward for episode in result.episodes]
        print(f"mean return {sum(returns) / len(returns):.2f} over {len(returns)} episodes")
    print(f"wrote {result.frames} frames of {result.player} to {result.out}")
    return 0


def _check_store(run: Any) -> None:
    """A run id or model URI names nothing where there is no store yet: refused before asking creates one."""
    from lab.preflight import check_run_exists

    check_run_exists(str(run))


def _model_as_run(options: dict[str, Any]) -> dict[str, Any]:
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


def cmd_promote(args: argparse.Namespace) -> int:
    from lab.config import parse_overrides
    from lab.models import promote

    options = parse_overrides(args.overrides)
    _check_writable()
    valid = ("run", "name", "alias")
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} for lab promote; valid keys: {', '.join(valid)}")
    for key in ("run", "name"):
        if key not in options:
            raise ConfigError(f"missing {key}=: lab promote run=<run id> name=NAME [alias=ALIAS]")
    alias = options.get("alias")
    print(promote(str(options["run"]), str(options["name"]), None if alias is None else str(alias)))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from lab import rerun
    from lab.config import parse_overrides

    overrides = parse_overrides(args.overrides)
    _check_store(args.run_id)
    config, source = rerun.prepare(_registry(), args.run_id, overrides)
    _check_experiment(config)
    tags = {rerun.SOURCE_TAG: source}
    if _data_parallel(config):
        return _run_data_parallel(config, ["rerun", args.run_id, *args.overrides], tags)
    return _run(config, None, tags)


def cmd_data(args: argparse.Namespace) -> int:
    registry = _registry()
    rows = [{"name": spec.name, "task": spec.task, "shape": list(spec.shape), "classes": spec.classes,
             "size": spec.size, "package": package, "version": version, "description": spec.description}
            for spec, package, version in sorted(registry.datasets.values(), key=lambda entry: entry[0].name)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    _print_table([{**row, "shape": "x".join(map(str, row["shape"])), "classes": str(row["classes"] or "-"),
                   "size": f"{row['size']:,}" if row["size"] else "-"} for row in rows],
                 ("name", "task", "shape", "classes", "size", "package", "description"))
    return 0


def _print_table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(str(row[column])) for column in columns))
    _console().print(table)


def cmd_eval(args: argparse.Namespace) -> int:
    from lab.config import parse_overrides
    from lab.evaluate import evaluate_run

    options = _model_as_run(parse_overrides(args.overrides))
    valid = {"run", "episodes", "device", "seed"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} for lab eval; valid keys: {', '.join(sorted(valid))}")
    if "run" not in options:
        raise ConfigError("missing run=<run id> or model=models:/NAME@ALIAS: the model to evaluate (see `lab runs`)")
    _check_store(options["run"])
    result = evaluate_run(_registry(), options)
    # The score and the logged best in the same format, so that equal values read equal.
    number = "{:.2f}" if result["kind"] == "agent" else "{:.4g}"
    best = "none" if result["logged_best"] is None else number.format(result["logged_best"])
    where = f"run {result['run_id']}, {result['model']} model; logged best: {best}"
    if result["kind"] == "agent":
        print(f"{result['score_key']}: {number.format(result['mean'])} +- {result['std']:.2f} over "
              f"{result['episodes']} episodes ({where})")
    else:  # episodes do not apply: the score is measured on the validation split
        print(f"{result['score_key']}: {number.format(result['mean'])} on the validation split ({where})")
    if result["test"]:
        print("test: " + ", ".join(f"{key} {value:.4f}" for key, value in result["test"].items()))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from lab.config import RUNNER_KEYS, check_unique_keys, parse_overrides
    from lab.evaluate import SAMPLE_KEYS, sample_run

    check_unique_keys(args.overrides)  # prompt= too, which the grammar does not parse
    # A prompt is free text, taken as the shell passed it: the override grammar would strip its trailing space
    # ("def ") and read commas, quotes and brackets as syntax.
    prompts = [arg.partition("=")[2] for arg in args.overrides if arg.partition("=")[0].strip() == "prompt"]
    options = _model_as_run(parse_overrides([a for a in args.overrides if a.partition("=")[0].strip() != "prompt"]))
    if prompts:
        prompt = prompts[-1]
        quoted = len(prompt) >= 2 and prompt[0] == prompt[-1] and prompt[0] in "'\""
        options["prompt"] = prompt[1:-1] if quoted else prompt  # prompt="'def '" quotes it for the grammar
    misplaced = sorted(key for key in options if key in RUNNER_KEYS and key not in SAMPLE_KEYS)
    if misplaced:  # other keys may be the run's plugin keys, checked against its config once it is loaded
        raise ConfigError(f"{misplaced[0]}= does not apply to lab sample; valid keys: {', '.join(SAMPLE_KEYS)}, "
                          "or a key of the run's plugin (e.g. inference_steps=20)")
    if "run" not in options:
        raise ConfigError("missing run=<run id> or model=models:/NAME@ALIAS: the model to sample from "
                          "(see `lab runs`)")
    _check_store(options["run"])
    print(sample_run(_registry(), options))
    return 0


def _interruptible() -> None:
    """Ctrl-C (SIGINT) stops the command even where the shell started lab with SIGINT ignored (`lab sweep ... &`
    in a script, nohup): as in the runner, SIGINT means "stop, checkpoint, mark KILLED"."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)


def cmd_sweep(args: argparse.Namespace) -> int:
    from lab import sweeps

    _interruptible()
    _check_writable()
    plan = sweeps.parse(_registry(), args.overrides)
    _check_experiment(plan.config)
    console = _console()
    console.print(f"[bold]lab sweep[/] {plan.config.plugin.name} on {plan.config.target}: "
                  f"{', '.join(f'{k}={s.kind}{s.args}' for k, s in plan.space.items())}; {plan.trials} trials x "
                  f"{plan.seeds} seed(s), {plan.workers} at a time")
    try:
        summary = sweeps.run_sweep(plan, _plugins_dir, echo=console.print)
    except KeyboardInterrupt:
        print("lab: interrupted: running trials stopped; run the same command again to continue the study",
              file=sys.stderr)
        return 130
    console.print(f"\n[bold]{summary['done']}/{summary['trials']} trials done[/] ({summary['complete']} complete, "
                  f"{summary['pruned']} pruned, {summary['failed']} failed); parent run {summary['parent_run_id']}")
    if "best_params" in summary:
        values = " ".join(f"{k}={v}" for k, v in summary["best_params"].items())
        console.print(f"  best: trial {summary['best_trial']}, {summary['best_value']:.4g} with {values}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from lab import runs

    if not 1 <= args.limit <= MAX_RUNS_LIMIT:
        raise ConfigError(f"--limit {args.limit}: expected an integer >= 1 and <= {MAX_RUNS_LIMIT} (the most runs "
                          "MLflow returns from one search)")
    if args.stale_after <= 0:
        raise ConfigError(f"--stale-after {args.stale_after}: expected a number of seconds > 0")
    rows = runs.list_runs(args.limit, args.stale_after)
    if args.action == "clean":
        cleaned = runs.clean(rows)
        for row in cleaned:
            print(f"marked {row.run_id} ({row.plugin} on {row.target}) FAILED: {row.stale_reason}")
        print(f"{len(cleaned)} stale run(s) marked FAILED")
        return 0
    if args.stale:
        rows = [row for row in rows if row.stale_reason]
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
        return 0
    _print_table([{"id": row.run_id, "plugin": row.plugin, "target": row.target,
                   "status": "STALE" if row.stale_reason else row.status,
                   "step": "-" if row.step is None else f"{row.step:,}", "age": runs.age(row.age_s),
                   "heartbeat": runs.age(row.heartbeat_age_s), "note": row.stale_reason or ""} for row in rows],
                 ("id", "plugin", "target", "status", "step", "age", "heartbeat", "note"))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lab.scaffold import new_plugin

    folder, files = new_plugin(args.name, args.kind, Path(args.dir))
    print(f"created {args.kind} plugin package {folder}/ ({len(files)} files):")
    for path in files:
        print(f"  {path}")
    print(f"next: cd {folder} && pip install -e '.[test]' && python -m pytest")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    """Plain mlflow (``mlflow.pyfunc.load_model``, ``mlflow ui``) uses its own default store unless told lab's:
    ``MLFLOW_TRACKING_URI=$(lab store --uri)``."""
    from lab.tracking import default_artifact_root, tracking_uri

    if args.uri:
        print(tracking_uri())
        return 0
    source = "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI") else "lab's default, ./mlflow/"
    print(f"tracking URI: {tracking_uri()} ({source})")
    print(f"artifacts:    {default_artifact_root() or 'kept by the tracking server'}")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from lab.ui import serve

    serve(args.host, args.port, args.allowed_hosts, args.insecure, args.reset_password)


if __name__ == "__main__":
    sys.exit(main())

