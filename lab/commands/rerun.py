"""``lab rerun <run id>``: a logged run's config again, as a new run tagged with the run it repeats.

The config is the run's ``config.yaml`` (every resolved key, seed included), so on the same machine kind the new
run reproduces the old one. What could make it differ is refused up front, with the differences listed: another
version of the plugin's package or of lab, or keys the installed plugin has gained or lost. ``force=true``
reruns anyway. Only how the run executes may be given (``device``, ``threads``, ``progress``, ``nproc``).
"""

from __future__ import annotations

import tempfile
from typing import Any

from lab import __version__
from lab.core.config import resolve
from lab.core.errors import ConfigError
from lab.core.registry import Registry

SOURCE_TAG = "lab.rerun_of"
EXECUTION_KEYS = ("device", "threads", "progress", "nproc")


def prepare(registry: Registry, run_id: str, options: dict[str, Any]) -> tuple[Any, str]:
    """The resolved config to run again, and the source run id."""
    from lab.tracking.runs import find_run, logged_config
    from lab.tracking.tracker import client

    force = options.pop("force", False)
    if not isinstance(force, bool):
        raise ConfigError(f"force={force}: expected true or false")
    other = sorted(set(options) - set(EXECUTION_KEYS))
    if other:
        raise ConfigError(f"{other[0]}=: lab rerun repeats the logged config; only {', '.join(EXECUTION_KEYS)} "
                          "and force may be given (for other values, use lab run)")
    mlflow_client = client()
    run = find_run(mlflow_client, run_id)
    with tempfile.TemporaryDirectory(prefix="lab-rerun-") as tmp:
        logged = logged_config(mlflow_client, run_id, tmp)
    config = resolve(registry, {**logged, "run_name": None, **options})
    differences = _differences(run.data.tags, logged, config)
    if differences and not force:
        raise ConfigError(f"run {run_id} may not reproduce: {'; '.join(differences)}; add force=true to rerun anyway")
    return config, run_id


def _differences(tags: dict[str, str], logged: dict[str, Any], config: Any) -> list[str]:
    """What differs between the logged run and what is installed now."""
    plugin = config.plugin
    differences = []
    before = (tags.get("lab.plugin.package"), tags.get("lab.plugin.version"))
    if before != (plugin.package, plugin.version):
        differences.append(f"plugin {plugin.name!r} was {before[0]} {before[1]}, installed is {plugin.package} "
                           f"{plugin.version}")
    if tags.get("lab.version") != __version__:
        differences.append(f"lab was {tags.get('lab.version')}, installed is {__version__}")
    new_keys = sorted(set(config.as_dict()) - set(logged))
    if new_keys:
        differences.append(f"keys not in the logged config (their defaults apply): {', '.join(new_keys)}")
    return differences
