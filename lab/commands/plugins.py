"""``lab plugins`` (every plugin, broken ones with their error), ``lab plugins check`` (the conformance kit),
``lab data`` (datasets) and ``lab new plugin`` (a package that already trains and passes its tests)."""

from __future__ import annotations

import argparse
import json

from lab.commands import common
from lab.commands.common import print_table
from lab.core.errors import ConfigError


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.action == "check":
        return _check_plugin(args)
    if args.name:
        raise ConfigError(f"unexpected {args.name!r}: use `lab plugins` or `lab plugins check NAME`")
    registry = common.registry()
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
    print_table([{**row, "description": f"BROKEN: {row['error']}" if row["error"] else row["description"]}
                  for row in rows], ("name", "kind", "package", "version", "description"))
    return 0


def _check_plugin(args: argparse.Namespace) -> int:
    from lab.core.config import parse_overrides
    from lab.testing import run_checks

    if not args.name:
        raise ConfigError("missing plugin name: lab plugins check NAME [env=...|data=...] [key=value ...]")
    report = run_checks(common.registry(), args.name, parse_overrides(args.overrides))
    if args.json:
        print(json.dumps([vars(check) for check in report], indent=2))
    else:
        for check in report:
            mark = "PASS" if check.passed else "FAIL"
            print(f"{mark}  {check.name:<22} {check.detail}")
        passed = sum(check.passed for check in report)
        print(f"{passed}/{len(report)} checks passed for plugin {args.name!r}")
    return 0 if all(check.passed for check in report) else 1


def cmd_data(args: argparse.Namespace) -> int:
    registry = common.registry()
    rows = []
    for dataset in sorted(registry.datasets.values(), key=lambda dataset: dataset.spec.name):
        spec = dataset.spec
        rows.append({"name": spec.name, "task": spec.task, "shape": list(spec.shape), "classes": spec.classes,
                     "size": spec.size, "package": dataset.package, "version": dataset.version,
                     "description": spec.description})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print_table([{**row, "shape": "x".join(map(str, row["shape"])), "classes": str(row["classes"] or "-"),
                   "size": f"{row['size']:,}" if row["size"] else "-"} for row in rows],
                 ("name", "task", "shape", "classes", "size", "package", "description"))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from lab.commands.new import new_plugin

    folder, files = new_plugin(args.name, args.kind, Path(args.dir))
    print(f"created {args.kind} plugin package {folder}/ ({len(files)} files):")
    for path in files:
        print(f"  {path}")
    print(f"next: cd {folder} && pip install -e '.[test]' && python -m pytest")
    return 0
