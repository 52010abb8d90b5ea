"""vaepipe: Monte Carlo samples of a Lennard-Jones fluid under gravity, learned with variational autoencoders.

Importing the package is cheap: the compiled core loads with :mod:`vaepipe.mc` or :mod:`vaepipe.energy`, and
nothing here imports TensorFlow.
"""

import pkgutil as _pkgutil

# Running from a source checkout puts ./vaepipe (pure Python, no compiled module) ahead of the installed copy on
# sys.path. Extending the package path lets `vaepipe._core` come from the installed copy in that case;
# vaepipe._build checks that it was compiled from these very C++ sources.
__path__ = _pkgutil.extend_path(__path__, __name__)

__version__ = "0.1.0"

__all__ = ["__version__"]
