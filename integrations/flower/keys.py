"""What greentrack's Flower client mod and server wrapper share (as Flower's own
differential-privacy mod and wrapper share their names): where the client's record travels
and its encoding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RECORD = "greentrack.energy"
"""ConfigRecord the client mod attaches to Message-API replies; the server removes it before
the inner strategy aggregates."""
FIELD = "json"
"""The record's one entry: the client's fields as JSON text (one typed value for Flower to
check and serialize per message, not one per field)."""
LEGACY_METRICS = ("fitres.metrics", "evaluateres.metrics")
"""Where legacy (FitRes/EvaluateRes) replies keep their metrics."""
LEGACY_PREFIX = "greentrack."
"""Prefix of greentrack's entries in a legacy reply's metrics (the record is the one entry
``LEGACY_PREFIX + FIELD``)."""


def _number(value: Any) -> float:
    """A meter's NumPy or other numeric scalar as a float (else the encoder's TypeError)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"not JSON-encodable: {type(value).__name__}") from None


_ENCODE = json.JSONEncoder(check_circular=False, separators=(",", ":"), default=_number).encode


def encode_record(fields: Mapping[str, Any]) -> str:
    """The client's record as the JSON text the mod attaches."""
    return _ENCODE(fields)


def decode_record(entries: Mapping[str, Any]) -> dict[str, Any] | None:
    """The client's record from the entries it travelled in (the ConfigRecord, or the legacy
    metrics with :data:`LEGACY_PREFIX` stripped); ``None`` when absent or not a record (the
    server then counts the client as unmeasured, never fails)."""
    raw = entries.get(FIELD)
    if not isinstance(raw, str):
        return None
    try:
        record = json.loads(raw)
    except Exception:  # not JSON, or nested past the recursion limit
        return None
    return record if isinstance(record, dict) else None
