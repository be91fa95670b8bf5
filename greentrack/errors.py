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


class PartError(RunFormatError):
    """Parts that do not belong to the job they are merged into (another job's, a rank or
    segment that is no place in it, a folder named otherwise, a meta.json that cannot be read).
    ``lines`` holds one line per part, each naming it, the problem and the fix."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = tuple(lines)
