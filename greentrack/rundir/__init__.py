"""The run directory: the contract between measuring and reporting.

:mod:`.format` names every file, :mod:`.writer` appends records while a run is alive, and
:mod:`.reader` loads them back (``greentrack.load_run``). See docs/run-format.md.
"""

from greentrack.rundir.reader import Run, load_run

__all__ = ["Run", "load_run"]
