"""Exports: a run's account, as figures and its report, into the tools ML teams already read.

``greentrack.export(run, to="mlflow" | "wandb" | "tensorboard" | "boamps", **options)`` and
``greentrack export RUN... --to TARGET`` (docs/export.md). Every figure comes from the run's
account (:mod:`greentrack.account`), through the report built for the artifacts, so the
numbers in MLflow, W&B, TensorBoard and the BoAmps file are those of ``greentrack summary`` and
``greentrack report``: :mod:`.record` names them (the live names of docs/metrics.md where they
overlap), one module per target writes them with that target's own client, imported only when
used (:mod:`.extras` names the extra to install when it is missing).

This package is callable, as :mod:`greentrack.report` is: ``greentrack.export(...)`` calls
:func:`greentrack.export.api.export`, and ``greentrack.export.record`` stays a module.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from greentrack.export.api import export

        return export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
