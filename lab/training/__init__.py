"""Training: one runner for every plugin kind. Building a run (``build``: device, seeds, threads, the plugin's
context, a logged model rebuilt), the loop the model calls at every step (``runner``: evaluations, best model,
checkpoints, interrupts, progress), checkpoints and resume points, lifecycle callbacks, data-parallel runs, and
the helpers plugins get through ``lab.api`` (weights files, training state, env state, pictures, recordings,
sample metrics).
The runner reports to a tracker and a sweep's trial it is handed (``reporting``): it knows neither MLflow nor
Optuna. It imports only ``lab.core``.
"""
