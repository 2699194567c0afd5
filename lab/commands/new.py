"""``lab new plugin NAME --kind KIND``: a pip-installable plugin package that already trains and passes its tests.

The files come from ``lab/commands/templates/`` (``$name`` placeholders, filled with :class:`string.Template`).
The package is written to a temporary folder and renamed into place, so a failure never leaves half a package
behind.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from lab.core.errors import ConfigError

TEMPLATES = Path(__file__).parent / "templates"
SCAFFOLD_KINDS = ("agent", "backbone", "generator", "env", "callback")
_NAME = re.compile(r"^[a-z][a-z0-9]*([-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class KindTemplate:
    files: dict[str, str]  # path in the package (with placeholders) -> template under lab/commands/templates
    description: str
    usage: str
    target_key: str = ""
    target: str = ""
    tiny: str = "{}"


def _plugin_files(module: str, kind: str) -> dict[str, str]:
    return {"$package/__init__.py": f"{kind}/__init__.py.tmpl", f"$package/{module}.py": f"{kind}/{module}.py.tmpl",
            "tests/test_$package.py": "common/test_plugin.py.tmpl"}


KIND_TEMPLATES: dict[str, KindTemplate] = {
    "agent": KindTemplate(
        _plugin_files("agent", "agent"), "A lab agent: the cross-entropy method on a linear policy.",
        "    lab run plugin=$plugin env=CartPole steps=30000   # then: lab play run=<run id>", "env", "CartPole",
        '{"steps": 2000, "eval_every": 1000, "eval_episodes": 2, "gif": False}'),
    "backbone": KindTemplate(
        _plugin_files("model", "backbone"), "A lab backbone: softmax regression.",
        "    lab run plugin=$plugin data=digits steps=50000", "data", "digits",
        '{"steps": 3000, "eval_every": 1500}'),
    "generator": KindTemplate(
        _plugin_files("model", "generator"), "A lab generator: a diagonal Gaussian.",
        "    lab run plugin=$plugin data=moons steps=20000   # then: lab sample run=<run id> out=samples.png",
        "data", "moons", '{"steps": 2000, "eval_every": 1000}'),
    "env": KindTemplate(
        {"$package/__init__.py": "env/__init__.py.tmpl", "$package/env.py": "env/env.py.tmpl",
         "tests/test_env.py": "env/test_env.py.tmpl"},
        "A lab env: a corridor gymnasium game.",
        "    lab envs                                  # $alias is listed\n"
        "    lab run plugin=ppo env=$alias steps=20000\n    lab play env=$alias policy=random out=corridor.gif"),
    "callback": KindTemplate(
        {"$package/__init__.py": "callback/__init__.py.tmpl",
         "tests/test_callback.py": "callback/test_callback.py.tmpl"},
        "A lab callback: every run's lifecycle as JSON lines.",
        "    lab run plugin=dqn env=CartPole               # writes mlflow/lab-jsonl/<run id>.jsonl"),
}


def names(name: str) -> dict[str, str]:
    """``lab-reinforce`` -> distribution ``lab-reinforce``, import package ``lab_reinforce``, plugin ``reinforce``."""
    if not _NAME.match(name):
        raise ConfigError(f"plugin package name {name!r}: use lowercase letters, digits and single - or _ "
                          "between them, e.g. lab-reinforce")
    plugin = re.sub(r"^lab[-_]", "", name)
    return {"dist": name, "package": name.replace("-", "_"), "plugin": plugin, "alias": plugin.capitalize()}


def new_plugin(name: str, kind: str, parent: Path) -> tuple[Path, list[Path]]:
    """Write the package ``parent/name``; returns its folder and files."""
    if kind not in KIND_TEMPLATES:
        raise ConfigError(f"--kind {kind}: valid kinds are {', '.join(SCAFFOLD_KINDS)}")
    values = names(name)
    if not parent.is_dir():
        raise ConfigError(f"--dir {parent}: no such folder")
    target = parent / name
    if target.exists():
        raise ConfigError(f"{target} already exists: choose another name or remove it")
    template = KIND_TEMPLATES[kind]
    values.update(kind=kind, description=template.description, target_key=template.target_key,
                  target=template.target, tiny=template.tiny,
                  module=Path(list(template.files)[1]).stem if kind != "callback" else "__init__")
    values["usage"] = Template(template.usage).safe_substitute(values)
    files = {"pyproject.toml": "common/pyproject.toml.tmpl", "README.md": "common/README.md.tmpl", **template.files}
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=parent))
    try:
        written = []
        for destination, source in files.items():
            path = staging / Template(destination).substitute(values)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template((TEMPLATES / source).read_text()).substitute(values))
            written.append(target / path.relative_to(staging))
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, written
