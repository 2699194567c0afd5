"""lab: a reinforcement-learning and generative-model laboratory.

The core is small and laid out by role (docs/architecture.md): ``lab.core`` (hooks, registry, plugin loading,
config), ``lab.training`` (one runner for every plugin kind), ``lab.tracking`` (MLflow) and ``lab.commands``
(the command line, ``lab.cli``). Plugins use only ``lab.api``; their tests may use ``lab.testing``.
"""

__version__ = "0.1.0"
DISTRIBUTION = "lablearn"
"""lab's name on the package index (``pip install lablearn``): ``lab`` there is an unrelated project. The import
package and the command stay ``lab``, as scikit-learn ships ``sklearn``."""
