"""The ``lab`` command line.

Exit codes: 0 success, 1 a run failed, 2 bad input (one line on stderr, nothing created),
130 interrupted by Ctrl-C, 143 terminated (the run is checkpointed and marked KILLED in both cases).
Heavy libraries (torch, SB3, mlflow) are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lab import __version__
from lab.core.errors import LabError
from lab.core.text import import_object

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




def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from lab.commands import common

    common.plugins_dir = args.plugins_dir
    handler: Callable[[argparse.Namespace], int] = import_object(args.handler)  # its module only now: fast --help
    try:
        return handler(args)
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
    run.set_defaults(handler="lab.commands.run:cmd_run")

    show = commands.add_parser("show", help="print the resolved config: every key, value, type, source, doc")
    show.add_argument("overrides", nargs="*", metavar="key=value")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler="lab.commands.run:cmd_show")

    plugins = commands.add_parser("plugins", help="list installed plugins (broken ones with their error); "
                                                  "`lab plugins check NAME [env=|data=...]` runs the conformance kit")
    plugins.add_argument("action", nargs="?", choices=["check"], help="check: run the conformance checks on NAME")
    plugins.add_argument("name", nargs="?", help="the plugin to check")
    plugins.add_argument("overrides", nargs="*", metavar="key=value", help="target and keys for the check runs")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler="lab.commands.plugins:cmd_plugins")

    envs = commands.add_parser("envs", help="list envs: id, aliases, family, source package, spaces, threshold, "
                                           "agents that fit")
    envs.add_argument("--json", action="store_true", help="machine-readable output")
    envs.set_defaults(handler="lab.commands.play:cmd_envs")

    data = commands.add_parser("data", help="list datasets: name, task, shape, classes, size")
    data.add_argument("--json", action="store_true", help="machine-readable output")
    data.set_defaults(handler="lab.commands.plugins:cmd_data")

    evaluate = commands.add_parser("eval", help="evaluate a run's best model: run=ID [episodes=N] [device=D]")
    evaluate.add_argument("overrides", nargs="*", metavar="key=value")
    evaluate.set_defaults(handler="lab.commands.evaluate:cmd_eval")

    sample = commands.add_parser("sample", help="draw from a logged generator or language model: run=ID [n=N] "
                                                "[seed=0] [out=samples.png|.npy|.txt] [prompt=TEXT] "
                                                "[temperature=0.8] [plugin keys, e.g. inference_steps=20]")
    sample.add_argument("overrides", nargs="*", metavar="key=value")
    sample.set_defaults(handler="lab.commands.evaluate:cmd_sample")

    play = commands.add_parser("play", help="watch an agent play: run=ID | env=NAME policy=random; [episodes=1] "
                                           "[seed=0] [out=play.gif|.mp4] [device=D]")
    play.add_argument("overrides", nargs="*", metavar="key=value")
    play.set_defaults(handler="lab.commands.play:cmd_play")

    promote = commands.add_parser("promote", help="register a run's model in the MLflow registry: run=ID name=NAME "
                                                  "[alias=ALIAS]; then models:/NAME@ALIAS works in eval, play, "
                                                  "sample and mlflow.pyfunc.load_model")
    promote.add_argument("overrides", nargs="*", metavar="key=value")
    promote.set_defaults(handler="lab.commands.ui:cmd_promote")

    rerun = commands.add_parser("rerun", help="run a logged run's config again as a new run linked to it "
                                              "(refused if the plugin or lab version differs, unless force=true)")
    rerun.add_argument("run_id", help="the run to repeat")
    rerun.add_argument("overrides", nargs="*", metavar="key=value", help="force=true, device=, threads=, progress=")
    rerun.set_defaults(handler="lab.commands.runs:cmd_rerun")

    sweep = commands.add_parser("sweep", help="Optuna search: key=loguniform(a,b)|uniform(a,b)|int(a,b)|"
                                              "choice(a,b,..) trials=N seeds=K workers=W [sampler=tpe|random] "
                                              "[pruner=median|none] [study=NAME]; re-run to continue")
    sweep.add_argument("overrides", nargs="*", metavar="key=value")
    sweep.set_defaults(handler="lab.commands.sweep:cmd_sweep")

    runs = commands.add_parser("runs", help="recent runs: id, plugin, target, status, step, age; --stale for "
                                            "RUNNING runs whose process is gone; `lab runs clean` marks those FAILED")
    runs.add_argument("action", nargs="?", choices=["clean"], help="clean: mark stale runs FAILED")
    runs.add_argument("--stale", action="store_true", help="only RUNNING runs whose process is gone")
    runs.add_argument("--limit", type=int, default=20, help="how many recent runs to look at (default 20)")
    runs.add_argument("--stale-after", type=float, default=600, metavar="SECONDS",
                      help="a heartbeat older than this marks a run stale (default 600)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler="lab.commands.runs:cmd_runs")

    new = commands.add_parser("new", help="scaffold a plugin package: lab new plugin NAME --kind KIND")
    new.add_argument("what", choices=["plugin"], help="what to create")
    new.add_argument("name", help="the package (distribution) name, e.g. lab-reinforce")
    new.add_argument("--kind", required=True, choices=["agent", "backbone", "generator", "env", "callback"])
    new.add_argument("--dir", default=".", help="folder to create the package in (default: here)")
    new.set_defaults(handler="lab.commands.plugins:cmd_new")

    store = commands.add_parser("store", help="where runs are stored: the tracking URI and the artifact folder "
                                              "(--uri: the URI alone, e.g. for MLFLOW_TRACKING_URI)")
    store.add_argument("--uri", action="store_true", help="print only the tracking URI")
    store.set_defaults(handler="lab.commands.ui:cmd_store")

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
    ui.set_defaults(handler="lab.commands.ui:cmd_ui")
    return parser


# ---------------------------------------------------------------------------------------------- helpers


# ---------------------------------------------------------------------------------------------- commands


if __name__ == "__main__":
    sys.exit(main())
