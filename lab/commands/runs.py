"""``lab runs`` (recent runs, stale ones, ``clean``) and ``lab rerun`` (a logged run's config again, as a new run
linked to it)."""

from __future__ import annotations

import argparse
import json

from lab.commands import common
from lab.commands.common import check_experiment, check_store, print_table
from lab.commands.run import data_parallel, run_data_parallel, run_tracked
from lab.core.errors import ConfigError

MAX_RUNS_LIMIT = 50_000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD: a larger max_results is refused by its stores


def cmd_runs(args: argparse.Namespace) -> int:
    from lab.tracking import runs

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
    print_table([{"id": row.run_id, "plugin": row.plugin, "target": row.target,
                   "status": "STALE" if row.stale_reason else row.status,
                   "step": "-" if row.step is None else f"{row.step:,}", "age": runs.age(row.age_s),
                   "heartbeat": runs.age(row.heartbeat_age_s), "note": row.stale_reason or ""} for row in rows],
                 ("id", "plugin", "target", "status", "step", "age", "heartbeat", "note"))
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    from lab.commands import rerun
    from lab.core.config import parse_overrides

    overrides = parse_overrides(args.overrides)
    check_store(args.run_id)
    config, source = rerun.prepare(common.registry(), args.run_id, overrides)
    check_experiment(config)
    tags = {rerun.SOURCE_TAG: source}
    if data_parallel(config):
        return run_data_parallel(config, ["rerun", args.run_id, *args.overrides], tags)
    return run_tracked(config, None, tags)
