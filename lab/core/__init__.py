"""The core: what a plugin is and how lab finds it. The hooks a plugin implements (``hookspecs``), what it declares
(``specs``: Plugin, EnvSpec, DatasetSpec, the Model protocol), how its keys are declared (``options``), the
registry of everything installed with where each came from (``registry``), how plugin modules are found and loaded
(``loading``: entry points, ``--plugins-dir``, isolation of a broken one, strict/disable/trace), and resolving
``key=value`` arguments into a typed, checked config (``config``). Errors, values as text, the smoke mode and the
cache live here too. The core imports no other part of lab, and nothing heavy (torch, SB3, mlflow) at all.
"""
