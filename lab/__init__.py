"""lab: a reinforcement-learning and generative-model laboratory.

The core is small: a plugin registry (``lab.hookspecs``, ``lab.registry``), the configuration system
(``lab.config``), one runner for every plugin kind (``lab.runner``), MLflow tracking (``lab.tracking``)
and the command line (``lab.cli``). Plugins use only ``lab.api``.
"""

__version__ = "0.1.0"
DISTRIBUTION = "lablearn"
"""lab's name on the package index (``pip install lablearn``): ``lab`` there is an unrelated project. The import
package and the command stay ``lab``, as scikit-learn ships ``sklearn``."""
