"""Every run's best model as an MLflow model with a pyfunc flavour, loadable without lab's command line:

    m = mlflow.pyfunc.load_model("models:/cartpole-dqn@champion")   # or runs:/<run id>/model/pyfunc
    m.predict(observations)        # an agent: actions;  a backbone: class probabilities or predictions;
                                   # a generator: samples for a table of n and seed

The MLflow model folder holds the run's ``config.yaml`` and best weights (safetensors) under ``data/``; its
flavour names this module as the loader (``loader_module``), so loading imports installed code and rebuilds
the plugin's model from YAML and safetensors: nothing is unpickled and no code is read from the store.
A plugin's model takes part by implementing ``pyfunc_input()`` (a small example input) and
``pyfunc_predict(inputs)``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml

from lab.core.config import CONFIG_FILE
from lab.training.build import rebuild_model
from lab.training.examples import EXAMPLE_INPUT, EXAMPLE_OUTPUT

PYFUNC_MODEL = "model/pyfunc"
"""Where a run's MLflow model lives among its artifacts."""
WEIGHTS_DIR = "weights"


def save(path: Path, weights: Path, config_text: str, examples: Path, requirements: list[str]) -> None:
    """Write the MLflow model folder (called in the tracking worker, which has mlflow imported)."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature

    table = examples / f"{EXAMPLE_INPUT}.json"
    example: Any = (pd.DataFrame(json.loads(table.read_text())) if table.is_file()
                    else np.load(examples / f"{EXAMPLE_INPUT}.npy", allow_pickle=False))
    output = np.load(examples / f"{EXAMPLE_OUTPUT}.npy", allow_pickle=False)
    with warnings.catch_warnings():  # "integer columns cannot represent missing values": n and seed never miss
        warnings.simplefilter("ignore", UserWarning)
        signature = infer_signature(example, output)
    with tempfile.TemporaryDirectory(prefix="lab-pyfunc-") as tmp:
        data = Path(tmp) / "data"
        shutil.copytree(weights, data / WEIGHTS_DIR)
        (data / CONFIG_FILE).write_text(config_text)
        logging.getLogger("mlflow.pyfunc").setLevel(logging.WARNING)  # not "Validating input example" per run
        mlflow.pyfunc.save_model(path, loader_module=__name__, data_path=str(data),
                                 signature=signature, input_example=example,
                                 pip_requirements=requirements)


# ---------------------------------------------------------------------------------------------- the load side


class LabPyfuncModel:
    """What ``mlflow.pyfunc.load_model`` wraps: a plugin's model rebuilt from the folder."""

    def __init__(self, model: Any, config: Any) -> None:
        self.model = model
        self.config = config

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        return self.model.pyfunc_predict(model_input)


def load_folder(data: Path, overrides: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The plugin model and resolved config of an MLflow model's ``data`` folder (weights loaded)."""
    from lab.core.loading import load_registry, make_plugin_manager

    logged = yaml.safe_load((data / CONFIG_FILE).read_text())
    return rebuild_model(load_registry(make_plugin_manager()), logged, overrides or {}, data / WEIGHTS_DIR)


def _load_pyfunc(data_path: str) -> LabPyfuncModel:
    """MLflow's entry point for ``loader_module`` models."""
    model, config = load_folder(Path(data_path))
    return LabPyfuncModel(model, config)
