"""The MLflow model registry: ``lab promote run=<id> name=NAME alias=ALIAS``, and ``models:/NAME@ALIAS`` (or
``models:/NAME/VERSION``) wherever a run id is accepted (``lab eval``, ``lab play``, ``lab sample``).

A registered version points at the run's ``model/pyfunc`` (see :mod:`lab.tracking.pyfunc`): its config and best weights.
Loading a ``models:/`` URI rebuilds the plugin's model from that folder, so what was promoted is what is
evaluated, whatever happens to the run later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.core.config import CONFIG_FILE
from lab.core.errors import ConfigError
from lab.tracking.pyfunc import PYFUNC_MODEL, WEIGHTS_DIR

MODEL_URI = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
ALIAS = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$")


def is_model_uri(text: str) -> bool:
    return text.startswith("models:/")


@dataclass
class RegisteredModel:
    """A registry version, downloaded: its run, and the folder holding ``config.yaml`` and ``weights/``."""

    uri: str
    version: str
    run_id: str
    folder: Path

    @property
    def config_file(self) -> Path:
        return self.folder / CONFIG_FILE

    @property
    def weights(self) -> Path:
        return self.folder / WEIGHTS_DIR


def version_of(uri: str) -> Any:
    """The MLflow ModelVersion that ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` names."""
    from mlflow.exceptions import MlflowException

    from lab.tracking.tracker import client, tracking_uri

    match = MODEL_URI.match(uri)
    if not match:
        raise ConfigError(f"{uri}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    mlflow_client = client()
    name = match["name"]
    try:
        model = mlflow_client.get_registered_model(name)
    except MlflowException:
        names = sorted(m.name for m in mlflow_client.search_registered_models())
        raise ConfigError(f"{uri}: no registered model {name!r} in {tracking_uri()} (registered: "
                          f"{', '.join(names) or 'none'}; register one with `lab promote`)") from None
    try:
        if match["alias"]:
            return mlflow_client.get_model_version_by_alias(name, match["alias"])
        return mlflow_client.get_model_version(name, match["version"])
    except MlflowException:
        aliases = ", ".join(f"@{alias}" for alias in sorted(model.aliases)) or "none"
        raise ConfigError(f"{uri}: model {name!r} has no such {'alias' if match['alias'] else 'version'} "
                          f"(aliases: {aliases})") from None


def download(uri: str, directory: Path) -> RegisteredModel:
    """Download the registered version's MLflow model into ``directory``."""
    from mlflow.artifacts import download_artifacts

    version = version_of(uri)
    local = Path(download_artifacts(artifact_uri=version.source, dst_path=str(directory)))
    data = local / "data" / "data"
    if not (data / CONFIG_FILE).is_file():
        raise ConfigError(f"{uri}: version {version.version} is not a lab model (no {CONFIG_FILE} in its data)")
    return RegisteredModel(uri, str(version.version), version.run_id, data)


def promote(run_id: str, name: str, alias: str | None) -> str:
    """Register run ``run_id``'s MLflow model as a new version of ``name`` and point ``alias`` at it."""
    from mlflow.exceptions import MlflowException

    from lab.tracking.runs import find_run
    from lab.tracking.tracker import client

    if not NAME.match(name):
        raise ConfigError(f"name={name}: letters, digits, '.', '_' and '-' (up to 100), starting with a letter or "
                          "digit")
    if alias is not None and (not ALIAS.match(alias) or alias == "latest" or re.fullmatch(r"v\d+", alias)):
        raise ConfigError(f"alias={alias}: letters, digits, '_' and '-', starting with a letter or '_'; "
                          "'latest' and v<number> are reserved by MLflow")
    mlflow_client = client()
    run = find_run(mlflow_client, run_id)
    if not [a for a in mlflow_client.list_artifacts(run_id, PYFUNC_MODEL) if a.path.endswith("MLmodel")]:
        raise ConfigError(f"run {run_id} ({run.info.status}) has no MLflow model at {PYFUNC_MODEL}: lab logs one "
                          "when a run finishes, for plugins whose models implement pyfunc_predict")
    try:
        mlflow_client.create_registered_model(name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    tags = {key: run.data.tags[key] for key in ("lab.plugin", "lab.target", "lab.seed") if key in run.data.tags}
    version = mlflow_client.create_model_version(name, source=f"{run.info.artifact_uri}/{PYFUNC_MODEL}",
                                                 run_id=run_id, tags=tags)
    message = f"registered run {run_id} as {name} version {version.version}"
    if alias:
        mlflow_client.set_registered_model_alias(name, alias, version.version)
        message += f"; models:/{name}@{alias} now points at it"
    return message
