"""The report: a model of what a report says about runs (:mod:`.model`), rendered in five
formats (:mod:`.render`), with figures (:mod:`.plots`); the function is :mod:`.api`.

This package is callable: ``greentrack.report(runs, format="md", output=None, **options)``
calls :func:`greentrack.report.api.report`. The function and the package share the name
``greentrack.report``; a callable package keeps both (``from greentrack.report.model import
...`` and dotted paths such as ``"greentrack.report.plots.available"`` in a test's
``monkeypatch`` still reach the modules, which a function bound over the name would hide).
"""

from __future__ import annotations

import sys
import types
import warnings
from typing import Any


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> str:
        from greentrack.report.api import write_report

        done = write_report(*args, **kwargs)
        for note in done.notes:
            warnings.warn(note, stacklevel=2)
        return done.text


sys.modules[__name__].__class__ = _CallablePackage
