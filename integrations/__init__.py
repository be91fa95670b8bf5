"""Framework integrations, installed as ``greentrack.integrations``.

Each integration imports its framework lazily and, when it is missing, raises an
``ImportError`` that names the extra to install (:func:`require`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRAS = {
    "lightning": "lightning",
    "pytorch_lightning": "lightning",
    "lightning.pytorch": "lightning",
    "flwr": "flower",
    "torch": "torch",
    "transformers": "transformers",
}


def require(
    module: str, *alternatives: str, feature: str = "this greentrack integration"
) -> ModuleType:
    """Import ``module`` (or the first of ``alternatives`` that imports) or raise
    ``ImportError`` saying which greentrack extra provides it. Every integration imports its
    framework through this.

    >>> require("json").__name__
    'json'
    >>> require("no_such_module_here", "json").__name__
    'json'
    """
    error: ImportError | None = None
    for name in (module, *alternatives):
        try:
            return importlib.import_module(name)
        except ImportError as e:
            error = error or e
    extra = EXTRAS.get(module) or EXTRAS.get(module.split(".")[0], module.split(".")[0])
    raise ImportError(
        f"{feature} needs {module.split('.')[0]}: pip install 'greentrack[{extra}]'"
    ) from error
