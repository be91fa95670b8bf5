"""Exceptions raised by greentrack. Every message names the problem and the fix."""

from __future__ import annotations


class GreentrackError(Exception):
    """Base class of greentrack's own errors."""


class MeterError(GreentrackError):
    """A meter could not be read. Raised from a vendor error with ``from``."""


class MeterUnavailableError(GreentrackError):
    """A meter that was explicitly requested cannot be opened on this machine."""


class RunExistsError(GreentrackError, FileExistsError):
    """The run directory already holds a run; greentrack never overwrites one."""


class RunFormatError(GreentrackError, ValueError):
    """A run directory is missing files or holds data this version cannot read."""


class SpanError(GreentrackError, ValueError):
    """A span was used wrongly (ended twice, unknown, bad name or tags)."""
