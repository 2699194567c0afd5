"""Built-in datasets: data that ships with our dependencies (scikit-learn) or that the code generates.

Registration declares names, tasks and shapes only; ``lab_data.loaders`` imports numpy and scikit-learn when
a run loads the data.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.api import DatasetSpec, hookimpl

DATASETS = (
    DatasetSpec("digits", "classification", (1, 8, 8), 1797, "lab_data.loaders:digits",
                "scikit-learn's 8x8 handwritten digits, grey levels scaled to [0, 1]", classes=10),
    DatasetSpec("digits_rows", "classification", (8, 8), 1797, "lab_data.loaders:digits_rows",
                "the same digits as sequences of 8 rows of 8 pixels (same splits as digits)", classes=10),
    DatasetSpec("moons", "classification", (2,), 4000, "lab_data.loaders:moons",
                "two interleaving half circles in 2-D (scikit-learn make_moons, noise 0.1)", classes=2),
    DatasetSpec("circles", "classification", (2,), 1000, "lab_data.loaders:circles",
                "a circle inside a circle in 2-D (scikit-learn make_circles, noise 0.1, factor 0.5)", classes=2),
    DatasetSpec("swiss_roll", "regression", (2,), 4000, "lab_data.loaders:swiss_roll",
                "a 2-D swiss roll (scikit-learn make_swiss_roll, noise 0.5, x and z scaled by 1/10); the target is "
                "the position t along the roll"),
    DatasetSpec("shapes", "classification", (1, 16, 16), 2000, "lab_data.shapes:shapes",
                "generated 16x16 grey images of a disk, square, triangle or cross at a seeded random place, size "
                "and brightness", classes=4),
    DatasetSpec("sine", "regression", (32, 1), 2000, "lab_data.loaders:sine",
                "next-step forecasting of noisy sines: 32 past values -> the next one"),
    DatasetSpec("goog", "regression", (32, 1), 1015, "lab_data.loaders:goog",
                "a real series: Google's daily prices 2004-2008 (matplotlib sample data), next-day log return x10, "
                "split in time order"),
    DatasetSpec("pydocs", "text", (1,), 0, "lab_data.text:pydocs",
                "characters of the docstrings of this Python's standard library (read with ast, never imported)"),
)


@hookimpl
def register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    for spec in DATASETS:
        register(spec)
