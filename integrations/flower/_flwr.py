"""Flower's modules, imported once with a clear error when flwr is missing."""

from __future__ import annotations

from typing import Any

from greentrack.integrations import require

FEATURE = "the Flower integration"
app: Any = require("flwr.app", feature=FEATURE)
strategy: Any = require("flwr.serverapp.strategy", feature=FEATURE)
inflatable: Any = require("flwr.supercore.inflatable.inflatable_object", feature=FEATURE)
