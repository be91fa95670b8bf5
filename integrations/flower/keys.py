"""The names greentrack's Flower client mod and server wrapper share (as Flower's own
differential-privacy mod and wrapper share theirs)."""

RECORD = "greentrack.energy"
"""ConfigRecord the client mod attaches to Message-API replies; the server removes it before
the inner strategy aggregates."""
LEGACY_METRICS = ("fitres.metrics", "evaluateres.metrics")
"""Where legacy (FitRes/EvaluateRes) replies keep their metrics."""
LEGACY_PREFIX = "greentrack."
"""Prefix of greentrack's entries in a legacy reply's metrics."""
