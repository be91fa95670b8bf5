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
}


def require(module: str) -> ModuleType:
    """Import ``module`` or raise ``ImportError`` saying which greentrack extra provides it.

    >>> require("json").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra = EXTRAS.get(module) or EXTRAS.get(module.split(".")[0], module.split(".")[0])
        raise ImportError(
            f"this greentrack integration needs {module!r}: pip install 'greentrack[{extra}]'"
        ) from e
