"""The commands: one module per command group, each a handler ``cmd_<name>(args) -> exit code`` that ``lab.cli``
imports only when its command runs. ``run`` (run, show), ``evaluate`` (eval, sample), ``play`` (play, envs),
``runs`` (runs, rerun) with ``resume`` and ``rerun``, ``sweep`` (Optuna studies) and ``seeds`` (several child runs
under a parent run) over ``children`` (child ``lab run`` processes and the result file each writes back),
``plugins`` (plugins, check, data, new) with ``new``, and ``ui`` (ui, promote, store); ``common`` holds what they
share. Nothing but ``lab.cli`` imports this package.
"""
