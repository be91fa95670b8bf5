"""The public entry points: :func:`track`, :class:`Tracker` with its summary, :func:`summarize`.

The measurement core (:mod:`greentrack.tracker`) knows no carbon and no account; this module
sits on top of both, so that ``print(run.summary())`` shows the same figures every other view
of the run shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from greentrack import tracker as _core
from greentrack.carbon.settings import resolve_settings
from greentrack.tracker import SyncMode, TrackerOptions

if TYPE_CHECKING:
    from greentrack.account import AccountOptions, RunAccount
    from greentrack.meters.base import Meter
    from greentrack.rundir.reader import Run
    from greentrack.views.summary import Summary


class Tracker(_core.Tracker):
    """The measurement core (:class:`greentrack.tracker.Tracker`) plus the run's figures:
    :meth:`summary` and :meth:`account` read the account of the run so far."""

    def account(self) -> RunAccount:
        """The account of the run so far (a fresh reading while running)."""
        from greentrack.account import account_run
        from greentrack.rundir.reader import load_run

        if self._state == "new":
            raise RuntimeError("the tracker has not started: use `with greentrack.track(...)`")
        live = None
        if self._state == "running":
            self.writer.flush()
            live = self.energy_j()
        return account_run(load_run(self.run_dir), live_energy_j=live)

    def summary(self) -> Summary:
        """The summary of the run so far: ``print()`` it, or ``.to_dict()`` for JSON."""
        from greentrack.views.summary import Summary

        return Summary(self.account())


def summarize(run: str | Path | Run, options: AccountOptions | None = None) -> Summary:
    """The summary of a run directory (``greentrack summary``), from its account."""
    from greentrack.account import account_run
    from greentrack.rundir.reader import Run, load_run
    from greentrack.views.summary import Summary

    loaded = run if isinstance(run, Run) else load_run(run)
    return Summary(account_run(loaded, options))


def track(
    run_dir: str | Path | None = None,
    *,
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    meters: Sequence[Meter] | None = None,
    sync: SyncMode = "auto",
    clock: Any = None,
    background: bool = True,
    region: str | None = None,
    pue: float | str | None = None,
    intensity: float | None = None,
    intensity_source: str | None = None,
    **options: Any,
) -> Tracker:
    """Measure a block of code: ``with greentrack.track(run_dir=...) as run: ...``.

    ``region`` (``"DE"``, ``"US-CA"``, ``"aws:eu-west-1"``, ``"auto"``) or ``intensity``
    (gCO2e/kWh, with ``intensity_source``) and ``pue`` (a number >= 1 or a preset such as
    ``"google"``) turn energy into CO2e; they are checked here, before any training starts.
    Keyword ``options`` are :class:`TrackerOptions` fields (``power_hz``, ``gpu_indices``,
    ``cpu_tdp_w``, ``require``...). Returns an unstarted :class:`Tracker`; ``with`` starts it.
    """
    carbon = resolve_settings(
        region, intensity=intensity, intensity_source=intensity_source, pue=pue
    )
    return Tracker(
        run_dir,
        project=project,
        name=name,
        config=config,
        meters=meters,
        sync=sync,
        options=TrackerOptions.from_kwargs(**options),
        clock=clock,
        background=background,
        carbon=carbon,
    )
