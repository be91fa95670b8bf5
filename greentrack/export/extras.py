"""The optional packages of the exports: imported only when a target is used, and, when one is
missing, one line naming the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from greentrack.errors import GreentrackError

EXTRAS = {
    "mlflow": ("mlflow", "mlflow-skinny"),
    "sqlalchemy": ("mlflow", "SQLAlchemy"),
    "alembic": ("mlflow", "alembic"),
    "wandb": ("wandb", "wandb"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "jsonschema": ("boamps", "jsonschema"),
    "referencing": ("boamps", "jsonschema"),
}
"""module -> (the greentrack extra that installs it, the package it comes from)."""


class ExportError(GreentrackError):
    """An export that cannot be done as asked; the message names the option and the fix."""


class MissingExtraError(ExportError, ImportError):
    """A target's package is not installed; the message names the extra to install."""


def require(module: str, target: str) -> ModuleType:
    """Import ``module`` for the export to ``target``, or raise :class:`MissingExtraError`.

    >>> require("json", "boamps").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.split(".")[0]
        extra, package = EXTRAS.get(top, (target, top))
        raise MissingExtraError(
            f"exporting to {target} needs the {package} package, which is not installed: "
            f"pip install 'greentrack[{extra}]'"
        ) from e
