"""A model's example input and its prediction, written at the end of a run for the run's MLflow pyfunc model: the
tracking worker turns them into the model's signature (``lab.tracking.pyfunc``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLE_INPUT = "pyfunc_input"
EXAMPLE_OUTPUT = "pyfunc_output"


def write_examples(model: Any, directory: Path) -> Path | None:
    """The model's example input and its prediction, in files the tracking worker turns into a signature;
    None when the plugin's model does not implement the pyfunc methods."""
    import numpy as np

    make_input = getattr(model, "pyfunc_input", None)
    if not callable(make_input) or not callable(getattr(model, "pyfunc_predict", None)):
        return None
    directory.mkdir(parents=True, exist_ok=True)
    example = make_input()
    output = np.asarray(model.pyfunc_predict(example))
    if isinstance(example, dict):  # a table (e.g. n and seed for a generator)
        (directory / f"{EXAMPLE_INPUT}.json").write_text(json.dumps({k: list(v) for k, v in example.items()}))
    else:
        np.save(directory / f"{EXAMPLE_INPUT}.npy", np.asarray(example), allow_pickle=False)
    np.save(directory / f"{EXAMPLE_OUTPUT}.npy", output, allow_pickle=False)
    return directory
