"""Flower's modules, imported once with a clear error when flwr is missing."""

from __future__ import annotations

import importlib
from typing import Any


def _import_flwr() -> tuple[Any, Any, Any]:
    try:
        app = importlib.import_module("flwr.app")
        strategy = importlib.import_module("flwr.serverapp.strategy")
        inflatable = importlib.import_module("flwr.supercore.inflatable.inflatable_object")
    except ImportError as e:
        raise ImportError(
            "the Flower integration needs flwr: pip install 'greentrack[flower]'"
        ) from e
    return app, strategy, inflatable


app, strategy, inflatable = _import_flwr()
